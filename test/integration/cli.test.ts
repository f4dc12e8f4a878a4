import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const mssgw = (args: string[], env: Record<string, string> = {}) => {
  const r = spawnSync(path.join(ROOT, 'node_modules/.bin/node'), [path.join(ROOT, 'services/gateway/bin/mssgw.ts'), ...args], {
    encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('mssgw command line', () => {
  it('prints its help', () => {
    const r = mssgw(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/mssgw start \[service\.\.\.\]/);
  });

  it('stops at start-up on a bad setting, naming the key and what was expected', () => {
    const r = mssgw(['start'], { MSSGW_HTTP_PORT: 'eighty' });
    expect(r.code).toBe(78);
    expect(r.err).toContain('MSSGW_HTTP_PORT: expected a number, got "eighty"');
  });

  it('refuses an unknown service', () => {
    expect(mssgw(['start', 'mailer'])).toMatchObject({ code: 2, err: expect.stringMatching(/unknown service mailer/) as unknown });
  });

  it('lists and replays dead letters, and says so when there is nothing to replay', () => {
    const env = { MSSGW_REDIS_PREFIX: `test-cli-${Date.now()}` };
    expect(mssgw(['dlq', 'list'], env)).toMatchObject({ code: 0, out: expect.stringContaining('0 dead-lettered deliveries') as unknown });
    expect(mssgw(['dlq', 'replay', 'd-000000000000000000000000'], env)).toMatchObject({ code: 2, err: expect.stringContaining('no dead-lettered delivery') as unknown });
    expect(mssgw(['dlq', 'replay'], env)).toMatchObject({ code: 2, err: expect.stringContaining('usage: mssgw dlq') as unknown });
  });

  it('prints what a receipt says, as JSON with the documented fields', () => {
    const r = mssgw(['receipt', path.join(ROOT, 'test/fixtures/receipts/postfix-failure-dsn.eml'), '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { kind: string; envelopeId: string; originalMessageId: string; recipients: { recipient: string; action: string; status: string; diagnosticCode: string }[] };
    expect(j.kind).toBe('dsn');
    expect(j.envelopeId).toMatch(/^d-[0-9a-f]{24}$/);
    expect(j.originalMessageId).toMatch(/^<r-[0-9a-f]{24}-ps@chu-demo\.mssante\.test>$/);
    expect(j.recipients[0]).toMatchObject({ action: 'failed', status: '5.1.1', diagnosticCode: expect.stringContaining('User unknown') as unknown });
  });

  it('parses a result file to JSON, and reports a file the listener would refuse with exit status 2', () => {
    const ok = mssgw(['parse', path.join(ROOT, 'deploy/demo/samples/lab-01-crbio-medecin-et-patient.hl7'), '--json']);
    expect(ok.code).toBe(0);
    const parsed = JSON.parse(ok.out) as { controlId: string; patient: { ins: { oid: string } }; documents: { kind: string }[] };
    expect([parsed.controlId, parsed.patient.ins.oid, parsed.documents[0]!.kind]).toEqual(['DEMO-LAB-0001', '1.2.250.1.213.1.4.10', 'cda']);
    const bad = mssgw(['parse', path.join(ROOT, 'deploy/demo/samples/lab-07-incoherent.hl7')]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/AE 103 at OBX\[\d+\]-11: OBX-11 "D" contradicts ORC-1 "NW"/);
  });
});
