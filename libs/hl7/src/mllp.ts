/** MLLP v1 framing: <VT> message <FS><CR>. */
export const VT = 0x0b;
export const FS = 0x1c;
export const CR = 0x0d;

export const frame = (message: string | Buffer): Buffer => {
  const body = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  return Buffer.concat([Buffer.from([VT]), body, Buffer.from([FS, CR])]);
};

export type MllpEvent =
  | { type: 'message'; payload: Buffer }
  /** A frame larger than the limit: its bytes were dropped as they came, the sender gets a rejection. */
  | { type: 'oversized'; bytes: number }
  /** Bytes outside any frame (not MLLP, or a sender that lost sync). */
  | { type: 'garbage'; bytes: number };

/**
 * Incremental decoder: feed it TCP chunks, get whole frames. Memory stays bounded by maxBytes per connection
 * whatever the sender does; a frame split over any number of reads is reassembled.
 */
export class MllpDecoder {
  private chunks: Buffer[] = [];
  private size = 0;
  private inFrame = false;
  private discarding = false;
  private garbage = 0;
  /** The previous chunk ended with FS: the CR may come in the next read. */
  private pendingFs = false;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  push(chunk: Buffer): MllpEvent[] {
    const events: MllpEvent[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.pendingFs) {
        this.pendingFs = false;
        if (chunk[i] === CR) i++;
        this.endFrame(events);
        continue;
      }
      if (!this.inFrame) {
        const start = chunk.indexOf(VT, i);
        const skipped = (start < 0 ? chunk.length : start) - i;
        this.garbage += skipped;
        if (start < 0) break;
        if (this.garbage > 0) events.push({ type: 'garbage', bytes: this.garbage });
        this.garbage = 0;
        this.inFrame = true;
        i = start + 1;
        continue;
      }
      const end = chunk.indexOf(FS, i);
      const stop = end < 0 ? chunk.length : end;
      this.append(chunk.subarray(i, stop));
      if (end < 0) break;
      i = end + 1;
      if (i >= chunk.length) {
        this.pendingFs = true;
        break;
      }
      if (chunk[i] === CR) i++;
      this.endFrame(events);
    }
    return events;
  }

  /** Bytes buffered for the frame in progress (for idle / half-open accounting). */
  get buffered(): number {
    return this.size;
  }

  private append(part: Buffer): void {
    if (part.length === 0) return;
    this.size += part.length;
    if (this.discarding) return;
    if (this.size > this.maxBytes) {
      this.discarding = true;
      this.chunks = [];
      return;
    }
    this.chunks.push(part);
  }

  private endFrame(events: MllpEvent[]): void {
    if (this.discarding) events.push({ type: 'oversized', bytes: this.size });
    else events.push({ type: 'message', payload: this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size) });
    this.chunks = [];
    this.size = 0;
    this.inFrame = false;
    this.discarding = false;
  }
}
