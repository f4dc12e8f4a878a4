import type { DirectoryMailbox, MailboxType } from './extraction.ts';
import { bodyOf, httpGet } from './https.ts';
import { practitionerKeys } from './keys.ts';

const EMAIL_TYPE_EXT = 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type';
const MSS_METADATA_EXT = 'https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata';
const IDNPS_SYSTEM = 'urn:oid:1.2.250.1.71.4.2.1';
const MAX_PAGES = 5;

/** Anything that can name a practitioner's MSSanté mailboxes. */
export interface PractitionerDirectory {
  findPractitioner(id: string, idType?: string): Promise<DirectoryMailbox[]>;
}

/** The directory could not answer now (timeout, HTTP error, circuit open): the caller should retry later. */
export class DirectoryUnavailableError extends Error {
  override name = 'DirectoryUnavailableError';
}

export interface FhirDirectoryOptions {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
  cacheTtlMs: number;
  cacheSize: number;
  /** Consecutive failures that open the circuit, and how long it stays open before one trial request. */
  failureThreshold: number;
  resetMs: number;
  /** CA certificates trusted for the API besides Node's store (the IGC-Santé chain). */
  caFile?: string | undefined;
}

interface FhirResource {
  resourceType: string;
  id?: string;
  identifier?: { system?: string; value?: string }[];
  telecom?: ContactPoint[];
  organization?: { reference?: string; identifier?: { system?: string; value?: string } };
}
interface ContactPoint {
  system?: string;
  value?: string;
  rank?: number;
  extension?: Extension[];
}
interface Extension {
  url: string;
  valueCoding?: { code?: string };
  valueCodeableConcept?: { coding?: { code?: string }[] };
  valueString?: string;
  valueBoolean?: boolean;
  extension?: Extension[];
}
interface Bundle {
  resourceType: 'Bundle';
  entry?: { resource?: FhirResource }[];
  link?: { relation: string; url: string }[];
}

/**
 * Live resolver on the Annuaire Santé FHIR API (v2): `Practitioner?identifier=` with the PractitionerRoles and their
 * Organizations included; a mailbox is a `telecom` typed MSSANTE. Answers are cached (misses too), calls time out,
 * and after `failureThreshold` failures in a row the circuit opens for `resetMs`, so a slow API cannot stall routing.
 */
export class FhirDirectory implements PractitionerDirectory {
  private readonly cache = new Map<string, { at: number; mailboxes: DirectoryMailbox[] }>();
  private failures = 0;
  private openUntil = 0;
  private readonly options: FhirDirectoryOptions;
  /** Requests actually sent (the cache and the open circuit send none); for tests and metrics. */
  requests = 0;

  constructor(options: FhirDirectoryOptions) {
    this.options = options;
  }

  get circuitOpen(): boolean {
    return Date.now() < this.openUntil;
  }

  async findPractitioner(id: string, idType?: string): Promise<DirectoryMailbox[]> {
    const natId = practitionerKeys(id, idType)[0]?.slice(2);
    if (!natId) return [];
    const hit = this.cache.get(natId);
    if (hit && Date.now() - hit.at < this.options.cacheTtlMs) return hit.mailboxes;
    if (this.circuitOpen) throw new DirectoryUnavailableError('Annuaire Santé FHIR API: circuit open after repeated failures');
    let mailboxes: DirectoryMailbox[];
    try {
      mailboxes = await this.search(natId);
      this.failures = 0;
    } catch (err) {
      if (++this.failures >= this.options.failureThreshold) this.openUntil = Date.now() + this.options.resetMs;
      throw err instanceof DirectoryUnavailableError ? err : new DirectoryUnavailableError(`Annuaire Santé FHIR API: ${(err as Error).message}`);
    }
    this.cache.delete(natId);
    this.cache.set(natId, { at: Date.now(), mailboxes });
    // Map order is insertion order: the first key is the least recently stored.
    if (this.cache.size > this.options.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    return mailboxes;
  }

  private async search(natId: string): Promise<DirectoryMailbox[]> {
    const base = this.options.baseUrl.replace(/\/$/, '');
    const query = new URLSearchParams({ identifier: `${IDNPS_SYSTEM}|${natId}` });
    query.append('_revinclude', 'PractitionerRole:practitioner');
    query.append('_include:iterate', 'PractitionerRole:organization');
    let url: string | undefined = `${base}/Practitioner?${query.toString()}`;
    const resources: FhirResource[] = [];
    for (let page = 0; url && page < MAX_PAGES; page++) {
      this.requests++;
      const res = await httpGet(url, {
        caFile: this.options.caFile,
        headers: { 'ESANTE-API-KEY': this.options.apiKey, accept: 'application/fhir+json' },
        timeoutMs: this.options.timeoutMs,
      });
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        res.resume();
        throw new DirectoryUnavailableError(`HTTP ${status} from the Annuaire Santé FHIR API`);
      }
      const bundle = JSON.parse((await bodyOf(res)).toString('utf8')) as Bundle;
      if (bundle.resourceType !== 'Bundle') throw new DirectoryUnavailableError('the FHIR API did not answer with a Bundle');
      for (const e of bundle.entry ?? []) if (e.resource) resources.push(e.resource);
      url = bundle.link?.find((l) => l.relation === 'next')?.url;
    }
    return mailboxesOf(resources, natId);
  }
}

/** Every MSSANTE telecom of the practitioner and of its roles, with the role's structure. */
export function mailboxesOf(resources: FhirResource[], natId: string): DirectoryMailbox[] {
  const organisations = new Map(resources.filter((r) => r.resourceType === 'Organization' && r.id).map((o) => [`Organization/${o.id}`, o]));
  const out = new Map<string, DirectoryMailbox>();
  for (const r of resources) {
    if (r.resourceType !== 'Practitioner' && r.resourceType !== 'PractitionerRole') continue;
    const org = r.organization?.reference ? organisations.get(r.organization.reference) : undefined;
    const structureId = r.organization?.identifier?.value ?? org?.identifier?.find((i) => i.value)?.value;
    for (const t of r.telecom ?? []) {
      if (t.system !== 'email' || !t.value || !isMssante(t)) continue;
      const meta = t.extension?.find((e) => e.url === MSS_METADATA_EXT)?.extension ?? [];
      const type = (meta.find((e) => e.url === 'type')?.valueCodeableConcept?.coding?.[0]?.code ?? 'PER').toUpperCase();
      const address = t.value.trim().toLowerCase();
      const mailbox: DirectoryMailbox = {
        address,
        type: (['PER', 'CAB', 'ORG', 'APP'].includes(type) ? type : 'PER') as MailboxType,
        practitionerNationalId: natId,
        ...(structureId ? { structureId } : {}),
        ...(t.rank ? { rank: t.rank } : {}),
        ...(meta.find((e) => e.url === 'service')?.valueString ? { service: meta.find((e) => e.url === 'service')!.valueString! } : {}),
      };
      if (!out.has(address)) out.set(address, mailbox);
    }
  }
  return [...out.values()];
}

const isMssante = (t: ContactPoint): boolean =>
  Boolean(t.extension?.some((e) => e.url === EMAIL_TYPE_EXT && e.valueCoding?.code === 'MSSANTE'));

/** Asks each directory in turn and keeps the first non-empty answer (the imported extraction, then the live API). */
export class DirectoryChain implements PractitionerDirectory {
  private readonly directories: PractitionerDirectory[];
  constructor(directories: PractitionerDirectory[]) {
    this.directories = directories;
  }
  async findPractitioner(id: string, idType?: string): Promise<DirectoryMailbox[]> {
    for (const d of this.directories) {
      const found = await d.findPractitioner(id, idType);
      if (found.length) return found;
    }
    return [];
  }
}
