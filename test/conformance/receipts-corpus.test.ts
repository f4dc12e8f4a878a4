import { describe, expect, it } from 'vitest';
import { checkReceiptsCorpus } from './receipts-corpus.ts';

describe('bounce and receipt corpora (bounces-sisimai, dsn-mdn-misc) against their expected answers', async () => {
  const f = await checkReceiptsCorpus();

  it('reproduces the literal Action and Status of every machine-readable recipient block (≥ 99 %)', () => {
    expect(f.literal.total).toBe(133);
    expect(f.literal.matched / f.literal.total).toBeGreaterThanOrEqual(0.99);
  });

  it('gives the expected status class (2/4/5) on all bounces, text-only ones inferred (≥ 95 %)', () => {
    expect(f.statusClass.total).toBe(270);
    expect(f.statusClass.matched / f.statusClass.total, f.statusClass.misses.join('\n')).toBeGreaterThanOrEqual(0.95);
  });

  it('takes none of the negatives (auto-replies, ordinary mail) for a receipt', () => {
    expect(f.negatives).toMatchObject({ refused: 6, total: 6 });
  });

  it('reads the CRLF copies exactly as the LF ones, and every MDN right', () => {
    expect(f.crlf.misses).toEqual([]);
    expect(f.crlf.total).toBe(27);
    expect(f.mdn).toMatchObject({ right: 3, total: 3 });
  });
});
