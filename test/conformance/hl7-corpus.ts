import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeHl7, Er7Message, Hl7Error, readResult, Reason, validateResult, type ResultMessage } from '@mssgw/hl7';
import { readCdaHeader } from '@mssgw/mssante';

/** The test corpora the project carries (test/corpora, each folder with its SOURCE.md). */
export const CORPORA = path.resolve(import.meta.dirname, '../corpora');

interface ExpectedEd { base64_valid?: boolean; decoded_bytes?: number; sha256?: string; nested_pdf?: { decoded_bytes: number; sha256: string }[] }
interface ExpectedFile {
  msh: { message_type: string; control_id: string; version: string };
  pid?: { ins: { value: string; oid: string } | null } | null;
  practitioners_fr: { field: string; id: string }[];
  obx: { set_id: string; value_type: string; result_status?: string; ed?: ExpectedEd }[];
  corpus_note?: { joined_decoded_bytes: number; joined_sha256: string };
}

export type Verdict =
  /** Read with every compared value as expected. */
  | 'match'
  /** Refused cleanly (Hl7Error 102 at the OBX) where the expected answers mark the Base64 invalid. */
  | 'rejected-invalid'
  /**
   * Read with every compared value as expected, each ED the expected answers mark invalid being an optional mail body
   * (CORPSMAIL_*) ignored with a warning at that very OBX.
   */
  | 'warned'
  /** Read after joining a segment the sender had broken over two lines; values as the corpus note gives them. */
  | 'repaired'
  /** Not a result (ACK, ZAM, MDM^T01...): refused with AR, header values as expected. */
  | 'not-a-result'
  | 'mismatch';

export interface FileReport {
  file: string;
  verdict: Verdict;
  /** Result-level rule refusing the message (flag matrix, action consistency), recorded beside the verdict: reason code and text. */
  policy?: string;
  /** Reason codes of the warnings the ACK would carry. */
  warnings: string[];
  problems: string[];
  compared: number;
}

/** The practitioner fields the gateway reads, as the expected answers name them. */
const READ_FIELDS = new Set(['PRT-5', 'ORC-12', 'OBR-16', 'OBR-28', 'OBR-32']);

function compareFile(dir: string, file: string, expected: ExpectedFile): FileReport {
  const problems: string[] = [];
  let compared = 0;
  const check = (what: string, got: unknown, want: unknown) => {
    compared++;
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  };
  const bytes = readFileSync(path.join(dir, file));
  const msg = new Er7Message(decodeHl7(bytes).text);
  const msh = msg.first('MSH');
  check('MSH-9', Er7Message.raw(msh, 9), expected.msh.message_type);
  check('MSH-10', msg.get(msh, 10), expected.msh.control_id);
  check('MSH-12', msg.get(msh, 12), expected.msh.version);

  const invalidEd = expected.obx.some((o) => o.ed && o.ed.base64_valid === false);
  let result: ResultMessage;
  try {
    result = readResult(msg);
  } catch (err) {
    if (!(err instanceof Hl7Error)) throw err;
    if (invalidEd && err.code === '102') return { file, verdict: problems.length ? 'mismatch' : 'rejected-invalid', problems, compared, warnings: [] };
    if (['200', '201'].includes(err.code)) return { file, verdict: problems.length ? 'mismatch' : 'not-a-result', problems, compared, warnings: [] };
    return { file, verdict: 'mismatch', problems: [...problems, `refused: ${err.code} ${err.message}`], compared, warnings: [] };
  }
  // Each ED marked invalid was read past only as an unreadable mail body, with a warning at its own OBX.
  const ignored = expected.obx.flatMap((o, i) => (o.ed?.base64_valid === false && !expected.corpus_note ? [i] : []));
  for (const i of ignored) {
    const obx = result.observations[i];
    const warned = obx && result.warnings.some((w) => w.reason === 'mailBodyBase64' && w.location?.sequence === obx.segmentIndex);
    compared++;
    if (!warned) problems.push(`OBX ${expected.obx[i]!.set_id}: read although the expected answers mark its ED invalid Base64, with no warning for it`);
  }

  const ins = expected.pid?.ins ?? null;
  check('INS', result.patient.ins ? { value: result.patient.ins.value, oid: result.patient.ins.oid } : null, ins ? { value: ins.value, oid: ins.oid } : null);
  const ids = new Set(result.participants.map((p) => p.id));
  for (const p of expected.practitioners_fr.filter((x) => READ_FIELDS.has(x.field))) check(`${p.field} id ${p.id}`, ids.has(p.id), true);

  check('OBX count', result.observations.length, expected.obx.length);
  check('OBX value types', result.observations.map((o) => o.valueType), expected.obx.map((o) => o.value_type));
  // A segment the sender broke over two lines has no OBX-11 when read literally; the corpus note covers it.
  const literalCut = (o: ExpectedFile['obx'][number]) => Boolean(expected.corpus_note && o.ed?.base64_valid === false);
  check(
    'OBX-11 statuses',
    result.observations.filter((_, i) => !literalCut(expected.obx[i]!)).map((o) => o.status),
    expected.obx.filter((o) => !literalCut(o)).map((o) => o.result_status ?? ''),
  );
  expected.obx.forEach((o, i) => {
    const mine = result.observations[i];
    if (!o.ed || !mine) return;
    if (o.ed.base64_valid === false && expected.corpus_note) {
      check(`OBX ${o.set_id} ED (joined)`, mine.ed, { bytes: expected.corpus_note.joined_decoded_bytes, sha256: expected.corpus_note.joined_sha256 });
      return;
    }
    if (o.ed.decoded_bytes === undefined) return; // not Base64: inline text, nothing decoded to compare
    check(`OBX ${o.set_id} ED`, mine.ed, { bytes: o.ed.decoded_bytes, sha256: o.ed.sha256 });
    const nested = o.ed.nested_pdf?.[0];
    if (nested) {
      const doc = result.documents.find((d) => d.segmentIndex === mine.segmentIndex);
      const pdf = doc?.kind === 'cda' ? readCdaHeader(doc.content).pdf : undefined;
      check(`OBX ${o.set_id} PDF in the CDA`, pdf ? { bytes: pdf.length, sha256: sha(pdf) } : null, { bytes: nested.decoded_bytes, sha256: nested.sha256 });
    }
  });

  let policy: string | undefined;
  try {
    validateResult(result);
  } catch (err) {
    policy = `${(err as Hl7Error).reasonCode} ${(err as Error).message}`;
  }
  const verdict: Verdict = problems.length ? 'mismatch' : msg.joinedLines > 0 ? 'repaired' : ignored.length ? 'warned' : 'match';
  return { file, verdict, ...(policy ? { policy } : {}), problems, compared, warnings: result.warnings.map((w) => Reason[w.reason].code) };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

type Tree = { [key: string]: TreeValue[] };
type TreeValue = string | Tree;

/**
 * Compares every leaf of a HAPI parse tree (NIST ELR corpus, `<name>.expected.json`) with what our reader gives at
 * the same place: segment occurrence, field, repetition, component, subcomponent. Returns [compared, problems].
 */
export function compareParseTree(msg: Er7Message, tree: Tree): [number, string[]] {
  const occurrences = new Map<string, Tree[]>();
  const walk = (node: Tree) => {
    for (const [key, value] of Object.entries(node)) {
      const values = Array.isArray(value) ? value : [value as TreeValue]; // the root message is not in a list
      if (/^[A-Z][A-Z0-9]{2}$/.test(key)) occurrences.set(key, [...(occurrences.get(key) ?? []), ...(values as Tree[])]);
      else for (const v of values) if (typeof v === 'object') walk(v);
    }
  };
  walk(tree);
  let compared = 0;
  const problems: string[] = [];
  for (const [id, trees] of occurrences) {
    const segments = msg.all(id);
    trees.forEach((segTree, occ) => {
      const seg = segments[occ];
      for (const [fieldKey, reps] of Object.entries(segTree)) {
        const n = Number(fieldKey.split('.')[1]);
        const raw = Er7Message.raw(seg, n);
        const mine = id === 'MSH' && n <= 2 ? [raw] : msg.repetitions(raw);
        reps.forEach((rep, r) => {
          const leaves: [string, string][] = [];
          // HAPI's reading: a field (or component) of a primitive type keeps only its first component
          // (subcomponent), and values are trimmed.
          const collect = (v: TreeValue, where: string, value: string, depth: number) => {
            if (typeof v === 'string') {
              const first = depth === 0 ? msg.components(value)[0]! : depth === 1 ? msg.subcomponents(value)[0]! : value;
              return void leaves.push([where, id === 'MSH' && n <= 2 ? value : first]);
            }
            for (const [k, list] of Object.entries(v)) {
              const idx = Number(k.split('.')[1]) - 1;
              const parts = depth === 0 ? msg.components(value) : msg.subcomponents(value);
              collect(list[0]!, `${where}.${idx + 1}`, parts[idx] ?? '', depth + 1);
            }
          };
          collect(rep, `${id}[${occ + 1}]-${n}~${r + 1}`, mine[r] ?? '', 0);
          for (const [where, value] of leaves) {
            const want = (() => {
              let v: TreeValue = rep;
              for (const part of where.split('~')[1]!.split('.').slice(1)) v = (v as Tree)[Object.keys(v as Tree).find((k) => k.endsWith(`.${part}`))!]![0]!;
              return v as string;
            })();
            compared++;
            const got = id === 'MSH' && n <= 2 ? value : msg.unescape(value).trim();
            if (got !== want.trim()) problems.push(`${where}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
          }
        });
      }
    });
  }
  return [compared, problems];
}

/** Every HL7 file of the corpora with an expected.json beside it. */
export function checkHl7Corpus(root = CORPORA): FileReport[] {
  const reports: FileReport[] = [];
  for (const folder of readdirSync(root).filter((f) => f.startsWith('hl7v2-')).sort()) {
    const dir = path.join(root, folder);
    const expectedFile = path.join(dir, 'expected.json');
    if (!existsSync(expectedFile)) continue;
    const expected = JSON.parse(readFileSync(expectedFile, 'utf8')) as Record<string, ExpectedFile>;
    for (const [file, exp] of Object.entries(expected).sort()) {
      const report = { ...compareFile(dir, file, exp), file: `${folder}/${file}` };
      const treeFile = path.join(dir, file.replace(/\.hl7$/, '.expected.json'));
      if (existsSync(treeFile)) {
        const msg = new Er7Message(decodeHl7(readFileSync(path.join(dir, file))).text);
        const [n, problems] = compareParseTree(msg, JSON.parse(readFileSync(treeFile, 'utf8')) as Tree);
        report.compared += n;
        report.problems.push(...problems);
        if (problems.length) report.verdict = 'mismatch';
      }
      reports.push(report);
    }
  }
  return reports;
}
