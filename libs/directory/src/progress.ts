import type { ImportProgress } from './store.ts';

/** Where progress goes: process.stderr, or a fake terminal in tests. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface ProgressLine {
  update(progress: ImportProgress): void;
  /** Erases the line, so that what is printed next starts on a clean one. */
  done(): void;
}

const NUMBER = new Intl.NumberFormat('en-US');
const ERASE_LINE = '\r\x1b[K';

/** One progress line: "directory import: 120,000 rows, 61,538 rows/s (3 rejected)". */
export function formatProgress(progress: ImportProgress, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? Math.round((progress.rows * 1000) / elapsedMs) : 0;
  const rejected = progress.rejected ? ` (${NUMBER.format(progress.rejected)} rejected)` : '';
  return `directory import: ${NUMBER.format(progress.rows)} rows, ${NUMBER.format(rate)} rows/s${rejected}`;
}

/**
 * A progress line rewritten in place on a terminal, at most once per `intervalMs`; nothing at all when the stream is
 * not a terminal, so logs and CI output hold only the final summary. The clock is a parameter for tests.
 */
export function progressLine(stream: ProgressStream, options: { now?: () => number; intervalMs?: number } = {}): ProgressLine {
  if (!stream.isTTY) return { update: () => {}, done: () => {} };
  const now = options.now ?? (() => performance.now());
  const intervalMs = options.intervalMs ?? 250;
  const started = now();
  let shownAt = started;
  let shown = false;
  return {
    update(progress) {
      const t = now();
      if (t - shownAt < intervalMs) return;
      shownAt = t;
      shown = true;
      // Cut to the terminal's width: a wrapped line could not be rewritten by a carriage return. Some terminals
      // (script, some CI ptys) report a width of 0: unknown, not zero.
      const width = Math.max((stream.columns || 80) - 1, 1);
      stream.write(`${ERASE_LINE}${formatProgress(progress, t - started).slice(0, width)}`);
    },
    done() {
      if (shown) stream.write(ERASE_LINE);
      shown = false;
    },
  };
}
