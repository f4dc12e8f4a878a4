import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { roleFromClaims, type Role } from './roles.ts';

/** What the API needs of an identity provider: who signs, for whom, and where the role is in the token. */
export interface OidcOptions {
  issuer: string;
  audience: string | string[];
  /** Where the IdP publishes its signing keys; else read from the issuer's /.well-known/openid-configuration. */
  jwksUri?: string | undefined;
  rolesClaim: string;
  roleMapping: Readonly<Record<string, Role>>;
  algorithms: string[];
  clockToleranceSeconds: number;
  /** The header typ a token must have (at+jwt); undefined: not checked. */
  accessTokenType?: string | undefined;
}

export type TokenCheck =
  | { subject: string; role: Role | undefined }
  | { refused: string }
  | { unavailable: string };

/**
 * Checks OIDC bearer tokens (JWT access tokens): signature against the IdP's published keys (jose's remote JWKS,
 * fetched on first use and again when a token names a key it does not have, as after a rotation), issuer, audience,
 * expiry and not-before, the algorithms allowed. The role comes from the configured claim through the mapping.
 */
export class OidcVerifier {
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private discovering: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;

  private readonly options: OidcOptions;

  constructor(options: OidcOptions) {
    this.options = options;
  }

  private async keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return this.jwks;
    this.discovering ??= (async () => {
      let uri = this.options.jwksUri;
      if (!uri) {
        const res = await fetch(`${this.options.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`discovery answered ${res.status}`);
        uri = ((await res.json()) as { jwks_uri?: string }).jwks_uri;
        if (!uri) throw new Error('discovery gave no jwks_uri');
      }
      return (this.jwks = createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000, cooldownDuration: 30_000 }));
    })().finally(() => (this.discovering = undefined));
    return this.discovering;
  }

  async verify(token: string): Promise<TokenCheck> {
    let payload: JWTPayload;
    try {
      const jwks = await this.keys();
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: this.options.algorithms,
        clockTolerance: this.options.clockToleranceSeconds,
        requiredClaims: ['exp'],
        ...(this.options.accessTokenType ? { typ: this.options.accessTokenType } : {}),
      }));
    } catch (err) {
      return describeTokenError(err);
    }
    const subject = typeof payload.sub === 'string' ? payload.sub : typeof payload['client_id'] === 'string' ? payload['client_id'] : undefined;
    if (!subject) return { refused: 'token has no subject' };
    return { subject, role: roleFromClaims(payload, this.options.rolesClaim, this.options.roleMapping) };
  }
}

/** A token's failure as the caller is told it: a fixed phrase, never the library's message (which may quote the token). */
export function describeTokenError(err: unknown): TokenCheck {
  if (err instanceof errors.JWTExpired) return { refused: 'token expired' };
  if (err instanceof errors.JWTClaimValidationFailed) {
    const claim = ['iss', 'aud', 'nbf', 'iat', 'exp', 'typ'].includes(err.claim) ? err.claim : 'a claim';
    return { refused: `token ${claim} not accepted` };
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return { refused: 'token signature invalid' };
  if (err instanceof errors.JWKSNoMatchingKey) return { refused: 'token signed by an unknown key' };
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return { refused: 'token algorithm not accepted' };
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return { refused: 'token malformed' };
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return { unavailable: "the identity provider's keys cannot be read" };
  if (err instanceof errors.JOSEError) return { refused: 'token not accepted' };
  return { unavailable: "the identity provider's keys cannot be read" };
}
