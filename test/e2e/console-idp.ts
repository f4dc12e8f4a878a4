// A real OpenID provider on loopback for the console's browser test (issue #24): oidc-provider with its development
// login and consent pages, a public client using the authorization code flow with PKCE (S256), and JWT access tokens
// for the API's audience carrying a roles claim per account (the login typed on its page).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import type { Page } from 'playwright-core';

export interface ConsoleIdp {
  issuer: string;
  audience: string;
  clientId: string;
  /** On the IdP's pages the browser was sent to: log in as this account (any password), consent, and back. */
  signIn(page: Page, account: string): Promise<void>;
  stop(): Promise<void>;
}

/** `accounts`: login → the IdP's role names for it. `redirectUri`: the console's address (the api's /). */
export async function startConsoleIdp(accounts: Record<string, string[]>, redirectUri: string, audience = 'https://api.mssgw.test'): Promise<ConsoleIdp> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'console-test-key', alg: 'ES256', use: 'sig' };
  const clientId = 'mssgw-console';
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId, token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'],
      redirect_uris: [redirectUri], id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [jwk] },
    scopes: ['openid', 'api'],
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'api', audience, accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg: 'ES256' } } }),
      },
    },
    extraTokenClaims: (_ctx, token) => ({ roles: accounts[(token as { accountId?: string }).accountId ?? ''] ?? [] }),
  });
  const handle = provider.callback();
  server.on('request', (req, res) => void handle(req, res));
  return {
    issuer,
    audience,
    clientId,
    async signIn(page, account) {
      await page.waitForURL((u) => u.origin === issuer);
      await page.locator('input[name="login"]').fill(account);
      await page.locator('input[name="password"]').fill('any password');
      await page.locator('button[type="submit"]').click();
      // The consent page, when the IdP shows one, then back to the console.
      await page.waitForURL((u) => u.origin !== issuer || u.pathname.includes('/interaction/'));
      if (new URL(page.url()).origin === issuer) await page.locator('button[type="submit"]').click();
      await page.waitForURL((u) => u.origin !== issuer);
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
