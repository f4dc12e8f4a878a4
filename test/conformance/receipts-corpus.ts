import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseReceipt, type Receipt } from '@mssgw/receipts';
import { CORPORA } from './hl7-corpus.ts';

const tsv = (file: string) => {
  const [head, ...rows] = readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split('\t'));
  return rows.map((r) => Object.fromEntries(head!.map((h, i) => [h, r[i] ?? ''])));
};
const address = (v: string) => v.replace(/^[^;@]*;/, '').trim().replace(/^<|>$/g, '').toLowerCase();

export interface ReceiptsFigures {
  literal: { matched: number; total: number; misses: string[] };
  statusClass: { matched: number; total: number; misses: string[] };
  negatives: { refused: number; total: number; misses: string[] };
  crlf: { same: number; total: number; misses: string[] };
  mdn: { right: number; total: number; misses: string[] };
}

/** The bounce and receipt corpora (bounces-sisimai, dsn-mdn-misc) against their expected answers. */
export async function checkReceiptsCorpus(root = CORPORA): Promise<ReceiptsFigures> {
  const base = path.join(root, 'bounces-sisimai');
  const cache = new Map<string, Receipt>();
  const read = async (dir: string, file: string) => {
    const key = `${dir}/${file}`;
    if (!cache.has(key)) cache.set(key, await parseReceipt(readFileSync(path.join(base, dir, file))));
    return cache.get(key)!;
  };
  const mine = (r: Receipt, recipient: string, index: number) =>
    r.kind === 'dsn' ? (r.recipients.find((x) => x.recipient === address(recipient)) ?? r.recipients[index - 1] ?? r.recipients[0]) : undefined;

  const literal = { matched: 0, total: 0, misses: [] as string[] };
  for (const row of tsv(path.join(base, 'dsn-literal.tsv'))) {
    literal.total++;
    const got = mine(await read('eml', row['file']!), row['final_recipient'] || row['original_recipient']!, Number(row['block']));
    // The status is the code; a comment after it ("5.1.1 (user unknown)") is not part of the value.
    const literalStatus = got?.statusInferred ? '' : got?.status;
    if (got && got.action === row['action']!.toLowerCase() && literalStatus === (row['status']!.split(/\s/)[0] ?? '')) literal.matched++;
    else literal.misses.push(`${row['file']} #${row['block']}: expected ${row['action']} ${row['status']}, got ${got ? `${got.action} ${got.status}` : 'no recipient'}`);
  }

  const statusClass = { matched: 0, total: 0, misses: [] as string[] };
  for (const row of tsv(path.join(base, 'expected.tsv'))) {
    if (!row['status']) continue; // ARF feedback reports: no delivery status to compare
    statusClass.total++;
    const r = await read('eml', row['file']!);
    const got = mine(r, row['recipient']!, Number(row['index']));
    if (got && got.status[0] === row['status'][0]) statusClass.matched++;
    else statusClass.misses.push(`${row['file']}: expected class ${row['status'][0]} (${row['status']} ${row['reason']}), got ${got ? got.status || '(none)' : r.kind}`);
  }

  const negatives = { refused: 0, total: 0, misses: [] as string[] };
  for (const file of readdirSync(path.join(base, 'negatives')).sort()) {
    negatives.total++;
    const r = await read('negatives', file);
    if (r.kind === 'other') negatives.refused++;
    else negatives.misses.push(`${file}: taken for a ${r.kind}`);
  }

  const crlf = { same: 0, total: 0, misses: [] as string[] };
  for (const file of existsSync(path.join(base, 'eml-crlf')) ? readdirSync(path.join(base, 'eml-crlf')).sort() : []) {
    crlf.total++;
    const [a, b] = [await read('eml', file), await read('eml-crlf', file)];
    const summary = (r: Receipt) => JSON.stringify(r.kind === 'dsn' ? r.recipients.map((x) => [x.recipient, x.action, x.status]) : r.kind);
    if (summary(a) === summary(b)) crlf.same++;
    else crlf.misses.push(`${file}: ${summary(a)} vs ${summary(b)}`);
  }

  const mdn = { right: 0, total: 0, misses: [] as string[] };
  const misc = path.join(root, 'dsn-mdn-misc');
  for (const row of tsv(path.join(misc, 'expected.tsv')).filter((r) => r['kind'] === 'mdn')) {
    mdn.total++;
    const r = await parseReceipt(readFileSync(path.join(misc, row['file']!)));
    const wantType = row['disposition']!.split(';').pop()!.trim().split('/')[0];
    const wantId = row['original_message_id']!.replace(/^\([^)]*\)\s*/, '').replace(/^<|>$/g, '');
    const ok = r.kind === 'mdn' && r.disposition.type === wantType && (!wantId || (r.originalMessageId ?? '').replace(/^<|>$/g, '') === wantId);
    if (ok) mdn.right++;
    else mdn.misses.push(`${row['file']}: ${JSON.stringify(r).slice(0, 200)}`);
  }
  return { literal, statusClass, negatives, crlf, mdn };
}
