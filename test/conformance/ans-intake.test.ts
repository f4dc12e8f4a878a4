import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { demoDefaults, type GatewayConfig } from '@mssgw/config';
import { Hl7Error, parseResult, Reason, type Hl7Warning, type IntakeTolerance } from '@mssgw/hl7';
import { DEFAULT_BODIES } from '@mssgw/mssante';
import { composeResult } from '../../services/gateway/src/compose.ts';
import { CORPORA } from './hl7-corpus.ts';

/**
 * The ANS's own example messages (test/corpora/hl7v2-france-ans) through `mssgw parse` and `mssgw compose`: which
 * the gateway takes, with which warnings, and which it refuses by which rule. A file added to the corpus fails the
 * first test until it is given its expected outcome here.
 */
const ANS = path.join(CORPORA, 'hl7v2-france-ans');
const ROOT = path.resolve(import.meta.dirname, '../..');

type Outcome = { warnings: string[] } | { refused: string };

/** With the default tolerance (mailBody warn, flagMatrix strict). */
const DEFAULT: Record<string, Outcome> = {
  // Not results: the intake takes ORU and MDM only.
  'ack-oru-v2.1.hl7': { refused: 'NOT_A_RESULT' },
  'zam-z01-reception-dmp.hl7': { refused: 'NOT_A_RESULT' },
  'zam-z02-reception-mss.hl7': { refused: 'NOT_A_RESULT' },
  'zam-z03-lecture-mss.hl7': { refused: 'NOT_A_RESULT' },
  // The report's own Base64 is unpadded (v1.2) or a placeholder (teleradiology draft): a report cut short cannot be
  // told from a whole one, so it is never sent.
  'mdm-t02-crbio-v1.2.hl7': { refused: 'ED_BASE64' },
  'oru-crbio-v1.2.hl7': { refused: 'ED_BASE64' },
  'oru-teleradiologie-flux3-draft.hl7': { refused: 'ED_BASE64' },
  // DESTMSSANTEPS=Y, DESTMSSANTEPAT=N with INVISIBLE_PATIENT=N: a row the volet's table does not have.
  'mdm-t04-crimagerie-v2.0-del-n1.hl7': { refused: 'FLAG_COMBINATION' },
  'mdm-t10-crimagerie-v2.0-rplc-n1.hl7': { refused: 'FLAG_COMBINATION' },
  'mdm-t02-crimagerie-v2.1-init-n1.hl7': { warnings: [] },
  'mdm-t02-crimagerie-v2.1-init-n1-base64-full.hl7': { warnings: [] },
  'mdm-t02-lps-mssante-v1.0-init-n1.hl7': { warnings: [] },
  // CORPSMAIL_PS cut short: sent with the default body.
  'oru-crbio-segur-init-n3-base64-full.hl7': { warnings: ['CORPSMAIL_BASE64'] },
  'oru-crbio-v2.1-init-n1-n3.hl7': { warnings: ['CORPSMAIL_BASE64'] },
  'oru-crbio-v2.1-rplc-n1-n3.hl7': { warnings: ['CORPSMAIL_BASE64'] },
  'oru-crbio-v2.1-del-n1-n3.hl7': { warnings: ['CORPSMAIL_BASE64'] },
};

const config = (): GatewayConfig => {
  const c = demoDefaults('/nonexistent-sandbox');
  c.environment = 'test';
  c.intake.tolerance['ris-legacy'] = { mailBody: 'warn', flagMatrix: 'lenient' };
  c.intake.tolerance['lab-strict'] = { mailBody: 'reject', flagMatrix: 'strict' };
  c.mailboxes[0]!.sources.push('ris-legacy', 'lab-strict');
  return c;
};
// The ANS examples address test-ci-sis.mssante.fr and hopitalA.mssante.fr.
const allowsDomain = (d: string, forPatient: boolean) => (d === 'patient.mssante.fr' ? forPatient : d.endsWith('.mssante.fr'));
const codes = (w: Hl7Warning[]) => w.map((x) => Reason[x.reason].code);

function parseOutcome(file: string, tolerance?: IntakeTolerance): Outcome {
  try {
    return { warnings: codes(parseResult(readFileSync(path.join(ANS, file)), tolerance).warnings) };
  } catch (err) {
    if (!(err instanceof Hl7Error)) throw err;
    return { refused: err.reasonCode };
  }
}

async function composeOutcome(file: string, source: string): Promise<Outcome> {
  try {
    return { warnings: codes((await composeResult(readFileSync(path.join(ANS, file)), { config: config(), source, allowsDomain, now: 0 })).warnings) };
  } catch (err) {
    if (!(err instanceof Hl7Error)) throw err;
    return { refused: err.reasonCode };
  }
}

describe('the ANS example messages through mssgw parse and mssgw compose', () => {
  const files = readdirSync(ANS).filter((f) => f.endsWith('.hl7')).sort();

  it('takes every result the volet allows, with the warnings due, and refuses the others by the rule they break', async () => {
    expect(files).toEqual(Object.keys(DEFAULT).sort());
    for (const f of files) {
      expect([f, parseOutcome(f)]).toEqual([f, DEFAULT[f]]);
      expect([f, await composeOutcome(f, 'lab')]).toEqual([f, DEFAULT[f]]);
    }
    const accepted = files.filter((f) => 'warnings' in DEFAULT[f]!);
    expect([accepted.length, accepted.filter((f) => (DEFAULT[f] as { warnings: string[] }).warnings.length).length]).toEqual([7, 4]);
  });

  it('sends the warned results with the default body for their action, to the recipients the producer named', async () => {
    const bodies = { initial: 'init', replace: 'rplc', delete: 'del' } as const;
    for (const [action, tag] of Object.entries(bodies) as [keyof typeof bodies, string][]) {
      const composed = await composeResult(readFileSync(path.join(ANS, `oru-crbio-v2.1-${tag}-n1-n3.hl7`)), { config: config(), source: 'lab', allowsDomain, now: 0 });
      expect(composed.result.action).toBe(action);
      expect(composed.mails.map((m) => [m.spec.audience, m.spec.to])).toEqual([
        ['professional', ['adam.hoda@test-ci-sis.mssante.fr']],
        ['patient', ['279035121518989@patient.mssante.fr']],
      ]);
      expect(composed.mails.map((m) => m.spec.text)).toEqual([
        DEFAULT_BODIES.professional[action].replace('{label}', "CR d'examens biologiques"),
        DEFAULT_BODIES.patient[action].replace('{label}', "CR d'examens biologiques"),
      ]);
    }
  });

  it('refuses the cut mail bodies for a source set to mailBody "reject", as before', async () => {
    for (const f of files.filter((x) => (DEFAULT[x] as { warnings?: string[] }).warnings?.includes('CORPSMAIL_BASE64'))) {
      expect([f, parseOutcome(f, { mailBody: 'reject', flagMatrix: 'strict' })]).toEqual([f, { refused: 'CORPSMAIL_BASE64' }]);
      expect([f, await composeOutcome(f, 'lab-strict')]).toEqual([f, { refused: 'CORPSMAIL_BASE64' }]);
    }
  });

  it('sends the T04 and T10 examples to the professionals alone for a source set to flagMatrix "lenient"', async () => {
    for (const f of ['mdm-t04-crimagerie-v2.0-del-n1.hl7', 'mdm-t10-crimagerie-v2.0-rplc-n1.hl7']) {
      const composed = await composeResult(readFileSync(path.join(ANS, f)), { config: config(), source: 'ris-legacy', allowsDomain, now: 0 });
      expect(codes(composed.warnings)).toEqual(['FLAG_COMBINATION']);
      expect(composed.warnings[0]!.message).toMatch(/; sent to professionals only \(lenient mapping\)$/);
      expect(composed.mails.map((m) => [m.spec.audience, m.spec.to])).toEqual([['professional', ['adam.hoda@test-ci-sis.mssante.fr']]]);
    }
  });

  it('shows the warnings in the output of mssgw parse and mssgw compose, and the reason of a refusal', () => {
    const mssgw = (args: string[]) => {
      const r = spawnSync(path.join(ROOT, 'services/gateway/bin/mssgw'), args, { encoding: 'utf8', env: { ...process.env, MSSGW_REDIS_URL: 'redis://127.0.0.1:1' }, timeout: 60_000 });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
    const file = path.join(ANS, 'oru-crbio-v2.1-init-n1-n3.hl7');
    const parsed = mssgw(['parse', file, '--json']);
    expect(parsed.code).toBe(0);
    const where = { segment: 'OBX', sequence: 22, field: 5 };
    expect((JSON.parse(parsed.out) as { warnings: unknown[] }).warnings).toEqual([
      { code: 'CORPSMAIL_BASE64', location: where, text: 'OBX 13 (CORPSMAIL_PS): its Base64 is cut short or invalid; ignored, the default body is sent' },
    ]);
    const out = mkdtempSync(path.join(tmpdir(), 'mssgw-ans-'));
    const composed = mssgw(['compose', file, '--out', out]);
    expect(composed.code).toBe(0);
    expect(composed.out).toContain('\nwarning  CORPSMAIL_BASE64 at OBX[22]-5: OBX 13 (CORPSMAIL_PS): its Base64 is cut short or invalid; ignored, the default body is sent\n');
    const refused = mssgw(['parse', path.join(ANS, 'mdm-t04-crimagerie-v2.0-del-n1.hl7')]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/^mssgw: AE 103 at OBX\[10\]-5: MetaDMPMSS combination not in the volet's MSSanté table: .* \[FLAG_COMBINATION\]\n$/);
  });
});
