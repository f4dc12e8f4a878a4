import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { XMLParser } from 'fast-xml-parser';
import { redisKeys, type Redis } from '@mssgw/queue';

/** Mon espace santé: always reachable for patients, never listed in the published whitelist. */
export const PATIENT_DOMAIN = 'patient.mssante.fr';

/** The MSSanté liste blanche as loaded: its domains with the DN of their operator's certificate. */
export interface LoadedWhitelist {
  source: string;
  sha256: string;
  generatedAt?: string;
  fetchedAt: number;
  domains: Record<string, string>;
}

export class WhitelistError extends Error {
  override name = 'WhitelistError';
}

const parser = new XMLParser({ removeNSPrefix: true, ignoreAttributes: true, parseTagValue: false, isArray: (name) => name === 'Domaine' });

/** Reads `ListeBlancheMSSante` XML; throws on anything else, or on a list with no domain. */
export function parseWhitelist(xml: Buffer | string): Pick<LoadedWhitelist, 'generatedAt' | 'domains'> {
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(xml) as Record<string, unknown>;
  } catch (err) {
    throw new WhitelistError(`not XML: ${(err as Error).message}`);
  }
  const root = doc['ListeBlancheMSSante'] as { DateDeGeneration?: string; ListeDomaines?: { Domaine?: { Nom?: string; DNCertificatOperateur?: string }[] } } | undefined;
  if (!root) throw new WhitelistError('no ListeBlancheMSSante root element');
  const domains: Record<string, string> = {};
  for (const d of root.ListeDomaines?.Domaine ?? []) {
    const name = String(d.Nom ?? '').trim().toLowerCase();
    if (/^([a-z0-9-]+\.)+[a-z]{2,}$/.test(name)) domains[name] = String(d.DNCertificatOperateur ?? '').trim();
  }
  if (!Object.keys(domains).length) throw new WhitelistError('the list has no domain');
  return { ...(root.DateDeGeneration ? { generatedAt: String(root.DateDeGeneration) } : {}), domains };
}

/**
 * Whether mail may be addressed to a domain: `patient.mssante.fr` for patients only, test domains only as
 * configured, everything else only when the liste blanche names it.
 */
export function domainAllowed(list: LoadedWhitelist | undefined, testDomains: ReadonlySet<string>, domain: string, forPatient: boolean): boolean {
  const d = domain.toLowerCase();
  if (d === PATIENT_DOMAIN) return forPatient;
  return testDomains.has(d) || Boolean(list && Object.hasOwn(list.domains, d));
}

export interface WhitelistSource {
  /** File path or https URL of listeblanchemssante.xml. */
  location: string;
  /** Expected SHA-256 (hex), or the URL of a published checksum file whose first 64-hex token is it. */
  sha256?: string;
  checksumUrl?: string;
  timeoutMs?: number;
  /** CA certificates (PEM) trusted for an https location or checksumUrl besides Node's store (the IGC-Santé chain). */
  caFile?: string;
}

/** A file, or a GET of a URL within timeoutMs (fetch takes no CA of its own: node:https does, and redirects are followed). */
async function read(location: string, timeoutMs: number, caFile?: string, redirects = 0): Promise<Buffer> {
  if (!/^https?:\/\//i.test(location)) return readFile(location);
  const options = { signal: AbortSignal.timeout(timeoutMs), ...(caFile ? { ca: [...rootCertificates, readFileSync(caFile, 'utf8')] } : {}) };
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    (/^https:/i.test(location) ? https.get(location, options, resolve) : http.get(location, options, resolve)).on('error', reject);
  });
  const status = res.statusCode ?? 0;
  if (status >= 300 && status < 400 && res.headers.location && redirects < 5) {
    res.resume();
    return read(new URL(res.headers.location, location).href, timeoutMs, caFile, redirects + 1);
  }
  if (status < 200 || status >= 300) {
    res.resume();
    throw new WhitelistError(`GET ${location}: HTTP ${status}`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Fetches, verifies the checksum when one is given, and parses. */
export async function fetchWhitelist(source: WhitelistSource): Promise<LoadedWhitelist> {
  const timeoutMs = source.timeoutMs ?? 30_000;
  const bytes = await read(source.location, timeoutMs, source.caFile).catch((err: Error) => {
    throw err instanceof WhitelistError ? err : new WhitelistError(`${source.location}: ${err.message}`);
  });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  let expected = source.sha256?.toLowerCase();
  if (!expected && source.checksumUrl) {
    const text = (await read(source.checksumUrl, timeoutMs, source.caFile)).toString('utf8');
    expected = /\b[0-9a-f]{64}\b/i.exec(text)?.[0].toLowerCase();
    if (!expected) throw new WhitelistError(`${source.checksumUrl}: no SHA-256 in the checksum file`);
  }
  if (expected && expected !== sha256) throw new WhitelistError(`SHA-256 mismatch: published ${expected}, received ${sha256}`);
  return { source: source.location, sha256, fetchedAt: Date.now(), ...parseWhitelist(bytes) };
}

export interface WhitelistOptions {
  source?: WhitelistSource;
  /** Test domains accepted on purpose (never in production: the configuration refuses it). */
  testDomains: string[];
  refreshIntervalMs: number;
  onRefreshError?: (err: Error) => void;
  onLoaded?: (list: LoadedWhitelist) => void;
}

/**
 * Keeps the liste blanche current: loaded at start, refreshed on a schedule, saved in Redis as the last good copy.
 * A refresh that fails (network, checksum, malformed XML) keeps the copy in use; a process that starts while the
 * source is down takes the last good copy from Redis. With no copy at all it refuses to start, since it could not
 * tell a legitimate domain from any other.
 */
export class WhitelistKeeper {
  private current?: LoadedWhitelist;
  private timer?: NodeJS.Timeout;
  private readonly testDomains: Set<string>;
  private readonly key: string;
  private readonly redis: Redis;
  private readonly options: WhitelistOptions;

  constructor(redis: Redis, prefix: string, options: WhitelistOptions) {
    this.redis = redis;
    this.options = options;
    this.key = redisKeys(prefix).whitelist;
    this.testDomains = new Set(options.testDomains.map((d) => d.toLowerCase()));
  }

  get loaded(): LoadedWhitelist | undefined {
    return this.current;
  }

  async start(): Promise<void> {
    if (!this.options.source) return;
    try {
      await this.refresh();
    } catch (err) {
      const saved = await this.redis.get(this.key);
      if (!saved) throw new WhitelistError(`no liste blanche: ${(err as Error).message}, and no last good copy in Redis`);
      this.current = JSON.parse(saved) as LoadedWhitelist;
      this.options.onRefreshError?.(err as Error);
      this.options.onLoaded?.(this.current);
    }
    this.timer = setInterval(() => {
      this.refresh().catch((err: Error) => this.options.onRefreshError?.(err));
    }, this.options.refreshIntervalMs);
    this.timer.unref();
  }

  async refresh(): Promise<LoadedWhitelist> {
    const list = await fetchWhitelist(this.options.source!);
    this.current = list;
    await this.redis.set(this.key, JSON.stringify(list));
    this.options.onLoaded?.(list);
    return list;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  allows(domain: string, forPatient: boolean): boolean {
    return domainAllowed(this.current, this.testDomains, domain, forPatient);
  }
}
