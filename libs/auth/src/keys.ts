import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Pool } from '@mssgw/store';
import { isRole, type Role } from './roles.ts';

/**
 * API keys: `mssgw.<key id>.<secret>`, 256 random bits of secret from the system's generator. The key is shown once,
 * when it is created; the store keeps its SHA-256 only (a random secret of that length needs no slow hash: there is
 * nothing to guess from). A key is found by its id, then its hash compared in constant time.
 */
export interface ApiKey {
  keyId: string;
  name: string;
  role: Role;
  createdAt: Date;
  createdBy: string;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

const KEY = /^mssgw\.(k-[0-9a-f]{24})\.([A-Za-z0-9_-]{43})$/;
export const looksLikeApiKey = (token: string): boolean => token.startsWith('mssgw.');

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface Row { key_id: string; name: string; role: string; created_at: Date; created_by: string; revoked_at: Date | null; last_used_at: Date | null }
const toKey = (r: Row): ApiKey => ({
  keyId: r.key_id, name: r.name, role: r.role as Role, createdAt: r.created_at, createdBy: r.created_by, revokedAt: r.revoked_at, lastUsedAt: r.last_used_at,
});
const COLUMNS = 'key_id, name, role, created_at, created_by, revoked_at, last_used_at';

/** A new key: its record, and the key itself (the only time it is seen). */
export async function createApiKey(pool: Pool, o: { role: Role; name: string; createdBy: string }): Promise<{ key: string; apiKey: ApiKey }> {
  if (!isRole(o.role)) throw new Error(`role must be one of viewer, operator, admin`);
  const name = o.name.trim();
  if (!name || name.length > 100) throw new Error('name must be 1 to 100 characters');
  const keyId = `k-${randomBytes(12).toString('hex')}`;
  const key = `mssgw.${keyId}.${randomBytes(32).toString('base64url')}`;
  const { rows } = await pool.query<Row>(
    `insert into api_keys (key_id, name, role, key_sha256, created_by) values ($1, $2, $3, $4, $5) returning ${COLUMNS}`,
    [keyId, name, o.role, sha256(key), o.createdBy],
  );
  return { key, apiKey: toKey(rows[0]!) };
}

export async function listApiKeys(pool: Pool): Promise<ApiKey[]> {
  return (await pool.query<Row>(`select ${COLUMNS} from api_keys order by created_at, key_id`)).rows.map(toKey);
}

/** Revokes a key: it is refused from then on. False when no such key is active. */
export async function revokeApiKey(pool: Pool, keyId: string): Promise<boolean> {
  const r = await pool.query('update api_keys set revoked_at = now() where key_id = $1 and revoked_at is null', [keyId]);
  return (r.rowCount ?? 0) > 0;
}

/** Why a presented key is refused: said to the caller as such (none of them tells a guesser anything). */
export type KeyRefusal = 'malformed API key' | 'unknown API key' | 'revoked API key';

/** The key's record when the key is valid and active, else why not. Its last use is noted (at most once a minute). */
export async function verifyApiKey(pool: Pool, key: string): Promise<ApiKey | { refused: KeyRefusal }> {
  const m = KEY.exec(key);
  if (!m) return { refused: 'malformed API key' };
  const { rows } = await pool.query<Row & { key_sha256: string }>(`select ${COLUMNS}, key_sha256 from api_keys where key_id = $1`, [m[1]]);
  const row = rows[0];
  const expected = Buffer.from(row?.key_sha256 ?? sha256('none'), 'hex');
  const same = timingSafeEqual(expected, Buffer.from(sha256(key), 'hex'));
  if (!row || !same) return { refused: 'unknown API key' };
  if (row.revoked_at) return { refused: 'revoked API key' };
  await pool.query(`update api_keys set last_used_at = now() where key_id = $1 and (last_used_at is null or last_used_at < now() - interval '1 minute')`, [row.key_id]);
  return toKey(row);
}
