import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mailboxFiles, tag, waitFor } from '../support/env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const LAUNCHER = path.join(ROOT, 'services/gateway/bin/mssgw');

/**
 * `mssgw opposition` and `mssgw patient close` (issue #25) as an operator runs them, through the launcher, on the
 * demo's configuration with a schema and a Redis prefix of their own, against the sandbox operator.
 */
describe('mssgw opposition and mssgw patient close', () => {
  const t = tag();
  const env = { MSSGW_POSTGRES_SCHEMA: `test_oppcli_${t}`, MSSGW_REDIS_PREFIX: `test-oppcli-${t}`, MSSGW_LOG_LEVEL: 'silent' };
  const mssgw = (...args: string[]) => {
    const r = spawnSync(LAUNCHER, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const INS = '180126511000157';
  const OPPOSED = '279035121518989';

  it('records, lists and withdraws oppositions, audited by row id; closes a conversation with one [FIN] mail', async () => {
    const added = mssgw('opposition', 'add', `INS:${INS}`, '--direction', 'both', '--date', '2026-11-30');
    expect(added).toMatchObject({ code: 0, out: expect.stringMatching(/2 opposition\(s\) recorded/) as unknown });
    expect(mssgw('opposition', 'add', `INS:${OPPOSED}`, '--direction', 'patient').code).toBe(0);
    // A bare id says neither INS nor IPP, and an IPP needs its facility: refused.
    expect(mssgw('opposition', 'add', INS, '--direction', 'patient')).toMatchObject({ code: 2, err: expect.stringMatching(/INS:<ins>, or IPP:<ipp>@<facility>/) as unknown });
    expect(mssgw('opposition', 'remove', `INS:${INS}`, '--direction', 'patient')).toMatchObject({ code: 0, out: expect.stringMatching(/1 opposition\(s\) removed/) as unknown });
    const list = JSON.parse(mssgw('opposition', 'list', '--json').out) as { patientId: string; direction: string; origin: string }[];
    expect(list.map((o) => [o.patientId, o.direction, o.origin])).toEqual([[INS, 'professionals', 'cli'], [OPPOSED, 'patient', 'cli']]);
    const audit = mssgw('audit', '--json', '--limit', '10');
    const events = JSON.parse(audit.out) as { route: string; ids: string[]; actor: string }[];
    expect(events.map((e) => e.route)).toEqual(expect.arrayContaining(['mssgw opposition add', 'mssgw opposition remove']));
    expect(events.find((e) => e.route === 'mssgw opposition remove')?.ids).toEqual(['opposition:1']);
    expect(audit.out).not.toContain(INS);

    // An opposition to professionals does not stop the patient's own [FIN]; one to the patient does (exit status 4).
    const closed = mssgw('patient', 'close', INS, '--mailbox', 'labo-noreply@chu-demo.mssante.test', '--json');
    expect(closed.code).toBe(0);
    const record = JSON.parse(closed.out) as { state: string; messageId: string; deliveryId: string };
    expect(record.state).toBe('submitted');
    const mail = await waitFor('the [FIN] mail', () => Promise.resolve(mailboxFiles(`${INS}@patient.mssante.fr`).find((m) => m.includes(record.messageId))), 60_000);
    expect(mail.toString('utf8')).toMatch(/^Subject: \[FIN\]$/m);
    expect(mssgw('patient', 'close', OPPOSED, '--mailbox', 'labo-noreply@chu-demo.mssante.test').code).toBe(4);
  }, 300_000);
});
