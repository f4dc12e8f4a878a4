/** MLLP v1 framing: <VT> message <FS><CR>. */
export const VT = 0x0b;
export const FS = 0x1c;
export const CR = 0x0d;

export const frame = (message: string | Buffer): Buffer => {
  const body = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  return Buffer.concat([Buffer.from([VT]), body, Buffer.from([FS, CR])]);
};

/** Reads shorter than this are copied into a staging buffer of STAGE_BYTES rather than kept as views. */
const SMALL_PART = 4096;
const STAGE_BYTES = 16 * 1024;

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
  private framing = false;
  /**
   * Small reads are copied into this staging buffer instead of kept as views: a sender trickling one byte per TCP
   * segment would otherwise make the decoder hold an object of ~100 bytes per byte received.
   */
  private stage: Buffer | undefined;
  private staged = 0;
  private discarding = false;
  private garbage = 0;
  /** The previous chunk ended with FS: the CR may come in the next read. */
  private pendingFs = false;
  private readonly maxBytes: number;
  private read = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /**
   * Reads a chunk. With maxFrames, it stops after that many frames have ended: `consumed` then says how much of the
   * chunk was read, and the caller hands the rest back later (a listener takes no more frames than it will answer).
   */
  push(chunk: Buffer, maxFrames = Infinity): MllpEvent[] {
    const events: MllpEvent[] = [];
    let i = 0;
    let ended = 0;
    while (i < chunk.length && ended < maxFrames) {
      if (this.pendingFs) {
        this.pendingFs = false;
        if (chunk[i] === CR) i++;
        this.endFrame(events);
        ended++;
        continue;
      }
      if (!this.framing) {
        const start = chunk.indexOf(VT, i);
        const skipped = (start < 0 ? chunk.length : start) - i;
        this.garbage += skipped;
        if (start < 0) {
          i = chunk.length;
          break;
        }
        if (this.garbage > 0) events.push({ type: 'garbage', bytes: this.garbage });
        this.garbage = 0;
        this.framing = true;
        i = start + 1;
        continue;
      }
      const end = chunk.indexOf(FS, i);
      const stop = end < 0 ? chunk.length : end;
      this.append(chunk.subarray(i, stop), end >= 0);
      if (end < 0) {
        i = chunk.length;
        break;
      }
      i = end + 1;
      if (i >= chunk.length) {
        this.pendingFs = true;
        break;
      }
      if (chunk[i] === CR) i++;
      this.endFrame(events);
      ended++;
    }
    this.read = i;
    return events;
  }

  /** Bytes of the last chunk pushed that were read; less than its length only when push stopped at maxFrames. */
  get consumed(): number {
    return this.read;
  }

  /** Bytes held for the frame in progress (none while an oversized frame is being dropped). */
  get buffered(): number {
    return this.discarding ? 0 : this.size;
  }

  /** A frame has started (its VT was read) and not yet ended. */
  get inFrame(): boolean {
    return this.framing;
  }

  /** `last`: the frame's end is in the same read, so a frame read whole is handed on as a view, without a copy. */
  private append(part: Buffer, last: boolean): void {
    if (part.length === 0) return;
    this.size += part.length;
    if (this.discarding) return;
    if (this.size > this.maxBytes) {
      this.discarding = true;
      this.chunks = [];
      this.staged = 0;
      return;
    }
    if (part.length >= SMALL_PART || (last && this.chunks.length === 0 && this.staged === 0)) {
      this.unstage();
      this.chunks.push(part);
      return;
    }
    if (this.stage && this.staged + part.length > this.stage.length) this.unstage();
    this.stage ??= Buffer.allocUnsafeSlow(STAGE_BYTES);
    part.copy(this.stage, this.staged);
    this.staged += part.length;
  }

  /** The staged bytes become a chunk of their own; the next small read starts a new staging buffer. */
  private unstage(): void {
    if (this.staged === 0) return;
    this.chunks.push(this.stage!.subarray(0, this.staged));
    this.stage = undefined;
    this.staged = 0;
  }

  private endFrame(events: MllpEvent[]): void {
    if (this.discarding) events.push({ type: 'oversized', bytes: this.size });
    else if (this.staged > 0 || this.chunks.length !== 1) {
      // A copy of the exact size: the staging buffer is reused for the next frame.
      const parts = this.staged > 0 ? [...this.chunks, this.stage!.subarray(0, this.staged)] : this.chunks;
      events.push({ type: 'message', payload: Buffer.concat(parts, this.size) });
    } else events.push({ type: 'message', payload: this.chunks[0]! });
    this.chunks = [];
    this.staged = 0;
    this.size = 0;
    this.framing = false;
    this.discarding = false;
  }
}
