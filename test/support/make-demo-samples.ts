// Regenerates deploy/demo/samples: `npm run samples`. Fictitious patients, INS test range.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DOCTORS, makeCisisResult, makeRawLabResult, PATIENTS } from './samples.ts';

const dir = path.resolve(import.meta.dirname, '../../deploy/demo/samples');
mkdirSync(dir, { recursive: true });
const [alice, bruno, chloe] = DOCTORS as [typeof DOCTORS[0], typeof DOCTORS[0], typeof DOCTORS[0]];
const [p1, p2, p3] = PATIENTS as [typeof PATIENTS[0], typeof PATIENTS[0], typeof PATIENTS[0]];
const files: Record<string, string | Buffer> = {
  'lab-01-crbio-medecin-et-patient.hl7': makeCisisResult({ controlId: 'DEMO-LAB-0001', patient: p1, doctors: [alice], toPatient: true, noReplyToPatient: true }),
  'lab-02-crbio-deux-medecins.hl7': makeCisisResult({ controlId: 'DEMO-LAB-0002', patient: p2, doctors: [alice, bruno], readReceipt: true, bodyPs: 'Cher confrère, veuillez trouver le compte rendu ci-joint.' }),
  'imaging-03-crimg-mdm.hl7': makeCisisResult({ controlId: 'DEMO-IMG-0003', patient: p3, doctors: [chloe], message: 'MDM', kind: 'imaging', toPatient: true }),
  'lab-04-destinataire-inconnu.hl7': makeCisisResult({ controlId: 'DEMO-LAB-0004', patient: p1, doctors: [bruno, { rpps: '810000000099', family: 'INCONNU', given: 'Zoé', address: 'unknown.zoe.inconnu@cabinet-demo.mssante.test' }] }),
  'lab-05-hors-liste-blanche.hl7': makeCisisResult({ controlId: 'DEMO-LAB-0005', patient: p2, doctors: [alice], extraAddresses: ['secretariat@example.org'] }),
  // Raw lab ORU in Latin-9 with practitioners named by RPPS only: the demo directory (deploy/demo/directory) resolves them.
  'lab-06-brut-sans-adresse.hl7': Buffer.from(makeRawLabResult({ controlId: 'DEMO-RAW-0006', patient: p3, ordering: alice, copies: [bruno] }), 'latin1'),
  // A CI-SIS message whose OBX-11 (D) contradicts ORC-1 (NW): refused with AE and an ERR segment.
  'lab-07-incoherent.hl7': makeCisisResult({ controlId: 'DEMO-LAB-0007', patient: p1, doctors: [alice] }).replace('||||||F|\rPRT', '||||||D|\rPRT'),
};
for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
console.log(`${Object.keys(files).length} samples written to ${dir}`);
