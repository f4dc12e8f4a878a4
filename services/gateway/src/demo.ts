import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { GatewayConfig } from '@mssgw/config';
import { DirectoryStore } from '@mssgw/directory';
import { MllpClient } from '@mssgw/hl7';
import { isFinal, type Delivery } from '@mssgw/status';
import { startGateway } from './start.ts';

export interface DemoRow {
  file: string;
  controlId: string;
  ack: string;
  recipient: string;
  status: string;
  detail: string;
}

export const DEMO_SAMPLES = path.resolve(import.meta.dirname, '../../../deploy/demo/samples');
/** A small Annuaire Santé extraction naming the demo practitioners (with a few malformed rows, as the real one has). */
export const DEMO_DIRECTORY = path.resolve(import.meta.dirname, '../../../deploy/demo/directory/Extraction_Correspondance_MSSante_demo.txt');

/**
 * The main job end to end on the sandbox: start the gateway, send the shipped sample results over MLLP, wait until
 * every recipient has its outcome (a DSN for the delivered and the bounced ones), and return one row per recipient.
 */
export async function runDemo(config: GatewayConfig, options: { samplesDir?: string; timeoutMs?: number; keepRunning?: boolean } = {}) {
  // Its samples name fictitious patients and practitioners: never sent through a production operator.
  if (config.environment === 'production') throw new Error('the demo sends fictitious results: it runs on the demo\'s configuration (deploy/demo/gateway.yaml), never on a production one');
  const dir = options.samplesDir ?? DEMO_SAMPLES;
  const files = readdirSync(dir).filter((f) => f.endsWith('.hl7')).sort();
  // Without a directory of its own, the demo brings one, so that raw results (practitioners named by RPPS only)
  // find their mailboxes; the router imports it at start through its scheduled job.
  const withDirectory: GatewayConfig = config.directory.extraction
    ? config
    : { ...config, directory: { ...config.directory, extraction: { location: DEMO_DIRECTORY, refreshIntervalMs: 24 * 3600_000, minRatio: 0 } } };
  const gateway = await startGateway(withDirectory);
  const directory = new DirectoryStore(gateway.ctx.redis, config.redis.prefix);
  for (let waited = 0; !(await directory.info()) && waited < 30_000; waited += 200) await new Promise((r) => setTimeout(r, 200));
  const listenerFor = (file: string) => gateway.intake!.listeners.find((l) => file.startsWith(l.source)) ?? gateway.intake!.listeners[0]!;
  const sent: { file: string; controlId: string; ack: string; resultId?: string }[] = [];
  for (const file of files) {
    const listener = listenerFor(file);
    const client = new MllpClient({ host: '127.0.0.1', port: listener.port });
    await client.connect();
    const ack = await client.send(readFileSync(path.join(dir, file)));
    await client.close();
    const ids = await gateway.ctx.status.resultsByControlId(ack.controlId);
    sent.push({ file, controlId: ack.controlId, ack: ack.code + (ack.text ? ` ${ack.text}` : ''), ...(ids[0] ? { resultId: ids[0] } : {}) });
  }

  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  let rows: DemoRow[];
  for (;;) {
    await gateway.receipts?.sweep();
    rows = [];
    let pending = 0;
    for (const s of sent) {
      const result = s.resultId ? await gateway.ctx.status.getResult(s.resultId) : undefined;
      if (!result) {
        rows.push({ file: s.file, controlId: s.controlId, ack: s.ack, recipient: '-', status: s.ack.startsWith('AA') ? 'accepted' : 'rejected', detail: '' });
        if (s.ack.startsWith('AA')) pending++;
        continue;
      }
      if (!result.routedAt) pending++;
      for (const d of result.deliveries) {
        if (!isFinal(d.state)) pending++;
        rows.push({ file: s.file, controlId: s.controlId, ack: s.ack, recipient: d.recipient, status: d.state, detail: describe(d) });
      }
    }
    if (pending === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (!options.keepRunning) await gateway.stop();
  return { rows, gateway };
}

function describe(d: Delivery): string {
  if (d.state === 'refused') return `${d.reason}: ${d.detail ?? ''}`;
  if (d.dsnStatus) return `DSN ${d.dsnStatus}${d.state === 'failed' && d.detail ? ` (${d.detail.replace(/^failed \S+ /, '')})` : ''}`;
  return d.smtpResponse ?? d.detail ?? '';
}

export function formatTable(rows: DemoRow[]): string {
  const head: DemoRow = { file: 'sample', controlId: 'control id', ack: 'ack', recipient: 'recipient', status: 'status', detail: 'detail' };
  const cols: (keyof DemoRow)[] = ['file', 'controlId', 'ack', 'recipient', 'status', 'detail'];
  const width = (k: keyof DemoRow) => Math.min(60, Math.max(...[head, ...rows].map((r) => r[k].length)));
  const line = (r: DemoRow) => cols.map((k) => (k === 'detail' ? r[k] : r[k].slice(0, 60).padEnd(width(k)))).join('  ').trimEnd();
  return [line(head), cols.map((k) => '-'.repeat(width(k))).join('  '), ...rows.map(line)].join('\n');
}
