// The access token's type (api.oidc.accessTokenType, RFC 9068): with at+jwt asked, a JWT of the same IdP for the same
// audience but of another type (an ID token, typ JWT) is refused; without it, the type is not looked at. The keys
// come from a JWKS served on loopback, as an IdP serves them.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcVerifier } from '@mssgw/auth';

describe('the OIDC access token type', () => {
  let server: Server;
  let jwksUri = '';
  let sign: (typ: string) => Promise<string>;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server = createServer((_req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    sign = (typ) => new SignJWT({ roles: ['mssgw-operator'] }).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ })
      .setIssuer('https://idp.chu.test').setAudience('mssgw-api').setSubject('app-1').setIssuedAt().setExpirationTime('5m').sign(privateKey);
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const verifier = (accessTokenType?: string) => new OidcVerifier({
    issuer: 'https://idp.chu.test', audience: 'mssgw-api', jwksUri, rolesClaim: 'roles', roleMapping: { 'mssgw-operator': 'operator' },
    algorithms: ['ES256'], clockToleranceSeconds: 5, ...(accessTokenType ? { accessTokenType } : {}),
  });

  it('refuses a token of another type when at+jwt is asked, by a fixed phrase', async () => {
    const strict = verifier('at+jwt');
    expect(await strict.verify(await sign('at+jwt'))).toEqual({ subject: 'app-1', role: 'operator' });
    expect(await strict.verify(await sign('JWT'))).toEqual({ refused: 'token typ not accepted' });
  });

  it('takes either type when none is asked', async () => {
    const lenient = verifier();
    expect(await lenient.verify(await sign('JWT'))).toEqual({ subject: 'app-1', role: 'operator' });
    expect(await lenient.verify(await sign('at+jwt'))).toEqual({ subject: 'app-1', role: 'operator' });
  });
});
