import { readFileSync } from 'node:fs';
import pg from 'pg';
import { readSecret, type GatewayConfig } from '@mssgw/config';

export type PostgresConfig = GatewayConfig['postgres'];
export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** A pool or one of its connections (in a transaction): what a store needs to run its statements. */
export type Queryable = Pick<pg.Pool, 'query'>;

/** host:port/database of the store, for messages: never the user's password. */
export function describePostgres(config: PostgresConfig): string {
  const u = new URL(config.url);
  return `${u.hostname}:${u.port || 5432}${u.pathname} (schema ${config.schema})`;
}

/**
 * A pool of connections to the message store, TLS as configured. verify-ca checks the chain only (a server reached by
 * an address its certificate does not name); verify-full checks the host name too.
 */
export function connectPostgres(config: PostgresConfig, applicationName = 'mssgw'): Pool {
  const u = new URL(config.url);
  const ca = config.caFile ? readFileSync(config.caFile) : undefined;
  const ssl =
    config.sslMode === 'disable'
      ? false
      : config.sslMode === 'require'
        ? { rejectUnauthorized: false }
        : { ca, rejectUnauthorized: true, ...(config.sslMode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}) };
  const pool = new pg.Pool({
    host: u.hostname,
    port: Number(u.port || 5432),
    database: decodeURIComponent(u.pathname.slice(1)),
    user: decodeURIComponent(u.username),
    ...(config.password ? { password: readSecret(config.password) } : {}),
    ssl,
    max: config.poolSize,
    connectionTimeoutMillis: config.connectTimeoutMs,
    application_name: applicationName,
    // Every statement names its tables unqualified: they resolve in the gateway's schema.
    options: `-c search_path=${config.schema}`,
  });
  // An idle connection that breaks (server restart) is dropped from the pool; the next query opens a new one. A
  // connection checked out (a transaction, a lock held) reports the break as an 'error' event too: without a listener
  // that event would end the process, when the query under way already rejects and is handled.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** A connection error said without what the driver may quote (never the password, which pg does not print either). */
export class StoreUnavailableError extends Error {
  readonly code = 'MSSGW_STORE_UNAVAILABLE';
  constructor(where: string, cause: Error) {
    super(`PostgreSQL at ${where} is unavailable: ${cause.message}`);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * Query parameters that PostgreSQL takes as text: it refuses a NUL character in text, and one hostile field would then
 * fail a whole batch, again at every retry. The NULs go (the message as received is kept whole, as bytes).
 */
export function textParams(params: unknown[]): unknown[] {
  const clean = (v: unknown): unknown => (typeof v === 'string' ? v.replaceAll('\u0000', '') : Array.isArray(v) ? v.map(clean) : v);
  return params.map(clean);
}

/**
 * Runs `fn` in one transaction on one connection of the pool: committed if it returns, rolled back if it throws.
 * One commit (one WAL flush) for all its statements, and all of them or none.
 */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
