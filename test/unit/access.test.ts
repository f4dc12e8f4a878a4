// The API's access rules as pure functions (issue #22): what a viewer sees of identities, which role a token's
// claims give, which Host headers pass, what a token's failure is called, the audit trail's cursor.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { errors } from 'jose';
import {
  claimAt, decodeAuditCursor, describeTokenError, encodeAuditCursor, maskAddress, maskDelivery, maskIns, maskName, maskResultsPage, maskSummary,
  maskText, roleAllows, roleFromClaims,
} from '@mssgw/auth';
import { hostAllowed } from '@mssgw/api';

describe('masking for viewers', () => {
  it('keeps an INS its first digit and last two, a name its first letter, an address its domain', () => {
    expect(maskIns('279035121518989')).toBe('2************89');
    expect(maskIns('294082A10000142')).toBe('2************42');
    expect(maskIns('123')).toBe('***');
    expect(maskName('ESSAI-NOËL')).toBe('E***');
    expect(maskName('Élodie')).toBe('É***');
    expect(maskName('')).toBe('');
    expect(maskAddress('279035121518989@patient.mssante.fr')).toBe('2************89@patient.mssante.fr');
    expect(maskAddress('alice.medecin-un@cabinet-demo.mssante.test')).toBe('a***@cabinet-demo.mssante.test');
    expect(maskAddress('PRT-4:810000000001')).toBe('PRT-4:8***');
    expect(maskAddress('nobody')).toBe('n***');
  });

  it('masks the addresses and long numbers inside free text', () => {
    expect(maskText('550 5.1.1 <unknown.zoe@cabinet-demo.mssante.test>: Recipient address rejected')).toBe('550 5.1.1 <u***@cabinet-demo.mssante.test>: Recipient address rejected');
    expect(maskText('no mailbox for RPPS 810000000001')).toBe('no mailbox for RPPS 8*********01');
    expect(maskText('not-whitelisted: domain example.org is not in the MSSanté liste blanche')).toBe('not-whitelisted: domain example.org is not in the MSSanté liste blanche');
    expect(maskText('DSN 2.0.0')).toBe('DSN 2.0.0');
  });

  it('masks a recipient record, its history, and a search summary, leaving ids and states', () => {
    const d = {
      deliveryId: 'd-1', resultId: 'r-1', recipient: '279035121518989@patient.mssante.fr', recipientId: '279035121518989', state: 'failed',
      detail: 'failed 5.1.1 279035121518989@patient.mssante.fr', smtpResponse: '250 2.0.0 Ok', history: [{ state: 'failed', detail: 'to 279035121518989@patient.mssante.fr' }, { state: 'queued' }],
    };
    const m = maskDelivery(d);
    expect(m).toEqual({
      ...d, recipient: '2************89@patient.mssante.fr', recipientId: '2***', detail: 'failed 5.1.1 2************89@patient.mssante.fr',
      history: [{ state: 'failed', detail: 'to 2************89@patient.mssante.fr' }, { state: 'queued' }],
    });
    expect(JSON.stringify(m)).not.toContain('279035121518989');
    const s = { resultId: 'r-1', patient: { ins: '180126511000157', family: 'DEMO-MARTIN', given: 'LUC' }, recipients: { delivered: 2 } };
    expect(maskSummary(s)).toEqual({ ...s, patient: { ins: '1************57', family: 'D***', given: 'L***' } });
    expect(maskResultsPage({ results: [s, { resultId: 'r-2', deliveries: [d] }] }).results.map((r) => JSON.stringify(r)).join()).not.toMatch(/279035121518989|180126511000157|MARTIN/);
  });

  it('never lets a long digit run or an address through free text, whatever surrounds it (property)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), fc.stringMatching(/^[0-9]{13,15}$/), fc.string({ maxLength: 40 }), (before, ins, after) => {
      const masked = maskText(`${before} ${ins}@patient.mssante.fr ${after}`);
      return !masked.includes(`${ins}@`);
    }));
  });
});

describe('roles', () => {
  const mapping = { 'mssgw-viewer': 'viewer', 'mssgw-operator': 'operator', 'mssgw-admin': 'admin' } as const;

  it('orders viewer < operator < admin', () => {
    expect([roleAllows('viewer', 'viewer'), roleAllows('viewer', 'operator'), roleAllows('operator', 'viewer'), roleAllows('operator', 'admin'), roleAllows('admin', 'operator')])
      .toEqual([true, false, true, false, true]);
  });

  it("maps a token's roles claim to the highest role it names", () => {
    expect(roleFromClaims({ roles: ['mssgw-viewer'] }, 'roles', mapping)).toBe('viewer');
    expect(roleFromClaims({ roles: ['other', 'mssgw-admin', 'mssgw-viewer'] }, 'roles', mapping)).toBe('admin');
    expect(roleFromClaims({ roles: ['mssgw-operator', 'mssgw-viewer'] }, 'roles', mapping)).toBe('operator');
    // Keycloak's nesting, and a space-separated string as `scope` is.
    expect(roleFromClaims({ realm_access: { roles: ['mssgw-operator'] } }, 'realm_access.roles', mapping)).toBe('operator');
    expect(roleFromClaims({ scope: 'openid mssgw-viewer' }, 'scope', mapping)).toBe('viewer');
    // A claim whose name holds a dot, as some IdPs use a URL.
    expect(roleFromClaims({ 'https://chu.example/roles': ['mssgw-admin'] }, 'https://chu.example/roles', mapping)).toBe('admin');
  });

  it('gives no role to a token without a mapped one, whatever its shape', () => {
    expect(roleFromClaims({}, 'roles', mapping)).toBeUndefined();
    expect(roleFromClaims({ roles: ['viewer', 'admin'] }, 'roles', mapping)).toBeUndefined(); // our names are not the IdP's
    expect(roleFromClaims({ roles: 42 }, 'roles', mapping)).toBeUndefined();
    expect(roleFromClaims({ roles: [{ name: 'mssgw-admin' }] }, 'roles', mapping)).toBeUndefined();
    expect(roleFromClaims({ roles: ['constructor', '__proto__', 'toString'] }, 'roles', mapping)).toBeUndefined();
    expect(roleFromClaims({ realm_access: 'mssgw-admin' }, 'realm_access.roles', mapping)).toBeUndefined();
    expect(claimAt({ a: { b: { c: 1 } } }, 'a.b.c')).toBe(1);
    expect(claimAt({ a: [1] }, 'a.0')).toBeUndefined();
  });
});

describe('the Host check', () => {
  it('passes the configured names, on any port unless one is given, and anything when none is configured', () => {
    expect(hostAllowed('evil.example', [])).toBe(true);
    expect(hostAllowed('api.chu-x.local', ['api.chu-x.local'])).toBe(true);
    expect(hostAllowed('API.CHU-X.local:8443', ['api.chu-x.local'])).toBe(true);
    expect(hostAllowed('api.chu-x.local:8443', ['api.chu-x.local:443'])).toBe(false);
    expect(hostAllowed('api.chu-x.local:443', ['api.chu-x.local:443'])).toBe(true);
    expect(hostAllowed('api.chu-x.local.evil.example', ['api.chu-x.local'])).toBe(false);
    expect(hostAllowed(undefined, ['api.chu-x.local'])).toBe(false);
    expect(hostAllowed('[::1]:8088', ['[::1]'])).toBe(true);
  });
});

describe('token failures and the audit cursor', () => {
  it('names each token failure with a fixed phrase, never the library message', () => {
    expect(describeTokenError(new errors.JWTExpired('"exp" claim timestamp check failed', { exp: 1 }))).toEqual({ refused: 'token expired' });
    expect(describeTokenError(new errors.JWTClaimValidationFailed('unexpected "aud" claim value', { aud: 'x' }, 'aud', 'check_failed'))).toEqual({ refused: 'token aud not accepted' });
    expect(describeTokenError(new errors.JWTClaimValidationFailed('x', {}, 'roles_of_DUPONT', 'check_failed'))).toEqual({ refused: 'token a claim not accepted' });
    expect(describeTokenError(new errors.JWSSignatureVerificationFailed())).toEqual({ refused: 'token signature invalid' });
    expect(describeTokenError(new errors.JWKSTimeout())).toEqual({ unavailable: "the identity provider's keys cannot be read" });
    expect(describeTokenError(new TypeError('fetch failed'))).toEqual({ unavailable: "the identity provider's keys cannot be read" });
  });

  it('round-trips the audit cursor and refuses one it did not give', () => {
    expect(decodeAuditCursor(encodeAuditCursor('1796596833086123', '42'))).toEqual({ atMicros: '1796596833086123', id: '42' });
    expect(decodeAuditCursor('bm9wZQ')).toBeUndefined();
    expect(decodeAuditCursor(Buffer.from("1.2'; drop table audit_events").toString('base64url'))).toBeUndefined();
  });
});
