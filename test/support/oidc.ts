// A real OpenID provider on loopback for the API's tests (issue #22): oidc-provider, with the client credentials grant
// giving JWT access tokens signed with its own key (ES256), for the API's audience, with a roles claim per client.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

export interface OidcClient {
  id: string;
  secret: string;
  /** The roles claim of its tokens (the IdP's names; the gateway maps them). */
  roles: string[];
}

export interface TestIdp {
  issuer: string;
  audience: string;
  /** A fresh access token of this client, through the token endpoint. */
  token(clientId: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startOidcProvider(clients: OidcClient[], audience = 'https://api.mssgw.test'): Promise<TestIdp> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'test-signing-key', alg: 'ES256', use: 'sig' };
  const roles = new Map(clients.map((c) => [c.id, c.roles]));
  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.id, client_secret: c.secret, grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
      token_endpoint_auth_method: 'client_secret_post', scope: 'api', id_token_signed_response_alg: 'ES256',
    })),
    jwks: { keys: [jwk] },
    scopes: ['api'],
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'api', audience, accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg: 'ES256' } } }),
      },
    },
    extraTokenClaims: (_ctx, token) => ({ roles: roles.get((token as { clientId?: string }).clientId ?? '') ?? [] }),
  });
  const handle = provider.callback();
  server.on('request', (req, res) => void handle(req, res));
  return {
    issuer,
    audience,
    async token(clientId: string) {
      const client = clients.find((c) => c.id === clientId)!;
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret, scope: 'api', resource: audience }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`the IdP refused a token: ${body.error} ${body.error_description ?? ''}`);
      return body.access_token;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
