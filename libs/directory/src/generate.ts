import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** The header of the ANS extraction (version of 2025-2026), 31 columns. */
export const EXTRACTION_HEADER = [
  'Type de BAL', 'Adresse BAL', 'Type Identifiant PP', 'Identifiant PP', 'Identification nationale PP',
  'Type identifiant structure', 'Identification Structure', 'Service de rattachement', "Civilité d'exercice",
  "Nom d'exercice", "Prénom d'exercice", 'Catégorie profession', 'Libellé de catégorie profession', 'Code Profession',
  'Libellé Profession', 'Code savoir-faire', 'Libellé savoir-faire', 'Dématérialisation', 'Raison Sociale structure BAL',
  'Enseigne commerciale structure BAL', 'L2COMPLEMENTLOCALISATION', 'L3COMPLEMENTDISTRIBUTION', 'L4NUMEROVOIE',
  'L4COMPLEMENTNUMEROVOIE', 'NL4TYPEVOIE', 'L4LIBELLEVOIE', 'L5LIEUDITMENTION', 'L6LIGNEACHEMINEMENT', 'Code postal',
  'Département', 'Pays',
].join('|');

export interface GeneratorOptions {
  rows: number;
  /** Every n-th row is malformed (wrong column count or bad address), to exercise the reject report; 0 for none. */
  invalidEvery?: number;
  /** The file as people have it after an export or an edit: a UTF-8 BOM, a `|` ending every line, CRLF line ends. */
  bom?: boolean;
  trailingPipe?: boolean;
  lineEnd?: '\n' | '\r\n';
}

const FAMILY = ['MARTIN', 'BERNARD', 'DUBOIS', 'THOMAS', 'ROBERT', 'RICHARD', 'PETIT', 'DURAND', 'LEROY', 'MOREAU', 'SIMON', 'LAURENT', 'LEFÈVRE', 'MICHEL', 'GARCIA', 'DAVID'];
const GIVEN = ['Jean', 'Marie', 'Élodie', 'Pierre', 'Anne', 'Louis', 'Chloé', 'Hugo', 'Léa', 'Paul', 'Inès', 'Jules'];
const DOMAINS = ['medecin.mssante.fr', 'pharmacien.mssante.fr', 'infirmier.mssante.fr', 'aura.mssante.fr', 'chu-exemple.mssante.fr', 'ght-nord.mssante.fr'];

/** RPPS of the i-th generated practitioner: 11 digits, stable across runs. */
export const generatedRpps = (i: number): string => String(10_000_000_000 + i * 7);
/** FINESS of the i-th generated structure (9 digits). */
export const generatedFiness = (i: number): string => String(750_000_000 + i);

/**
 * Writes a synthetic extraction shaped like the real one (about 85% PER, 15% ORG, some practitioners with a
 * mailbox at two structures). Deterministic: the same options give the same file, byte for byte.
 */
export async function generateExtraction(out: Writable, options: GeneratorOptions): Promise<void> {
  const write = async (s: string) => {
    if (!out.write(s)) await once(out, 'drain');
  };
  const end = `${options.trailingPipe ? '|' : ''}${options.lineEnd ?? '\n'}`;
  await write(`${options.bom ? '\uFEFF' : ''}${EXTRACTION_HEADER}${end}`);
  let chunk = '';
  let practitioner = 0;
  for (let i = 1; i <= options.rows; i++) {
    const structure = i % 5_000;
    const finess = generatedFiness(structure);
    const place = ['', '', '12', '', 'RUE', 'DE LA PAIX', '', `750${String(structure % 20).padStart(2, '0')} PARIS`, `750${String(structure % 20).padStart(2, '0')}`, '75', 'FRANCE'];
    let fields: string[];
    if (i % 7 === 0) {
      fields = ['ORG', `secretariat.s${structure}.${i}@${DOMAINS[i % DOMAINS.length]}`, '', '', '', '1', `1${finess}`, `Service ${i % 40}`,
        '', '', '', '', '', '', '', '', '', '', `CENTRE HOSPITALIER ${structure}`, '', ...place];
    } else {
      // One practitioner in ten also has a mailbox at a second structure (the next row).
      if (i % 10 !== 1) practitioner++;
      const rpps = generatedRpps(practitioner);
      const family = FAMILY[practitioner % FAMILY.length]!;
      const given = GIVEN[practitioner % GIVEN.length]!;
      const local = `${given}.${family}`.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
      fields = ['PER', `${local}.${practitioner}${i % 10 === 1 ? `.s${structure}` : ''}@${DOMAINS[practitioner % DOMAINS.length]}`, '8', rpps, `8${rpps}`, '1', `1${finess}`, '',
        'DR', family, given, 'C', 'Civil', '10', 'Médecin', 'SM54', 'Médecine générale', 'O', `CABINET ${structure}`, '', ...place];
    }
    if (options.invalidEvery && i % options.invalidEvery === 0) {
      // Two fields short: one short with a trailing `|` would be a well-formed row with an empty last column.
      if ((i / options.invalidEvery) % 2) fields.length -= 2;
      else fields[1] = 'not-an-address';
    }
    chunk += `${fields.join('|')}${end}`;
    if (chunk.length > 1 << 16) {
      await write(chunk);
      chunk = '';
    }
  }
  await write(chunk);
}
