/**
 * The API's roles, each allowed what the one before it is: a viewer reads with identities masked, an operator reads
 * everything and acts (dead-letter replay), an admin also manages API keys and reads the audit trail.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (v: unknown): v is Role => typeof v === 'string' && (ROLES as readonly string[]).includes(v);

/** Whether a caller with role `have` may use a route that needs `need`. */
export const roleAllows = (have: Role, need: Role): boolean => ROLES.indexOf(have) >= ROLES.indexOf(need);

/** The value at a dotted path of a token's claims (`roles`, `realm_access.roles`); a key holding a dot is tried whole first. */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  let at: unknown = claims;
  for (const part of path.split('.')) {
    if (typeof at !== 'object' || at === null || Array.isArray(at)) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

/**
 * The role an identity provider's token gives: the claim's values (an array, or one string of space-separated values
 * as `scope` is) looked up in the mapping from the IdP's names to ours; the highest one wins. Undefined when none maps:
 * a valid token without a role of ours is refused (403).
 */
export function roleFromClaims(claims: Record<string, unknown>, claimPath: string, mapping: Readonly<Record<string, Role>>): Role | undefined {
  const raw = claimAt(claims, claimPath);
  const values = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(/\s+/) : [];
  let best: Role | undefined;
  for (const v of values) {
    if (typeof v !== 'string' || !Object.hasOwn(mapping, v)) continue;
    const role = mapping[v]!;
    if (!best || roleAllows(role, best)) best = role;
  }
  return best;
}
