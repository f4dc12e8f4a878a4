import type { GatewayConfig, RecipientRole } from '@mssgw/config';
import { chooseMailbox, type PractitionerDirectory } from '@mssgw/directory';
import type { QueuedResult } from '@mssgw/hl7';
import { PATIENT_DOMAIN } from '@mssgw/whitelist';

export { PATIENT_DOMAIN };
const INS_OID = { nir: '1.2.250.1.213.1.4.8', nia: '1.2.250.1.213.1.4.9', test: '1.2.250.1.213.1.4.10', demo: '1.2.250.1.213.1.4.11' };

export type RecipientKind = 'professional' | 'organisation' | 'application' | 'patient';
export type ResultType = 'lab' | 'imaging' | 'other';

/** Someone the result will be mailed to. */
export interface Recipient {
  address: string;
  kind: RecipientKind;
  id?: string;
  idType?: string;
  /** Where the recipient came from: PRT, ORC-12, OBR-28, PID-3 ... */
  origin: string;
  /** How the address was found when the producer did not give it (directory choice, default mailbox). */
  choice?: string;
}

/** Why a recipient the producer named, or implied, will not receive the result. */
export type RefusalReason =
  | 'no-mailbox'
  | 'not-whitelisted'
  | 'invalid-address'
  | 'ins-not-qualified'
  | 'ins-missing'
  | 'test-ins-in-production'
  | 'patient-address-mismatch'
  | 'patient-opposition'
  | 'professionals-opposition'
  | 'invisible-to-patient'
  | 'masked-to-professionals'
  | 'not-requested-by-producer'
  | 'role-not-served'
  | 'too-large'
  | 'routing-failed';

export interface Refusal {
  reason: RefusalReason;
  kind: RecipientKind;
  /** The address when one was named (kept in the status store, never logged). */
  address?: string;
  id?: string;
  origin: string;
  detail: string;
}

export interface RoutingPolicy {
  environment: 'production' | 'test' | 'demo';
  /** Liste blanche: whether mail may go to this domain (patient.mssante.fr only for patients). */
  allowsDomain(domain: string, forPatient: boolean): boolean;
  /** Roles served per result type for this source; missing types use the defaults of the result's profile. */
  roles?: Partial<Record<ResultType, RecipientRole[]>>;
  resultType?: ResultType;
  /** Organisational mailbox used for a practitioner the directory has no mailbox for. */
  defaultMailbox?: string;
  /** Structures of the sending site, preferred when a practitioner has several mailboxes. */
  siteStructureIds?: string[];
  directory?: PractitionerDirectory;
  /** Patients who refused electronic sending to themselves, by INS or IPP (a list held in memory). */
  opposes?(patient: QueuedResult['patient']): boolean;
  /**
   * The patient's oppositions as recorded (the message store, migration 0008): to mails to the patient, to mails to
   * professionals, each with the date it was expressed.
   */
  oppositions?(result: QueuedResult): Promise<readonly { direction: 'patient' | 'professionals'; opposedAt: number }[]>;
}

export interface RoutingDecision {
  resultType: ResultType;
  recipients: Recipient[];
  refusals: Refusal[];
  /** Reply-To from PRT REPLY, when whitelisted. */
  replyTo?: string;
}

const ADDRESS = /^[^@\s<>"]+@([a-z0-9-]+\.)+[a-z0-9-]+$/i;
/** The domain of a mail address, lower-cased. */
export const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

const LAB_CODES = new Set(['11502-2']);
const IMAGING_CODES = new Set(['18748-4', '18747-6', '18782-3', '85430-7']);

/** Lab or imaging, from the document's LOINC code, else as configured for the source. */
export function resultTypeOf(result: QueuedResult, fallback: ResultType = 'other'): ResultType {
  const code = result.documentCode;
  return LAB_CODES.has(code) ? 'lab' : IMAGING_CODES.has(code) ? 'imaging' : fallback;
}

const DEFAULT_ROLES: Record<QueuedResult['profile'], RecipientRole[]> = { cisis: ['recipient'], raw: ['ordering', 'copy'] };
const ROLE_OF: Partial<Record<QueuedResult['participants'][number]['role'], RecipientRole>> = {
  recipient: 'recipient', ordering: 'ordering', copy: 'copy', interpreter: 'interpreter',
};

/**
 * Decides who receives a result. CI-SIS results name their recipients in PRT RCT and say in their MetaDMPMSS flags
 * whether professionals and the patient may receive it; raw results name practitioners without addresses, which the
 * directory resolves. The source's configuration says which roles are served; every recipient not served gets a
 * reason. Throws DirectoryUnavailableError when the directory cannot answer now (the routing job is retried).
 */
export async function route(result: QueuedResult, policy: RoutingPolicy): Promise<RoutingDecision> {
  const recipients: Recipient[] = [];
  const refusals: Refusal[] = [];
  const seen = new Set<string>();
  const flags = result.flags;
  const cisis = result.profile === 'cisis';
  const resultType = resultTypeOf(result, policy.resultType);
  const roles = new Set(policy.roles?.[resultType] ?? DEFAULT_ROLES[result.profile]);

  const refuse = (r: Refusal) => refusals.push(r);
  const oppositions = (await policy.oppositions?.(result)) ?? [];
  const opposed = (direction: 'patient' | 'professionals') => oppositions.find((o) => o.direction === direction);
  const toProfessionals = opposed('professionals');
  const toPatient = opposed('patient');
  const allowed = (address: string, forPatient: boolean) => policy.allowsDomain(domainOf(address), forPatient);
  const accept = (r: Recipient) => {
    const key = r.address.toLowerCase();
    if (seen.has(key)) return;
    seen.add(key);
    recipients.push({ ...r, address: key });
  };

  let patientListed = false;
  for (const p of result.participants) {
    const role = ROLE_OF[p.role];
    if (!role) continue;
    // A raw result only implies its practitioners: roles the source does not serve are not recipients at all.
    // A CI-SIS PRT RCT is the producer's explicit request: not serving it is an outcome with a reason.
    if (role !== 'recipient' && !roles.has(role)) continue;
    const isPatient = p.kind === 'patient' || (p.address ? domainOf(p.address) === PATIENT_DOMAIN : false);
    patientListed ||= isPatient;
    const kind: RecipientKind = isPatient ? 'patient' : p.kind === 'organisation' ? 'organisation' : p.kind === 'application' ? 'application' : 'professional';
    const base = { kind, origin: p.origin, ...(p.id ? { id: p.id } : {}), ...(p.idType ? { idType: p.idType } : {}) };

    if (role === 'recipient' && !roles.has('recipient') && !(isPatient && roles.has('patient'))) {
      refuse({ ...base, ...(p.address ? { address: p.address } : {}), reason: 'role-not-served', detail: `source configuration does not serve PRT RCT for ${resultType} results` });
      continue;
    }
    if (cisis && isPatient && !flags['DESTMSSANTEPAT']) {
      refuse({ ...base, ...(p.address ? { address: p.address } : {}), reason: flags['INVISIBLE_PATIENT'] ? 'invisible-to-patient' : 'not-requested-by-producer', detail: 'DESTMSSANTEPAT is N' });
      continue;
    }
    if (cisis && !isPatient && flags['MASQUE_PS']) {
      refuse({ ...base, ...(p.address ? { address: p.address } : {}), reason: 'masked-to-professionals', detail: 'MASQUE_PS is Y' });
      continue;
    }
    if (cisis && !isPatient && !flags['DESTMSSANTEPS']) {
      refuse({ ...base, ...(p.address ? { address: p.address } : {}), reason: 'not-requested-by-producer', detail: 'DESTMSSANTEPS is N' });
      continue;
    }
    if (!isPatient && toProfessionals) {
      refuse({ ...base, ...(p.address ? { address: p.address } : {}), reason: 'professionals-opposition', detail: oppositionDetail('professionals', toProfessionals.opposedAt) });
      continue;
    }
    if (isPatient) {
      const address = p.address ?? patientAddress(result);
      const problem = patientProblem(result, address, policy, toPatient);
      if (problem) refuse({ ...base, ...(address ? { address } : {}), ...problem });
      else accept({ ...base, address: address! });
      continue;
    }

    let address = p.address;
    let choice: string | undefined;
    let resolvedKind = kind;
    if (!address) {
      const found = p.id && policy.directory ? await policy.directory.findPractitioner(p.id, p.idType) : [];
      const chosen = chooseMailbox(found.filter((m) => allowed(m.address, false)), { structureIds: policy.siteStructureIds ?? [] });
      if (chosen) {
        address = chosen.mailbox.address;
        choice = chosen.explanation;
        if (chosen.mailbox.type === 'ORG') resolvedKind = 'organisation';
      } else if (policy.defaultMailbox) {
        address = policy.defaultMailbox;
        resolvedKind = 'organisation';
        choice = found.length
          ? `${found.length} directory mailbox(es), none in the liste blanche: sent to the source's default mailbox`
          : `no directory mailbox for ${p.idType ?? 'identifier'} ${p.id ?? '(none)'}: sent to the source's default mailbox`;
      } else {
        refuse({
          ...base, reason: found.length ? 'not-whitelisted' : 'no-mailbox',
          detail: found.length
            ? `${p.origin}: the directory's ${found.length} mailbox(es) are outside the liste blanche`
            : `${p.origin} names ${p.idType ?? 'a'} ${p.id ? 'identifier' : 'participant'} with no MSSanté address${policy.directory ? ' in the directory' : ''}`,
        });
        continue;
      }
    }
    if (!ADDRESS.test(address)) {
      refuse({ ...base, address, reason: 'invalid-address', detail: `${p.origin} address is not an e-mail address` });
      continue;
    }
    if (!allowed(address, false)) {
      refuse({ ...base, address, reason: 'not-whitelisted', detail: `domain ${domainOf(address)} is not in the MSSanté liste blanche` });
      continue;
    }
    accept({ ...base, kind: resolvedKind, address, ...(choice ? { choice } : {}) });
  }

  // The patient is also a recipient when the producer asked for it (CI-SIS DESTMSSANTEPAT) or the source serves
  // patients (raw results), even if no PRT names their address: it is built from the INS.
  const patientWanted = cisis ? Boolean(flags['DESTMSSANTEPAT']) && (roles.has('recipient') || roles.has('patient')) : roles.has('patient');
  if (patientWanted && !patientListed) {
    const address = patientAddress(result);
    const base = { kind: 'patient' as const, origin: 'PID-3' };
    const problem = patientProblem(result, address, policy, toPatient);
    if (problem) refuse({ ...base, ...(address ? { address } : {}), ...problem });
    else accept({ ...base, address: address! });
  }

  const reply = result.participants.find((p) => p.role === 'reply' && p.address && ADDRESS.test(p.address));
  const replyTo = reply?.address && allowed(reply.address, false) ? reply.address.toLowerCase() : undefined;
  return { resultType, recipients, refusals, ...(replyTo ? { replyTo } : {}) };
}

const patientAddress = (result: QueuedResult): string | undefined =>
  result.patient.ins ? `${result.patient.ins.value}@${PATIENT_DOMAIN}` : undefined;

/** A patient is written to only at <INS>@patient.mssante.fr, from a qualified INS of the right range. */
function patientProblem(
  result: QueuedResult, address: string | undefined, policy: RoutingPolicy, opposition?: { opposedAt: number },
): Pick<Refusal, 'reason' | 'detail'> | undefined {
  const ins = result.patient.ins;
  if (!ins || !address) return { reason: 'ins-missing', detail: 'PID-3 carries no INS' };
  if (!ins.qualified) return { reason: 'ins-not-qualified', detail: `identity reliability (PID-32) is "${result.patient.identityReliability ?? ''}", not VALI` };
  const testRange = ins.oid === INS_OID.test || ins.oid === INS_OID.demo;
  if (testRange && policy.environment === 'production') return { reason: 'test-ins-in-production', detail: `INS OID ${ins.oid} is a test range` };
  if (!testRange && ins.oid !== INS_OID.nir) return { reason: 'ins-not-qualified', detail: `INS OID ${ins.oid || '(none)'} is not the NIR range` };
  if (address.toLowerCase() !== `${ins.value}@${PATIENT_DOMAIN}`.toLowerCase()) {
    return { reason: 'patient-address-mismatch', detail: 'the patient address is not built from the INS of PID-3' };
  }
  if (opposition) return { reason: 'patient-opposition', detail: oppositionDetail('patient', opposition.opposedAt) };
  if (policy.opposes?.(result.patient)) return { reason: 'patient-opposition', detail: 'the patient is on the opposition list' };
  if (!policy.allowsDomain(PATIENT_DOMAIN, true)) return { reason: 'not-whitelisted', detail: `${PATIENT_DOMAIN} is not allowed` };
  return undefined;
}

/** Which opposition refused a recipient, and since when (no identifier: the detail reaches the API and the feedback). */
const oppositionDetail = (direction: 'patient' | 'professionals', opposedAt: number) =>
  `the patient opposes mails ${direction === 'patient' ? 'to the patient' : 'to professionals'} (since ${new Date(opposedAt).toISOString().slice(0, 10)})`;

/** Mail size estimate: Base64 grows attachments by 4/3 (plus line breaks), and headers and body add a little. */
export const estimatedMailBytes = (attachmentBytes: number): number => Math.ceil(attachmentBytes * 1.37) + 16 * 1024;

/**
 * Refuses, before anything is sent, the recipients whose mail would exceed its limit: Mon espace santé's for
 * patients (25 MB), the operator's for everyone else.
 */
export function applySizeLimits(decision: RoutingDecision, attachmentBytes: number, limits: { maxPatientMailBytes: number; maxMailBytes: number }): void {
  const size = estimatedMailBytes(attachmentBytes);
  const mb = (n: number) => (n / 1048576).toFixed(1);
  decision.recipients = decision.recipients.filter((r) => {
    const limit = r.kind === 'patient' ? limits.maxPatientMailBytes : limits.maxMailBytes;
    if (size <= limit) return true;
    decision.refusals.push({
      reason: 'too-large', kind: r.kind, address: r.address, origin: r.origin, ...(r.id ? { id: r.id } : {}),
      detail: `the mail would weigh about ${mb(size)} MB, above the ${mb(limit)} MB limit for ${r.kind === 'patient' ? 'patients' : 'the operator'}`,
    });
    return false;
  });
}

/** The routing policy of a source, from the configuration and the reference data in use. */
export function policyForSource(
  config: GatewayConfig,
  source: string,
  reference: Pick<RoutingPolicy, 'allowsDomain' | 'directory' | 'opposes' | 'oppositions'>,
): RoutingPolicy {
  const s = config.routing.sources[source];
  return {
    environment: config.environment,
    ...reference,
    ...(s?.roles ? { roles: s.roles } : {}),
    ...(s?.resultType ? { resultType: s.resultType } : {}),
    ...(s?.defaultMailbox ? { defaultMailbox: s.defaultMailbox } : {}),
    siteStructureIds: s?.siteStructureIds ?? [],
  };
}
