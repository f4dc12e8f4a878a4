// npm run conformance: prints how the gateway reads the corpora it carries (test/corpora) against their expected answers.
import { checkHl7Corpus, CORPORA } from './hl7-corpus.ts';
import { checkReceiptsCorpus } from './receipts-corpus.ts';

const reports = checkHl7Corpus();
const count = (v: string) => reports.filter((r) => r.verdict === v).length;
console.log(`HL7v2 corpora (${CORPORA}):`);
for (const r of reports) {
  const notes = `${r.warnings.length ? `  [warnings: ${r.warnings.join(', ')}]` : ''}${r.policy ? `  [refused by rule: ${r.policy}]` : ''}`;
  console.log(`  ${r.verdict.padEnd(16)} ${String(r.compared).padStart(4)} values  ${r.file}${notes}${r.problems.length ? `\n      ${r.problems.join('\n      ')}` : ''}`);
}
console.log(
  `  ${reports.length} files: ${count('match')} match, ${count('warned')} read with warnings, ${count('repaired')} repaired, ${count('rejected-invalid')} refused as invalid, ` +
    `${count('not-a-result')} not results, ${count('mismatch')} mismatches; ${reports.reduce((n, r) => n + r.compared, 0)} values compared`,
);
const r = await checkReceiptsCorpus();
const pct = (a: number, b: number) => `${a}/${b} (${((100 * a) / b).toFixed(1)} %)`;
console.log('\nReceipts (bounces-sisimai, dsn-mdn-misc):');
console.log(`  literal Action + Status per recipient block: ${pct(r.literal.matched, r.literal.total)}   target >= 99 %`);
console.log(`  status class on all bounces:               ${pct(r.statusClass.matched, r.statusClass.total)}   target >= 95 %`);
for (const m of r.statusClass.misses) console.log(`      ${m}`);
console.log(`  negatives not taken for receipts:           ${pct(r.negatives.refused, r.negatives.total)}`);
console.log(`  CRLF copies read like the LF ones:          ${pct(r.crlf.same, r.crlf.total)}`);
console.log(`  MDN disposition and Original-Message-ID:    ${pct(r.mdn.right, r.mdn.total)}`);
const receiptsOk = r.literal.matched / r.literal.total >= 0.99 && r.statusClass.matched / r.statusClass.total >= 0.95 && r.negatives.refused === r.negatives.total && r.mdn.right === r.mdn.total;
process.exitCode = count('mismatch') || !receiptsOk ? 1 : 0;
