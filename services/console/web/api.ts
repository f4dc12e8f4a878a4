// The console's calls to the API: the signed-in credential (an API key or an OIDC access token, kept for this tab
// only, in sessionStorage) as a bearer token on each.
export type Role = 'viewer' | 'operator' | 'admin';
export interface Me { kind: 'key' | 'oidc'; id: string; role: Role }

const TOKEN = 'mssgw.console.token';

export const session = {
  token: (): string | null => sessionStorage.getItem(TOKEN),
  set: (token: string) => sessionStorage.setItem(TOKEN, token),
  clear: () => sessionStorage.removeItem(TOKEN),
};

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, reason: string) {
    super(reason);
    this.status = status;
  }
}

export let onUnauthorized: () => void = () => {};
export const setOnUnauthorized = (f: () => void) => (onUnauthorized = f);

export async function call(path: string, init: RequestInit = {}): Promise<Response> {
  const token = session.token();
  const res = await fetch(path, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  if (res.ok) return res;
  let reason = `HTTP ${res.status}`;
  try {
    reason = ((await res.json()) as { reason?: string }).reason ?? reason;
  } catch {
    // not JSON: the status says it
  }
  if (res.status === 401) onUnauthorized();
  throw new ApiError(res.status, reason);
}

export async function get<T>(path: string): Promise<T> {
  return (await (await call(path)).json()) as T;
}

export async function post<T>(path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method: 'POST' };
  if (body !== undefined) Object.assign(init, { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return (await (await call(path, init)).json()) as T;
}

const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

export interface OidcSettings { issuer: string; clientId: string; scope: string; resource: string; authorizationEndpoint: string }

/** OIDC authorization code + PKCE (S256): to the IdP, back to / with ?code=&state=. */
export async function startOidc(o: OidcSettings): Promise<void> {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  sessionStorage.setItem('mssgw.console.pkce', JSON.stringify({ verifier, state }));
  const url = new URL(o.authorizationEndpoint);
  const redirectUri = `${location.origin}/`;
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: o.clientId, redirect_uri: redirectUri, scope: o.scope, state, code_challenge: challenge, code_challenge_method: 'S256', resource: o.resource,
  })) url.searchParams.set(k, v);
  location.assign(url.toString());
}

/** Back from the IdP: the code exchanged (through the api service) for an access token. False when this is no such return. */
export async function finishOidc(): Promise<boolean> {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  if (!code && !params.get('error')) return false;
  const saved = JSON.parse(sessionStorage.getItem('mssgw.console.pkce') ?? 'null') as { verifier: string; state: string } | null;
  sessionStorage.removeItem('mssgw.console.pkce');
  history.replaceState(null, '', '/#/');
  if (!code || !saved || params.get('state') !== saved.state) throw new ApiError(401, 'the identity provider did not sign you in');
  const res = await fetch('/console/token', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code, codeVerifier: saved.verifier, redirectUri: `${location.origin}/` }),
  });
  const body = (await res.json()) as { accessToken?: string; reason?: string };
  if (!res.ok || !body.accessToken) throw new ApiError(res.status, body.reason ?? 'sign-in failed');
  session.set(body.accessToken);
  return true;
}
