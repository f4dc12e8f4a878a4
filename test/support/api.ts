// The HTTP API needs a credential (issue #22): tests make an API key of the role they need, straight in the gateway's
// message store (as `mssgw apikey create` does), and send it as a bearer token.
import { createApiKey, type Role } from '@mssgw/auth';
import type { Pool } from '@mssgw/store';

export interface ApiClient {
  key: string;
  keyId: string;
  /** fetch with the key as `Authorization: Bearer`. */
  fetch(url: string, init?: RequestInit): Promise<Response>;
  /** GET a URL and read its JSON. */
  json<T = unknown>(url: string): Promise<{ status: number; body: T }>;
}

export const withBearer = (token: string) => (url: string, init: RequestInit = {}) =>
  fetch(url, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` } });

export async function apiClient(pg: Pool, role: Role, name = `test ${role}`): Promise<ApiClient> {
  const { key, apiKey } = await createApiKey(pg, { role, name, createdBy: 'test' });
  const call = withBearer(key);
  return {
    key,
    keyId: apiKey.keyId,
    fetch: call,
    async json<T>(url: string) {
      const res = await call(url);
      return { status: res.status, body: (await res.json()) as T };
    },
  };
}
