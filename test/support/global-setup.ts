// Once per test run: the sandbox's message store gets its schema, as `mssgw migrate` gives a deployment's. Unit tests
// run without the sandbox too, so an unreachable PostgreSQL only says so; the tests that need it fail on their own.
import { demoConfig } from '@mssgw/config';
import { connectPostgres, describePostgres, migrate, type Pool } from '@mssgw/store';

export default async function setup(): Promise<void> {
  const config = demoConfig().postgres;
  let pool: Pool | undefined;
  try {
    pool = connectPostgres(config, 'mssgw-test-setup');
    await migrate(pool);
  } catch (err) {
    console.warn(`[test setup] message store at ${describePostgres(config)} not migrated: ${(err as Error).message}`);
  } finally {
    await pool?.end();
  }
}
