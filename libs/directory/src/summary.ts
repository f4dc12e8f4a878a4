import type { RejectedRow, RejectionReason } from './extraction.ts';
import type { ImportReport } from './store.ts';

const NUMBER = new Intl.NumberFormat('en-US');

/**
 * What an import rejected, for a person: the count by reason, then per reason the first line numbers (all counted,
 * a bounded few listed) and the detail of the first one when the report has it (the stored info does not). Never
 * the content of a row.
 */
export function describeRejections(report: Pick<ImportReport, 'rejected' | 'rejectedByReason' | 'rejectedLines'> & { rejections?: RejectedRow[] }): string[] {
  const reasons = Object.entries(report.rejectedByReason) as [RejectionReason, number][];
  const out = [`${report.rejected} rows rejected${reasons.length ? `: ${reasons.map(([r, n]) => `${r} ${n}`).join(', ')}` : ''}`];
  for (const [reason, count] of reasons) {
    const lines = report.rejectedLines?.[reason] ?? [];
    if (!lines.length) continue;
    const more = count > lines.length ? ` and ${NUMBER.format(count - lines.length)} more` : '';
    const detail = report.rejections?.find((r) => r.reason === reason)?.detail;
    out.push(count === 1
      ? `  ${reason}: line ${lines[0]}${detail ? `: ${detail}` : ''}`
      : `  ${reason}: lines ${lines.join(', ')}${more}${detail ? ` (the first: ${detail})` : ''}`);
  }
  return out;
}
