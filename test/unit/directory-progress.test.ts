import { describe, expect, it } from 'vitest';
import { describeRejections, formatProgress, progressLine, type RejectedRow } from '@mssgw/directory';

/** A terminal that records what is written, and a clock the test moves. */
function fakeTerminal(isTTY: boolean, columns = 80) {
  const writes: string[] = [];
  let now = 1_000;
  return {
    writes,
    stream: { isTTY, columns, write: (s: string) => writes.push(s) },
    clock: { now: () => now, advance: (ms: number) => (now += ms) },
  };
}

describe('import progress', () => {
  it('formats the rows read, the rate and the rejected count', () => {
    expect(formatProgress({ rows: 120_000, rejected: 0 }, 2_000)).toBe('directory import: 120,000 rows, 60,000 rows/s');
    expect(formatProgress({ rows: 1_500, rejected: 3 }, 1_000)).toBe('directory import: 1,500 rows, 1,500 rows/s (3 rejected)');
    expect(formatProgress({ rows: 0, rejected: 0 }, 0)).toBe('directory import: 0 rows, 0 rows/s');
  });

  it('rewrites one line in place on a terminal, at most once per interval, and erases it when done', () => {
    const t = fakeTerminal(true);
    const progress = progressLine(t.stream, { now: t.clock.now, intervalMs: 250 });
    progress.update({ rows: 1_000, rejected: 0 });
    t.clock.advance(100);
    progress.update({ rows: 2_000, rejected: 0 });
    expect(t.writes).toEqual([]);
    t.clock.advance(150);
    progress.update({ rows: 3_000, rejected: 0 });
    t.clock.advance(10);
    progress.update({ rows: 4_000, rejected: 0 });
    t.clock.advance(250);
    progress.update({ rows: 10_000, rejected: 2 });
    expect(t.writes).toEqual([
      '\r\x1b[Kdirectory import: 3,000 rows, 12,000 rows/s',
      '\r\x1b[Kdirectory import: 10,000 rows, 19,608 rows/s (2 rejected)',
    ]);
    progress.done();
    expect(t.writes.at(-1)).toBe('\r\x1b[K');
    expect(t.writes.join('')).not.toContain('\n');
  });

  it('cuts the line to the terminal width, so that a carriage return can rewrite it', () => {
    const t = fakeTerminal(true, 20);
    const progress = progressLine(t.stream, { now: t.clock.now });
    t.clock.advance(1_000);
    progress.update({ rows: 1_000_000, rejected: 12 });
    expect(t.writes).toEqual(['\r\x1b[Kdirectory import: 1']);
    // A terminal that does not know its width (columns 0) gets 80.
    const unknown = fakeTerminal(true, 0);
    const wide = progressLine(unknown.stream, { now: unknown.clock.now });
    unknown.clock.advance(1_000);
    wide.update({ rows: 1_000_000, rejected: 12 });
    expect(unknown.writes).toEqual(['\r\x1b[Kdirectory import: 1,000,000 rows, 1,000,000 rows/s (12 rejected)']);
  });

  it('writes nothing when the stream is not a terminal, nor when done before the first interval', () => {
    const pipe = fakeTerminal(false);
    const quiet = progressLine(pipe.stream, { now: pipe.clock.now });
    for (let i = 1; i <= 10; i++) {
      pipe.clock.advance(1_000);
      quiet.update({ rows: i * 1_000, rejected: 0 });
    }
    quiet.done();
    expect(pipe.writes).toEqual([]);

    const tty = fakeTerminal(true);
    const short = progressLine(tty.stream, { now: tty.clock.now });
    short.update({ rows: 1_000, rejected: 0 });
    short.done();
    expect(tty.writes).toEqual([]);
  });
});

describe('rejection summary', () => {
  it('counts every rejected row by reason and lists the first line numbers of each, with the first detail', () => {
    const rejections: RejectedRow[] = [
      { line: 4, reason: 'column-count', detail: '30 fields, expected 31 (or 31 and a trailing |)' },
      { line: 9, reason: 'address', detail: 'the mailbox address is missing or malformed' },
      { line: 12, reason: 'column-count', detail: '33 fields, expected 31 (or 31 and a trailing |)' },
    ];
    expect(describeRejections({
      rejected: 1_503,
      rejectedByReason: { 'column-count': 1_502, address: 1 },
      rejectedLines: { 'column-count': [4, 12, 20], address: [9] },
      rejections,
    })).toEqual([
      '1503 rows rejected: column-count 1502, address 1',
      '  column-count: lines 4, 12, 20 and 1,499 more (the first: 30 fields, expected 31 (or 31 and a trailing |))',
      '  address: line 9: the mailbox address is missing or malformed',
    ]);
    expect(describeRejections({ rejected: 0, rejectedByReason: {}, rejectedLines: {}, rejections: [] })).toEqual(['0 rows rejected']);
    // From the stored info: line numbers, no details.
    expect(describeRejections({ rejected: 2, rejectedByReason: { 'no-key': 2 }, rejectedLines: { 'no-key': [3, 8] } })).toEqual([
      '2 rows rejected: no-key 2',
      '  no-key: lines 3, 8',
    ]);
  });
});
