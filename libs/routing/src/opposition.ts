import { readFile, stat } from 'node:fs/promises';
import type { QueuedResult } from '@mssgw/hl7';
import type { NewOpposition, OppositionDirection, OppositionSubject } from '@mssgw/store';

/** A line of an opposition file that was not taken, by line number (never its content: it holds a patient's id). */
export interface RejectedLine {
  line: number;
  reason: 'identifier' | 'direction' | 'date' | 'columns';
}

export interface ParsedOppositionFile {
  entries: NewOpposition[];
  rejected: RejectedLine[];
  /** Lines of the old format (a bare id, matched as an INS or an IPP of any facility). */
  legacy: number;
}

const DIRECTIONS: Record<string, OppositionDirection[]> = {
  patient: ['patient'], professionals: ['professionals'], both: ['patient', 'professionals'],
};
const ID = /^[0-9A-Za-z._-]{1,64}$/;
const FACILITY = /^[^\s@;,]{1,128}$/;

/**
 * An identifier as the file, the CLI and the API write it: `INS:<ins>`, `IPP:<ipp>@<facility>` (the facility that
 * assigned it, as its results name it in MSH-4), or a bare id (the old file format: an INS, or an IPP of any facility).
 */
export function parseOppositionSubject(text: string): OppositionSubject | undefined {
  const m = /^(ins|ipp):(.*)$/i.exec(text.trim());
  if (!m) return ID.test(text.trim()) ? { idType: 'any', patientId: text.trim() } : undefined;
  if (m[1]!.toLowerCase() === 'ins') return ID.test(m[2]!) ? { idType: 'ins', patientId: m[2]! } : undefined;
  const at = m[2]!.lastIndexOf('@');
  const [ipp, facility] = at > 0 ? [m[2]!.slice(0, at), m[2]!.slice(at + 1)] : [m[2]!, ''];
  return ID.test(ipp) && FACILITY.test(facility) ? { idType: 'ipp', patientId: ipp, facility } : undefined;
}

/** `patient`, `professionals` or `both`, as the directions they stand for. */
export const oppositionDirections = (text: string): OppositionDirection[] | undefined => DIRECTIONS[text.toLowerCase()];

/**
 * Reads an opposition file. One opposition per line, '#' starts a comment, columns separated by spaces, tabs, ';'
 * or ',':
 *
 *     ID [DIRECTION [DATE]]
 *
 * ID as parseOppositionSubject reads it; DIRECTION `patient` (the default, what a file of the old format meant),
 * `professionals` or `both`; DATE when the patient opposed (`2026-11-30` or an ISO date-time), else the time it is
 * first imported. A file of the old format (one INS or IPP per line) reads as it did.
 */
export function parseOppositionFile(text: string, now = Date.now()): ParsedOppositionFile {
  const entries: NewOpposition[] = [];
  const rejected: RejectedLine[] = [];
  let legacy = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const cols = raw.replace(/#.*/, '').trim().split(/[\s;,]+/).filter(Boolean);
    if (!cols.length) return;
    const line = i + 1;
    if (cols.length > 3) return void rejected.push({ line, reason: 'columns' });
    const subject = parseOppositionSubject(cols[0]!);
    if (!subject) return void rejected.push({ line, reason: 'identifier' });
    const directions = oppositionDirections(cols[1] ?? 'patient');
    if (!directions) return void rejected.push({ line, reason: 'direction' });
    const opposedAt = cols[2] === undefined ? now : Date.parse(cols[2]);
    if (Number.isNaN(opposedAt)) return void rejected.push({ line, reason: 'date' });
    if (subject.idType === 'any') legacy++;
    for (const direction of directions) entries.push({ ...subject, direction, opposedAt });
  });
  return { entries, rejected, legacy };
}

/**
 * The opposition file (routing.patientOpposition.file), an import source of the oppositions kept in the message
 * store: read again when it changes. A file that cannot be read keeps what was imported before (a patient once
 * opposed stays opposed), and the failure is reported.
 */
export class OppositionFile {
  private mtimeMs = 0;
  private timer?: NodeJS.Timeout;
  private readonly file: string;

  constructor(file: string) {
    this.file = file;
  }

  /** The file's oppositions if it changed since the last read; undefined when it did not. */
  async read(): Promise<ParsedOppositionFile | undefined> {
    const { mtimeMs } = await stat(this.file);
    if (mtimeMs === this.mtimeMs) return undefined;
    const parsed = parseOppositionFile(await readFile(this.file, 'utf8'));
    this.mtimeMs = mtimeMs;
    return parsed;
  }

  /** Calls `changed` with the file's oppositions each time it changes, checked every `intervalMs`. */
  watch(intervalMs: number, changed: (parsed: ParsedOppositionFile) => Promise<void>, onError: (err: Error) => void): void {
    // A failure (unreadable file, store out of reach) forgets the file's date, so that the next check tries again.
    const failed = (err: Error) => {
      this.mtimeMs = 0;
      onError(err);
    };
    this.timer = setInterval(() => void this.read().then((p) => (p ? changed(p) : undefined)).catch(failed), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** The identifiers of a result's patient an opposition is looked up by: INS, IPP, and the facility that sent it (MSH-4). */
export const patientIdsOf = (result: Pick<QueuedResult, 'patient' | 'sendingFacility'>) => ({
  ins: result.patient.ins?.value, ipp: result.patient.ipp, facility: result.sendingFacility,
});
