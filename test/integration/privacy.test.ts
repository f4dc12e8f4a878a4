import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MllpClient } from '@mssgw/hl7';
import { startGateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

describe('health data stays out of the logs', () => {
  it('logs control ids and message ids at debug level, never names, INS, birth dates or addresses', async () => {
    const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'mssgw-log-')), 'gateway.log');
    process.env['MSSGW_LOG_FILE'] = logFile;
    const t = tag();
    const patient = PATIENTS[2]!;
    const doctor = { ...DOCTORS[1]!, address: `privacy-${t}@cabinet-demo.mssante.test` };
    const gateway = await startGateway(testConfig('privacy', (c) => (c.logLevel = 'debug')));
    try {
      const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
      await c.connect();
      const controlId = `PRIV-${t}`;
      await c.send(makeCisisResult({ controlId, patient, doctors: [doctor], toPatient: true, extraAddresses: ['someone@example.org'] }));
      await c.send(makeCisisResult({ controlId: `${controlId}-BAD`, patient, doctors: [doctor] }).replace('||||||F|\rPRT', '||||||D|\rPRT'));
      await c.close();
      const [resultId] = await gateway.ctx.status.resultsByControlId(controlId);
      await waitFor('delivery', async () => {
        await gateway.receipts!.sweep();
        return (await gateway.ctx.status.getResult(resultId!))?.deliveries.some((d) => d.state === 'delivered');
      });
    } finally {
      await gateway.stop();
      delete process.env['MSSGW_LOG_FILE'];
    }
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain(`PRIV-${t}`);
    expect(log).toMatch(/"messageId":"<r-[0-9a-f]{24}-ps@/);
    for (const secret of [patient.family, patient.given, patient.ins, patient.birthDate, doctor.address, doctor.family, 'someone@example.org', '@patient.mssante.fr']) {
      expect(log, secret).not.toContain(secret);
    }
  });
});
