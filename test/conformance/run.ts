// npm run conformance: prints how the gateway reads the shared corpora against their expected answers.
import { checkHl7Corpus, CORPORA } from './hl7-corpus.ts';

const reports = checkHl7Corpus();
const count = (v: string) => reports.filter((r) => r.verdict === v).length;
console.log(`HL7v2 corpora (${CORPORA}):`);
for (const r of reports) console.log(`  ${r.verdict.padEnd(16)} ${String(r.compared).padStart(4)} values  ${r.file}${r.policy ? `  [refused by rule: ${r.policy}]` : ''}${r.problems.length ? `\n      ${r.problems.join('\n      ')}` : ''}`);
console.log(
  `  ${reports.length} files: ${count('match')} match, ${count('repaired')} repaired, ${count('rejected-invalid')} refused as invalid, ` +
    `${count('not-a-result')} not results, ${count('mismatch')} mismatches; ${reports.reduce((n, r) => n + r.compared, 0)} values compared`,
);
process.exitCode = count('mismatch') ? 1 : 0;
