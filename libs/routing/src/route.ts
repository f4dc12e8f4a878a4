import type { QueuedResult } from '@mssgw/queue';

export const PATIENT_DOMAIN = 'patient.mssante.fr';
const INS_OID = { nir: '1.2.250.1.213.1.4.8', nia: '1.2.250.1.213.1.4.9', test: '1.2.250.1.213.1.4.10', demo: '1.2.250.1.213.1.4.11' };

export type RecipientKind = 'professional' | 'organisation' | 'application' | 'patient';

/** Someone the result will be mailed to. */
export interface Recipient {
  address: string;
  kind: RecipientKind;
  id?: string;
  idType?: string;
  /** Where the recipient came from: PRT, ORC-12, OBR-28 ... */
  origin: string;
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
  | 'invisible-to-patient'
  | 'masked-to-professionals'
  | 'not-requested-by-producer';

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
  /** Liste blanche: no mail is addressed to any other domain. */
  whitelistDomains: string[];
}

export interface RoutingDecision {
  recipients: Recipient[];
  refusals: Refusal[];
  /** Reply-To from PRT REPLY, when whitelisted. */
  replyTo?: string;
}

const ADDRESS = /^[^@\s<>"]+@([a-z0-9-]+\.)+[a-z0-9-]+$/i;
/** The domain of a mail address, lower-cased. */
export const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

export function isWhitelisted(address: string, policy: RoutingPolicy): boolean {
  const domain = domainOf(address);
  return policy.whitelistDomains.some((d) => d.toLowerCase() === domain);
}

/**
 * Decides who receives a result. CI-SIS results name their recipients in PRT RCT and say in their MetaDMPMSS flags
 * whether professionals and the patient may receive it; raw results name practitioners without addresses, which
 * the directory resolves (until then they are refused as no-mailbox). Every recipient not served gets a reason.
 */
export function route(result: QueuedResult, policy: RoutingPolicy): RoutingDecision {
  const recipients: Recipient[] = [];
  const refusals: Refusal[] = [];
  const seen = new Set<string>();
  const flags = result.flags;
  const cisis = result.profile === 'cisis';

  const refuse = (r: Refusal) => refusals.push(r);
  const accept = (r: Recipient) => {
    const key = r.address.toLowerCase();
    if (seen.has(key)) return;
    seen.add(key);
    recipients.push({ ...r, address: key });
  };

  for (const p of result.participants) {
    // CI-SIS results name their recipients in PRT RCT only; raw results imply the ordering and copied practitioners.
    if (cisis ? p.role !== 'recipient' : p.role !== 'ordering' && p.role !== 'copy') continue;
    const isPatient = p.kind === 'patient' || (p.address ? domainOf(p.address) === PATIENT_DOMAIN : false);
    const kind: RecipientKind = isPatient ? 'patient' : p.kind === 'organisation' ? 'organisation' : p.kind === 'application' ? 'application' : 'professional';
    const base = { kind, origin: p.origin, ...(p.id ? { id: p.id } : {}), ...(p.address ? { address: p.address } : {}) };

    if (!p.address) {
      refuse({ ...base, reason: 'no-mailbox', detail: `${p.origin} names ${p.idType ?? 'a'} ${p.id ? 'identifier' : 'participant'} with no MSSanté address` });
      continue;
    }
    if (!ADDRESS.test(p.address)) {
      refuse({ ...base, reason: 'invalid-address', detail: `${p.origin} address is not an e-mail address` });
      continue;
    }
    if (cisis && isPatient && !flags['DESTMSSANTEPAT']) {
      refuse({ ...base, reason: flags['INVISIBLE_PATIENT'] ? 'invisible-to-patient' : 'not-requested-by-producer', detail: 'DESTMSSANTEPAT is N' });
      continue;
    }
    if (cisis && !isPatient && flags['MASQUE_PS']) {
      refuse({ ...base, reason: 'masked-to-professionals', detail: 'MASQUE_PS is Y' });
      continue;
    }
    if (cisis && !isPatient && !flags['DESTMSSANTEPS']) {
      refuse({ ...base, reason: 'not-requested-by-producer', detail: 'DESTMSSANTEPS is N' });
      continue;
    }
    if (isPatient) {
      const problem = patientProblem(result, p.address, policy);
      if (problem) {
        refuse({ ...base, ...problem });
        continue;
      }
    }
    if (!isWhitelisted(p.address, policy)) {
      refuse({ ...base, reason: 'not-whitelisted', detail: `domain ${domainOf(p.address)} is not in the MSSanté liste blanche` });
      continue;
    }
    accept({ ...base, address: p.address });
  }

  const reply = result.participants.find((p) => p.role === 'reply' && p.address && ADDRESS.test(p.address));
  const replyTo = reply?.address && isWhitelisted(reply.address, policy) ? reply.address.toLowerCase() : undefined;
  return { recipients, refusals, ...(replyTo ? { replyTo } : {}) };
}

/** A patient is written to only at <INS>@patient.mssante.fr, from a qualified INS of the right range. */
function patientProblem(result: QueuedResult, address: string, policy: RoutingPolicy): Pick<Refusal, 'reason' | 'detail'> | undefined {
  const ins = result.patient.ins;
  if (!ins) return { reason: 'ins-missing', detail: 'PID-3 carries no INS' };
  if (!ins.qualified) return { reason: 'ins-not-qualified', detail: `identity reliability (PID-32) is "${result.patient.identityReliability ?? ''}", not VALI` };
  const testRange = ins.oid === INS_OID.test || ins.oid === INS_OID.demo;
  if (testRange && policy.environment === 'production') return { reason: 'test-ins-in-production', detail: `INS OID ${ins.oid} is a test range` };
  if (!testRange && ins.oid !== INS_OID.nir) return { reason: 'ins-not-qualified', detail: `INS OID ${ins.oid || '(none)'} is not the NIR range` };
  if (address.toLowerCase() !== `${ins.value}@${PATIENT_DOMAIN}`.toLowerCase()) {
    return { reason: 'patient-address-mismatch', detail: 'the patient address is not built from the INS of PID-3' };
  }
  return undefined;
}
