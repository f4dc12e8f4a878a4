/**
 * CDA R2 level 1 (nonXMLBody, IHE XDS-SD) around a report that arrived without a CDA: a raw lab or imaging result's
 * PDF, or its text rendered to PDF. The header follows the CI-SIS rules: INS in recordTarget, author by RPPS /
 * IDNPS (or the producing system when no practitioner is named), custodian, LOINC 11502-2 / 18748-4, effective time,
 * confidentiality, a unique id and set id / version so that a replacement names the document it replaces.
 */

export const LOINC = '2.16.840.1.113883.6.1';
export const IDNPS_OID = '1.2.250.1.71.4.2.1';
export const IDNST_OID = '1.2.250.1.71.4.2.2';
/** XDS-SD: the template of a scanned / wrapped document, hence formatCode urn:ihe:iti:xds-sd:pdf:2008. */
export const XDS_SD_TEMPLATE = '1.3.6.1.4.1.19376.1.2.20';

export const DOCUMENT_TYPES = {
  lab: { code: '11502-2', displayName: "CR d'examens biologiques" },
  imaging: { code: '18748-4', displayName: "CR d'imagerie médicale" },
} as const;

export interface InstanceId {
  root: string;
  extension?: string;
}

export interface CdaN1Input {
  documentId: InstanceId;
  setId: InstanceId;
  version: number;
  /** The document a replacement replaces (relatedDocument typeCode RPLC). */
  replaces?: InstanceId;
  type: keyof typeof DOCUMENT_TYPES;
  title?: string;
  /** YYYYMMDDHHMMSS, local time of the act. */
  effectiveTime: string;
  confidentiality: 'N' | 'R' | 'V';
  patient: {
    ins?: { value: string; oid: string };
    ipp?: { value: string; oid: string };
    family: string;
    given: string;
    birthDate?: string;
    sex?: string;
  };
  /** The practitioner responsible (RPPS in its IDNPS form, 8 + RPPS); without one the producing system is the author. */
  author?: { idNatPs: string; family?: string; given?: string };
  authoringSystem: { name: string };
  custodian: { idNatStruct: string; name: string };
  /** TRE_R02-SecteurActivite (healthcareFacilityTypeCode) and TRE_A01-CadreExercice (practiceSettingCode). */
  facilityType: { code: string; displayName: string };
  practiceSetting: { code: string; displayName: string };
  pdf: Buffer;
}

const x = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const ii = (tag: string, id: InstanceId) => `<${tag} root="${x(id.root)}"${id.extension ? ` extension="${x(id.extension)}"` : ''}/>`;
const GENDER: Record<string, string> = { M: 'M', F: 'F' };

export function buildCdaN1(d: CdaN1Input): Buffer {
  const type = DOCUMENT_TYPES[d.type];
  const title = d.title || type.displayName;
  const time = d.effectiveTime.slice(0, 14);
  const p = d.patient;
  const patientIds = [p.ins && ii('id', { root: p.ins.oid, extension: p.ins.value }), p.ipp && ii('id', { root: p.ipp.oid, extension: p.ipp.value })].filter(Boolean).join('');
  const org = `<representedOrganization>${ii('id', { root: IDNST_OID, extension: d.custodian.idNatStruct })}<name>${x(d.custodian.name)}</name></representedOrganization>`;
  const author = d.author
    ? `${ii('id', { root: IDNPS_OID, extension: d.author.idNatPs })}<assignedPerson><name>${d.author.family ? `<family>${x(d.author.family)}</family>` : ''}${d.author.given ? `<given>${x(d.author.given)}</given>` : ''}</name></assignedPerson>`
    : `${ii('id', { root: IDNST_OID, extension: d.custodian.idNatStruct })}<assignedAuthoringDevice><softwareName>${x(d.authoringSystem.name)}</softwareName></assignedAuthoringDevice>`;
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1"/>
  <templateId root="1.2.250.1.213.1.1.1.1"/>
  <templateId root="${XDS_SD_TEMPLATE}"/>
  ${ii('id', d.documentId)}
  <code code="${type.code}" codeSystem="${LOINC}" codeSystemName="LOINC" displayName="${x(type.displayName)}"/>
  <title>${x(title)}</title>
  <effectiveTime value="${time}"/>
  <confidentialityCode code="${d.confidentiality}" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  ${ii('setId', d.setId)}
  <versionNumber value="${d.version}"/>
  <recordTarget><patientRole>${patientIds}
    <patient><name><family qualifier="BR">${x(p.family)}</family><given>${x(p.given)}</given></name>
      <administrativeGenderCode code="${GENDER[p.sex ?? ''] ?? 'UN'}" codeSystem="2.16.840.1.113883.5.1"/>
      ${p.birthDate ? `<birthTime value="${x(p.birthDate.slice(0, 8))}"/>` : '<birthTime nullFlavor="UNK"/>'}</patient>
  </patientRole></recordTarget>
  <author><time value="${time}"/><assignedAuthor>${author}${org}</assignedAuthor></author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    ${ii('id', { root: IDNST_OID, extension: d.custodian.idNatStruct })}<name>${x(d.custodian.name)}</name>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <documentationOf><serviceEvent>
    <effectiveTime><low value="${time}"/><high value="${time}"/></effectiveTime>
    <performer typeCode="PRF"><assignedEntity>${d.author ? ii('id', { root: IDNPS_OID, extension: d.author.idNatPs }) : ii('id', { root: IDNST_OID, extension: d.custodian.idNatStruct })}
      <representedOrganization>${ii('id', { root: IDNST_OID, extension: d.custodian.idNatStruct })}<name>${x(d.custodian.name)}</name>
        <standardIndustryClassCode code="${x(d.practiceSetting.code)}" displayName="${x(d.practiceSetting.displayName)}" codeSystem="1.2.250.1.213.1.1.4.9"/>
      </representedOrganization></assignedEntity></performer>
  </serviceEvent></documentationOf>${d.replaces ? `
  <relatedDocument typeCode="RPLC"><parentDocument>${ii('id', d.replaces)}</parentDocument></relatedDocument>` : ''}
  <componentOf><encompassingEncounter>
    <effectiveTime><low value="${time}"/><high value="${time}"/></effectiveTime>
    <location><healthCareFacility><code code="${x(d.facilityType.code)}" displayName="${x(d.facilityType.displayName)}" codeSystem="1.2.250.1.71.4.2.4"/></healthCareFacility></location>
  </encompassingEncounter></componentOf>
  <component><nonXMLBody><text mediaType="application/pdf" representation="B64">${d.pdf.toString('base64')}</text></nonXMLBody></component>
</ClinicalDocument>
`;
  return Buffer.from(xml, 'utf8');
}
