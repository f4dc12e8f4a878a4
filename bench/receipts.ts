import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseReceipt, UnreadableMail } from '@mssgw/receipts';
import { metrics } from '@mssgw/telemetry';
import { startGateway } from '../services/gateway/src/start.ts';
import { CORPORA } from '../test/conformance/hl7-corpus.ts';
import { SANDBOX, testConfig } from '../test/support/env.ts';
import { hostileCorpus } from '../test/support/hostile-mail.ts';
import { round } from './stats.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../test/fixtures/receipts/postfix-success-dsn.eml');

export interface ReceiptsFigures {
  postfixDsnPerSecond: number;
  corpusMixPerSecond: number;
  endToEndPerSecond: number;
  endToEndReceipts: number;
  hostile: HostileFigures;
}

export interface HostileFigures {
  /** The slowest mail of the hostile corpus, in ms of parsing per MB of mail. */
  worstMsPerMb: number;
  worstMail: string;
  /** CPU of one pass over the whole corpus, per MB. */
  cpuMsPerMb: number;
  mails: number;
  megabytes: number;
}

const MB = 1024 * 1024;

/**
 * The hostile corpus (test/support/hostile-mail.ts: 1 MB floods, deep and wide MIME, a 10 MB attachment) parsed
 * in-process with the default limits, three times; the first pass warms up and is not counted.
 */
export async function benchHostileReceipts(): Promise<HostileFigures> {
  const corpus = hostileCorpus(MB);
  const bytes = corpus.reduce((n, h) => n + h.mail.length, 0);
  let worstMsPerMb = 0;
  let worstMail = '';
  let cpuMs = 0;
  for (let pass = 0; pass < 3; pass++) {
    const cpu = process.cpuUsage();
    for (const h of corpus) {
      const t = performance.now();
      await parseReceipt(h.mail).catch((err: unknown) => {
        if (!(err instanceof UnreadableMail)) throw err; // set aside: what the reader quarantines
      });
      const msPerMb = (performance.now() - t) / (h.mail.length / MB);
      if (pass > 0 && msPerMb > worstMsPerMb) [worstMsPerMb, worstMail] = [msPerMb, h.name];
    }
    const used = process.cpuUsage(cpu);
    if (pass > 0) cpuMs += (used.user + used.system) / 1000 / 2;
  }
  return { worstMsPerMb: round(worstMsPerMb, 1), worstMail, cpuMsPerMb: round(cpuMs / (bytes / MB), 2), mails: corpus.length, megabytes: round(bytes / MB, 1) };
}

async function rate(mails: Buffer[], ms: number): Promise<number> {
  for (const m of mails) await parseReceipt(m);
  let n = 0;
  const t = performance.now();
  while (performance.now() - t < ms) {
    for (const m of mails) {
      await parseReceipt(m);
      n++;
    }
  }
  return n / ((performance.now() - t) / 1000);
}

/** Parsing in-process, then the receipts service reading N real DSNs from Dovecot and recording them. */
export async function benchReceipts(n: number): Promise<ReceiptsFigures> {
  const template = readFileSync(FIXTURE, 'latin1');
  const corpus = readdirSync(path.join(CORPORA, 'bounces-sisimai/eml')).map((f) => readFileSync(path.join(CORPORA, 'bounces-sisimai/eml', f)));
  const postfixDsnPerSecond = await rate([Buffer.from(template, 'latin1')], 2000);
  const corpusMixPerSecond = await rate(corpus, 3000);
  const hostile = await benchHostileReceipts();

  const config = testConfig('bench-receipts', (c) => (c.logLevel = 'warn'));
  const mailbox = config.mailboxes[0]!.address;
  const gateway = await startGateway(config, ['api']);
  const envid = /Original-Envelope-Id: (\S+)/.exec(template)![1]!;
  const rcpt = /Final-Recipient: rfc822; (\S+)/.exec(template)![1]!;
  for (let i = 0; i < n; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, n - i) }, async (_, k) => {
      const deliveryId = `d-bench${String(i + k).padStart(17, '0')}`;
      await gateway.ctx.status.createDelivery({ deliveryId, resultId: 'r-bench', recipient: `b${i + k}@cabinet-demo.mssante.test`, kind: 'professional', state: 'queued' });
      await gateway.ctx.status.transition(deliveryId, 'submitted', 'dispatcher');
    }));
  }
  // Drop the DSNs into the mailbox as the operator's delivery agent would.
  const [local, domain] = mailbox.split('@') as [string, string];
  const dir = path.join(SANDBOX, 'mail', domain, local);
  const uid = Number(execFileSync('id', ['-u', 'mssgw-vmail']).toString());
  const gid = Number(execFileSync('id', ['-g', 'mssgw-vmail']).toString());
  for (const sub of ['', 'new', 'cur', 'tmp']) {
    mkdirSync(path.join(dir, sub), { recursive: true });
    chownSync(path.join(dir, sub), uid, gid);
  }
  for (let i = 0; i < n; i++) {
    const file = path.join(dir, 'new', `${Date.now()}.B${i}.bench`);
    writeFileSync(file, template.replaceAll(envid, `d-bench${String(i).padStart(17, '0')}`).replaceAll(rcpt, `b${i}@cabinet-demo.mssante.test`), 'latin1');
    chownSync(file, uid, gid);
  }
  const before = await delivered();
  const t0 = performance.now();
  const receipts = await startGateway(config, ['receipts']);
  while ((await delivered()) - before < n) await new Promise((r) => setTimeout(r, 50));
  const seconds = (performance.now() - t0) / 1000;
  await receipts.stop();
  await gateway.stop();
  return { postfixDsnPerSecond: round(postfixDsnPerSecond, 0), corpusMixPerSecond: round(corpusMixPerSecond, 0), endToEndPerSecond: round(n / seconds, 0), endToEndReceipts: n, hostile };
}

async function delivered(): Promise<number> {
  return (await metrics.receipts.get()).values.filter((v) => v.labels.outcome === 'delivered').reduce((s, v) => s + v.value, 0);
}
