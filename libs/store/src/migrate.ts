import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describePostgres, StoreUnavailableError, type Pool, type PostgresConfig } from './postgres.ts';

/** The schema's history: plain SQL files, applied in the order of their number, each once. */
export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/** Any fixed number: every gateway process takes the same lock (with its schema's name) before it changes it. */
const MIGRATION_LOCK = 0x6d737367; // "mssg"

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const sql = readFileSync(path.join(dir, f), 'utf8');
      return { version: Number(f.slice(0, 4)), name: f.slice(5, -4), sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

export interface MigrationStatus {
  applied: { version: number; name: string; appliedAt: Date }[];
  pending: Migration[];
}

/** The stable codes of what stops a migration. */
export class MigrationError extends Error {
  readonly code: 'MSSGW_MIGRATION_CHANGED' | 'MSSGW_MIGRATION_UNKNOWN' | 'MSSGW_MIGRATION_PENDING';
  constructor(code: MigrationError['code'], message: string) {
    super(message);
    this.name = 'MigrationError';
    this.code = code;
  }
}

const HISTORY = `create table if not exists schema_migrations (
  version integer primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
)`;

/**
 * Brings the schema up to date under an advisory lock, so that processes starting together apply each migration once
 * (the others wait, then find nothing left to do). Each migration runs in its own transaction. A migration already
 * applied whose file changed, or a database newer than this code, stops everything: the code and the schema disagree.
 */
export async function migrate(pool: Pool, migrations = readMigrations()): Promise<Migration[]> {
  const client = await pool.connect();
  try {
    const schema = (await client.query<{ s: string }>(`select current_setting('search_path') as s`)).rows[0]!.s;
    await client.query('select pg_advisory_lock($1, hashtext($2))', [MIGRATION_LOCK, schema]);
    try {
      await client.query(`create schema if not exists ${schema}`);
      await client.query(HISTORY);
      const { pending } = await statusOn(client, migrations);
      for (const m of pending) {
        await client.query('begin');
        try {
          await client.query(m.sql);
          await client.query('insert into schema_migrations (version, name, checksum) values ($1, $2, $3)', [m.version, m.name, m.checksum]);
          await client.query('commit');
        } catch (err) {
          await client.query('rollback');
          throw new Error(`migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
        }
      }
      return pending;
    } finally {
      await client.query('select pg_advisory_unlock($1, hashtext($2))', [MIGRATION_LOCK, schema]);
    }
  } finally {
    client.release();
  }
}

/** What is applied and what is pending, checked against the files (mssgw migrate --status). */
export async function migrationStatus(pool: Pool, migrations = readMigrations()): Promise<MigrationStatus> {
  const client = await pool.connect();
  try {
    // Resolved in the gateway's schema (search_path): another schema's history is not this one's.
    const exists = await client.query<{ t: string | null }>(`select to_regclass('schema_migrations')::text as t`);
    if (!exists.rows[0]?.t) return { applied: [], pending: migrations };
    return await statusOn(client, migrations);
  } finally {
    client.release();
  }
}

async function statusOn(client: { query: Pool['query'] }, migrations: Migration[]): Promise<MigrationStatus> {
  const rows = (await client.query<{ version: number; name: string; checksum: string; applied_at: Date }>(
    'select version, name, checksum, applied_at from schema_migrations order by version',
  )).rows;
  const known = new Map(migrations.map((m) => [m.version, m]));
  for (const r of rows) {
    const m = known.get(r.version);
    if (!m) throw new MigrationError('MSSGW_MIGRATION_UNKNOWN', `the database has migration ${r.version} (${r.name}), which this version of the gateway does not know: run the newer version`);
    if (m.checksum !== r.checksum) throw new MigrationError('MSSGW_MIGRATION_CHANGED', `migration ${r.version} (${r.name}) was changed after it was applied`);
  }
  const done = new Set(rows.map((r) => r.version));
  return {
    applied: rows.map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at })),
    pending: migrations.filter((m) => !done.has(m.version)),
  };
}

/**
 * What a process does with the schema before it starts: migrate it (postgres.migrateOnStart), or check that nothing
 * is pending. An unreachable server, a refused login or a TLS failure is said with the server's host, port and
 * database, never the password.
 */
export async function prepareSchema(pool: Pool, config: PostgresConfig): Promise<Migration[]> {
  try {
    if (config.migrateOnStart) return await migrate(pool);
    const { pending } = await migrationStatus(pool);
    if (pending.length) {
      throw new MigrationError('MSSGW_MIGRATION_PENDING', `the message store lacks ${pending.length} migration(s), from ${pending[0]!.version} (${pending[0]!.name}): run mssgw migrate`);
    }
    return [];
  } catch (err) {
    if (err instanceof MigrationError) throw err;
    throw new StoreUnavailableError(describePostgres(config), err as Error);
  }
}
