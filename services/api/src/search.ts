import { DELIVERY_STATES } from '@mssgw/lifecycle';
import { decodeCursor, searchKey, type ResultSearch } from '@mssgw/store';

/** GET /api/v1/results: a lookup (controlId or documentId, alone) or a search (any of the others). */
export const LOOKUP_PARAMETERS = ['controlId', 'documentId'] as const;
export const SEARCH_PARAMETERS = ['patient', 'name', 'source', 'documentType', 'recipient', 'state', 'from', 'to', 'cursor', 'limit'] as const;
export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

/** The query string's schema: each parameter's shape. What the shapes cannot say, parseSearch checks. */
export const resultsQuerySchema = {
  type: 'object',
  properties: {
    // By the producer's control id (MSH-10) or by a document id (CDA ClinicalDocument/id as root^extension, TXA-12).
    controlId: { type: 'string', minLength: 1, maxLength: 199 },
    documentId: { type: 'string', minLength: 1, maxLength: 400 },
    patient: { type: 'string', pattern: '^[0-9A-Za-z]{1,64}$', description: "the patient's INS (PID-3), exactly" },
    name: { type: 'string', minLength: 1, maxLength: 100, description: 'a prefix of "family given", any case, with or without accents' },
    source: { type: 'string', minLength: 1, maxLength: 200 },
    documentType: { type: 'string', pattern: '^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$', description: 'the document code (LOINC), e.g. 11502-2' },
    recipient: { type: 'string', minLength: 1, maxLength: 320, description: "a recipient's address, any case" },
    state: { type: 'string', enum: DELIVERY_STATES, description: 'results with at least one recipient in this state' },
    from: { type: 'string', maxLength: 40, description: 'received at or after (ISO 8601 date, or date-time with its zone)' },
    to: { type: 'string', maxLength: 40, description: 'received before (a date alone: until the end of that day, UTC)' },
    cursor: { type: 'string', maxLength: 64, description: 'the next of the page before' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, description: `results per page (default ${DEFAULT_LIMIT})` },
  },
} as const;

export type ResultsQuery = { controlId?: string; documentId?: string; patient?: string; name?: string; source?: string; documentType?: string;
  recipient?: string; state?: string; from?: string; to?: string; cursor?: string; limit?: number };

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|[+-](\d{2}):(\d{2})))?$/;

/**
 * An ISO 8601 date or date-time as an instant PostgreSQL reads exactly. A date-time must say its zone; a date alone
 * is a UTC day, which `to` includes (its end is the next day's start). Undefined when it is not a real date.
 */
export function instantOf(text: string, end: boolean): string | undefined {
  const m = ISO.exec(text);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return undefined;
  if (m[4] === undefined) return new Date(Date.UTC(y, mo - 1, d + (end ? 1 : 0))).toISOString();
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59 || Number(m[8] ?? 0) > 23 || Number(m[9] ?? 0) > 59) return undefined;
  return text;
}

/**
 * A search from the query string, or why it is refused. The reason names the parameter, never its value (a name or
 * an INS is personal data).
 */
export function parseSearch(q: ResultsQuery): ResultSearch | { refused: string } {
  const search: ResultSearch = { limit: q.limit ?? DEFAULT_LIMIT };
  if (q.patient !== undefined) search.patientIns = q.patient;
  if (q.name !== undefined) {
    if (!searchKey(q.name)) return { refused: 'name must have a letter or a digit' };
    search.name = q.name;
  }
  if (q.source !== undefined) search.source = q.source;
  if (q.documentType !== undefined) search.documentCode = q.documentType;
  if (q.recipient !== undefined) search.recipient = q.recipient;
  if (q.state !== undefined) search.state = q.state;
  for (const key of ['from', 'to'] as const) {
    const text = q[key];
    if (text === undefined) continue;
    const at = instantOf(text, key === 'to');
    if (!at) return { refused: `${key} must be an ISO 8601 date (2026-11-26) or date-time with its zone (2026-11-26T09:30:00Z, 2026-11-26T10:30:00+01:00)` };
    search[key] = at;
  }
  if (search.from && search.to && Date.parse(search.from) >= Date.parse(search.to)) return { refused: 'from must be before to' };
  if (q.cursor !== undefined) {
    const after = decodeCursor(q.cursor);
    if (!after) return { refused: 'cursor is not one this API gave' };
    search.after = after;
  }
  return search;
}

/** Parameter names in a raw query string that the route does not know (a typo would otherwise widen the search): by default, GET /api/v1/results's. */
export function unknownParameters(url: string, names: readonly string[] = [...LOOKUP_PARAMETERS, ...SEARCH_PARAMETERS]): string[] {
  const known = new Set<string>(names);
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  return [...new Set([...new URLSearchParams(query).keys()])].filter((k) => !known.has(k));
}
