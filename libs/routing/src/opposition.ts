import { readFile, stat } from 'node:fs/promises';
import type { QueuedResult } from '@mssgw/hl7';

/**
 * Patients who refused that their results be sent electronically, by INS or IPP, one per line ('#' starts a
 * comment). Kept in memory as a set; reloaded when the file changes. A file that cannot be read keeps the last list
 * (a patient once opposed stays opposed), and the failure is reported.
 */
export class OppositionList {
  private ids = new Set<string>();
  private mtimeMs = 0;
  private timer?: NodeJS.Timeout;
  private readonly file: string;

  constructor(file: string) {
    this.file = file;
  }

  get size(): number {
    return this.ids.size;
  }

  /** Loads the file if it changed; returns whether it was (re)loaded. */
  async load(): Promise<boolean> {
    const { mtimeMs } = await stat(this.file);
    if (mtimeMs === this.mtimeMs) return false;
    const text = await readFile(this.file, 'utf8');
    this.ids = new Set(text.split(/\r?\n/).map((l) => l.replace(/#.*/, '').trim()).filter(Boolean));
    this.mtimeMs = mtimeMs;
    return true;
  }

  watch(intervalMs: number, onError: (err: Error) => void): void {
    this.timer = setInterval(() => void this.load().catch(onError), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  opposes(patient: QueuedResult['patient']): boolean {
    return Boolean((patient.ins && this.ids.has(patient.ins.value)) || (patient.ipp && this.ids.has(patient.ipp)));
  }
}
