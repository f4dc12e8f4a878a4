import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildZip } from '@mssgw/mssante';
import {
  DirectoryImportError, DirectoryStore, DirectoryUnavailableError, EXTRACTION_HEADER, FhirDirectory, generateExtraction, generatedFiness, generatedRpps,
  importExtraction, readExtraction, type DirectoryMailbox, type RejectedRow,
} from '@mssgw/directory';
import { connectRedis, type Redis } from '@mssgw/queue';
import { WhitelistError, WhitelistKeeper } from '@mssgw/whitelist';
import { SANDBOX_REDIS_URL, tag } from '../support/env.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/directory/Extraction_Correspondance_MSSante_202611260400.txt');
const WHITELIST = path.resolve(import.meta.dirname, '../fixtures/whitelist/listeblanchemssante.xml');
const WHITELIST_SHA256 = '140a9bcad2a54ebd5d250e93e9a0df89a7903a5ede7c1ca361d8a690d64d4320';

/** A local HTTP server whose answers the test sets per path. */
async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function* rowsOf(lines: string[]): AsyncGenerator<DirectoryMailbox | RejectedRow> {
  const { Readable } = await import('node:stream');
  yield* readExtraction(Readable.from([`${EXTRACTION_HEADER}\n${lines.join('\n')}\n`]));
}
const perRow = (address: string, natId: string) =>
  ['PER', address, '8', natId.slice(1), natId, '', '', '', 'DR', 'X', 'Y', ...Array<string>(20).fill('')].join('|');

describe('directory: the Annuaire Santé extraction in Redis', () => {
  let redis: Redis;
  let store: DirectoryStore;

  beforeAll(() => {
    redis = connectRedis(SANDBOX_REDIS_URL);
    store = new DirectoryStore(redis, `test-directory-${tag()}`);
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('imports the extraction, whatever the header spelling, and reports each rejected row by line and reason', async () => {
    const report = await importExtraction(store, FIXTURE);
    expect(report).toMatchObject({ rows: 13, mailboxes: 8, rejected: 4, rejectedByReason: { 'mailbox-type': 1, 'column-count': 1, address: 1, 'no-key': 1 } });
    expect(report.rejections.map((r) => [r.line, r.reason])).toEqual([[6, 'mailbox-type'], [10, 'column-count'], [11, 'address'], [14, 'no-key']]);
    expect(report.rejectedLines).toEqual({ 'mailbox-type': [6], 'column-count': [10], address: [11], 'no-key': [14] });
    expect(report.sourceSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await store.info()).toMatchObject({ mailboxes: 8, source: path.basename(FIXTURE) });
  });

  it('finds a practitioner by RPPS, IDNPS or ADELI, a structure by FINESS, a mailbox by address', async () => {
    const addresses = (m: DirectoryMailbox[]) => m.map((x) => x.address).sort();
    const alice = ['a.medecin-un@chu-demo.mssante.test', 'alice.medecin-un@cabinet-demo.mssante.test'];
    expect(addresses(await store.findPractitioner('10000000001', 'RPPS'))).toEqual(alice);
    expect(addresses(await store.findPractitioner('810000000001', 'IDNPS'))).toEqual(alice);
    expect(addresses(await store.findPractitioner('810000000001', 'RPPS'))).toEqual(alice);
    expect(addresses(await store.findPractitioner('751234567', 'ADELI'))).toEqual(['infirmiere.adeli@cabinet-demo.mssante.test']);
    expect(addresses(await store.findStructure('999999999', 'FINESS'))).toEqual(['secretariat-imagerie@chu-demo.mssante.test', 'secretariat-labo@chu-demo.mssante.test']);
    // An address on two lines of the extraction keeps both (two structures).
    const chloe = await store.findAddress('Chloe.Radiologue@chu-demo.mssante.test');
    expect(chloe.map((m) => m.structureId).sort()).toEqual(['1888888888', '1999999999']);
    expect(chloe[0]).toMatchObject({ type: 'PER', family: 'RADIOLOGUE', given: 'Chloé' });
    expect(await store.findPractitioner('10000000099', 'RPPS')).toEqual([]);
  });

  it('swaps a re-import atomically: readers see the old directory or the new one, never a mixture or nothing', async () => {
    const prefix = `test-directory-swap-${tag()}`;
    const s = new DirectoryStore(redis, prefix);
    const many = (domain: string) => Array.from({ length: 20_000 }, (_, i) => perRow(`dr${i}@${domain}`, `8${String(10_000_000_000 + i)}`));
    await s.import(rowsOf(many('old.mssante.test')), { name: 'old' });
    let reading = true;
    const seen = new Set<string>();
    const reader = (async () => {
      while (reading) {
        const found = await s.findPractitioner('10000000007', 'RPPS');
        expect(found).toHaveLength(1);
        seen.add(found[0]!.address.split('@')[1]!);
      }
    })();
    await s.import(rowsOf(many('new.mssante.test')), { name: 'new' });
    reading = false;
    await reader;
    expect(seen.has('old.mssante.test')).toBe(true);
    expect((await s.findPractitioner('10000000007', 'RPPS'))[0]!.address).toBe('dr7@new.mssante.test');
    // The old generation is gone from Redis, not left behind.
    expect(await redis.keys(`${prefix}:{dir}:g:*`)).toHaveLength(2);
  });

  it('refuses to swap in an import that lost most of the directory, and a second import at the same time', async () => {
    const s = new DirectoryStore(redis, `test-directory-guard-${tag()}`);
    await s.import(rowsOf(Array.from({ length: 100 }, (_, i) => perRow(`dr${i}@a.mssante.test`, `8${10_000_000_000 + i}`))), { name: 'full' });
    await expect(s.import(rowsOf([perRow('dr1@a.mssante.test', '810000000001')]), { name: 'truncated' })).rejects.toThrow(/fewer than 50% .*not swapped/);
    expect((await s.info())!.source).toBe('full');
    const slow = s.import((async function* () {
      await new Promise((r) => setTimeout(r, 300));
      yield* rowsOf(Array.from({ length: 100 }, (_, i) => perRow(`dr${i}@b.mssante.test`, `8${10_000_000_000 + i}`)));
    })(), { name: 'slow' });
    await expect(s.import(rowsOf([]), { name: 'second' })).rejects.toThrow(DirectoryImportError);
    await expect(slow).resolves.toMatchObject({ mailboxes: 100 });
  });

  it('imports the extraction as people have it: BOM, trailing |, CRLF, LF and CR mixed; a short or long row is rejected by its line', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mssgw-directory-test-'));
    const file = path.join(dir, 'Extraction_Correspondance_MSSante_202612010400.txt');
    const row = (n: number) => perRow(`dr${n}@edited.mssante.test`, `8${10_000_000_000 + n}`);
    await writeFile(file, [
      `\uFEFF${EXTRACTION_HEADER}|\r\n`, // 1
      `${row(1)}|\r\n`, // 2
      `${row(2)}\n`, // 3: no trailing |, LF
      '\r\n', // 4: blank
      `${row(3).split('|').slice(0, 29).join('|')}|\r\n`, // 5: too few fields
      `${row(4)}|FRANCE|\r\n`, // 6: too many fields
      `${row(5)}|\r`, // 7: a lone CR
      `${row(6)}|`, // 8: no line end at all
    ].join(''));
    try {
      const s = new DirectoryStore(redis, `test-directory-edited-${tag()}`);
      const report = await importExtraction(s, file);
      expect(report).toMatchObject({ rows: 6, mailboxes: 4, rejected: 2, rejectedByReason: { 'column-count': 2 }, rejectedLines: { 'column-count': [5, 6] } });
      expect(report.rejections).toEqual([
        { line: 5, reason: 'column-count', detail: '30 fields, expected 31 (or 31 and a trailing |)' },
        { line: 6, reason: 'column-count', detail: '33 fields, expected 31 (or 31 and a trailing |)' },
      ]);
      for (const n of [1, 2, 5, 6]) expect(await s.findPractitioner(String(10_000_000_000 + n), 'RPPS')).toEqual([expect.objectContaining({ address: `dr${n}@edited.mssante.test`, family: 'X' })]);
      expect(await s.findPractitioner('10000000003', 'RPPS')).toEqual([]);
      // What the router and `mssgw directory info` read keeps the line numbers too.
      expect(await s.info()).toMatchObject({ rejectedLines: { 'column-count': [5, 6] } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('imports a 535,000-row extraction with a BOM, trailing | and CRLF in at most 30 s, every row accepted', async () => {
    const rows = 535_000;
    const dir = await mkdtemp(path.join(tmpdir(), 'mssgw-directory-test-'));
    const file = path.join(dir, 'Extraction_Correspondance_MSSante_202612010400.txt');
    const prefix = `test-directory-full-${tag()}`;
    const s = new DirectoryStore(redis, prefix);
    let generation: string | undefined;
    try {
      const out = createWriteStream(file);
      await generateExtraction(out, { rows, bom: true, trailingPipe: true, lineEnd: '\r\n' });
      await new Promise((resolve) => out.end(resolve));
      const fh = await open(file);
      const head = (await fh.read(Buffer.alloc(2048), 0, 2048, 0)).buffer.toString('utf8');
      await fh.close();
      expect(head.startsWith('\uFEFFType de BAL|')).toBe(true);
      expect(head.split('\r\n').slice(0, 3).every((l) => l.endsWith('|') && !l.includes('\n'))).toBe(true);

      const progress: number[] = [];
      const started = performance.now();
      const report = await importExtraction(s, file, { onProgress: (p) => progress.push(p.rows) });
      const seconds = (performance.now() - started) / 1000;
      generation = report.generation;
      console.log(`directory import: ${rows} rows in ${seconds.toFixed(1)} s (${Math.round(rows / seconds)} rows/s)`);
      expect(report).toMatchObject({ rows, mailboxes: rows, rejected: 0, rejectedByReason: {} });
      expect(seconds).toBeLessThanOrEqual(30);
      expect(progress).toHaveLength(rows / 1_000);
      expect(progress.at(-1)).toBe(rows);

      // The generator's practitioners: one per PER row, except that one row in ten is the previous one's second mailbox.
      let practitioners = 0;
      for (let i = 1; i <= rows; i++) if (i % 7 !== 0 && i % 10 !== 1) practitioners++;
      expect(await s.findPractitioner(generatedRpps(practitioners), 'RPPS')).toEqual([expect.objectContaining({ type: 'PER', postalCode: expect.stringMatching(/^750\d\d$/) as unknown })]);
      expect(await s.findPractitioner(generatedRpps(practitioners + 1), 'RPPS')).toEqual([]);
      const second = await s.findPractitioner(generatedRpps(8), 'RPPS');
      expect(second.map((m) => m.address).sort()).toEqual([expect.stringMatching(/\.8\.s11@/), expect.stringMatching(/\.8@/)]);
      // Structure 0's service mailboxes are on rows 35,000, 70,000 ... 525,000: from the start to the end of the file.
      const services = await s.findStructure(generatedFiness(0), 'FINESS');
      const serviceRows = services.map((m) => Number(/^secretariat\.s0\.(\d+)@/.exec(m.address)?.[1])).sort((a, b) => a - b);
      expect(serviceRows).toEqual(Array.from({ length: 15 }, (_, k) => 35_000 * (k + 1)));
      const last = services.find((m) => m.address.includes('.525000@'))!;
      expect(await s.findAddress(last.address)).toEqual([expect.objectContaining({ type: 'ORG', structureName: 'CENTRE HOSPITALIER 0' })]);
    } finally {
      // Half a million fields: not left behind in the shared Redis.
      if (generation) await redis.unlink(`${prefix}:{dir}:g:${generation}:rec`, `${prefix}:{dir}:g:${generation}:idx`, `${prefix}:{dir}:current`, `${prefix}:{dir}:info`);
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('downloads and imports the zipped extraction from a URL', async () => {
    const zip = buildZip([{ name: 'Extraction_Correspondance_MSSante_202611260400.txt', content: readFileSync(FIXTURE) }], new Date());
    const { server, url } = await httpServer((req, res) => {
      if (req.url === '/extraction') res.end(zip);
      else res.writeHead(404).end();
    });
    try {
      const s = new DirectoryStore(redis, `test-directory-zip-${tag()}`);
      const report = await importExtraction(s, `${url}/extraction`);
      expect(report).toMatchObject({ mailboxes: 8, rejected: 4 });
      expect(report.source).toMatch(/!Extraction_Correspondance_MSSante_202611260400\.txt$/);
      await expect(importExtraction(s, `${url}/missing`)).rejects.toThrow(/HTTP 404/);
    } finally {
      server.close();
    }
  });
});

describe('liste blanche', () => {
  let redis: Redis;
  let served: { status: number; body: Buffer | string };
  let server: Server;
  let url = '';

  beforeAll(async () => {
    redis = connectRedis(SANDBOX_REDIS_URL);
    served = { status: 200, body: readFileSync(WHITELIST) };
    ({ server, url } = await httpServer((req, res) => {
      if (req.url === '/checksum') res.end(`${WHITELIST_SHA256}  listeblanchemssante.xml\n`);
      else res.writeHead(served.status).end(served.body);
    }));
  });
  afterAll(async () => {
    server.close();
    await redis.quit();
  });

  it('loads the list, verifies the published SHA-256, and allows only its domains (patient.mssante.fr for patients only)', async () => {
    const keeper = new WhitelistKeeper(redis, `test-wl-${tag()}`, { source: { location: `${url}/lb.xml`, checksumUrl: `${url}/checksum` }, testDomains: [], refreshIntervalMs: 3_600_000 });
    await keeper.start();
    try {
      expect(keeper.loaded).toMatchObject({ sha256: WHITELIST_SHA256, generatedAt: '2026-11-25T03:00:00Z' });
      expect(keeper.loaded!.domains['adsea29.mssante.fr']).toMatch(/^CN=medimail-asip\.mipih\.fr/);
      expect(keeper.allows('CHU-demo.mssante.test', false)).toBe(true);
      expect(keeper.allows('gmail.com', false)).toBe(false);
      expect(keeper.allows('patient.mssante.fr', true)).toBe(true);
      expect(keeper.allows('patient.mssante.fr', false)).toBe(false);
    } finally {
      keeper.stop();
    }
  });

  it('keeps the last good copy when a refresh fails, and starts from it while the source is down', async () => {
    const prefix = `test-wl-${tag()}`;
    const source = { location: `${url}/lb.xml`, sha256: WHITELIST_SHA256 };
    const errors: string[] = [];
    const keeper = new WhitelistKeeper(redis, prefix, { source, testDomains: [], refreshIntervalMs: 3_600_000, onRefreshError: (e) => errors.push(e.message) });
    await keeper.start();
    keeper.stop();
    served = { status: 200, body: readFileSync(WHITELIST, 'utf8').replace('adsea29', 'intrus') };
    await expect(keeper.refresh()).rejects.toThrow(/SHA-256 mismatch/);
    served = { status: 200, body: '<html>maintenance</html>' };
    await expect(keeper.refresh()).rejects.toThrow(WhitelistError);
    expect(keeper.allows('adsea29.mssante.fr', false)).toBe(true);
    expect(keeper.allows('intrus.mssante.fr', false)).toBe(false);

    served = { status: 503, body: '' };
    const restarted = new WhitelistKeeper(redis, prefix, { source, testDomains: [], refreshIntervalMs: 3_600_000, onRefreshError: (e) => errors.push(e.message) });
    await restarted.start();
    restarted.stop();
    expect(restarted.allows('chu-demo.mssante.test', false)).toBe(true);
    expect(errors).toEqual([expect.stringMatching(/HTTP 503/)]);
    // With no copy anywhere, nothing could be told apart: it refuses to start.
    const fresh = new WhitelistKeeper(redis, `test-wl-${tag()}`, { source, testDomains: [], refreshIntervalMs: 3_600_000 });
    await expect(fresh.start()).rejects.toThrow(/no liste blanche: .*HTTP 503.*no last good copy/);
    served = { status: 200, body: readFileSync(WHITELIST) };
  });

  it('accepts configured test domains on purpose, and nothing else, when no list is configured', async () => {
    const keeper = new WhitelistKeeper(redis, `test-wl-${tag()}`, { testDomains: ['labo.mssante.test'], refreshIntervalMs: 3_600_000 });
    await keeper.start();
    expect(keeper.allows('labo.mssante.test', false)).toBe(true);
    expect(keeper.allows('adsea29.mssante.fr', false)).toBe(false);
  });
});

describe('Annuaire Santé FHIR resolver', () => {
  let server: Server;
  let url = '';
  let mode: 'ok' | 'slow' | 'error' = 'ok';
  const requests: { url: string; key: string | undefined }[] = [];
  const mss = (value: string, type: string, rank?: number) => ({
    system: 'email', value, ...(rank ? { rank } : {}),
    extension: [
      { url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type', valueCoding: { system: 'https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie', code: 'MSSANTE' } },
      { url: 'https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata', extension: [{ url: 'type', valueCodeableConcept: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL', code: type }] } }, { url: 'service', valueString: 'Cardiologie' }] },
    ],
  });

  beforeAll(async () => {
    ({ server, url } = await httpServer((req, res) => {
      requests.push({ url: req.url ?? '', key: req.headers['esante-api-key'] as string | undefined });
      if (mode === 'error') return void res.writeHead(500).end();
      if (mode === 'slow') return void setTimeout(() => res.end('{}'), 2_000);
      const u = new URL(req.url ?? '', url);
      const found = u.searchParams.get('identifier') === 'urn:oid:1.2.250.1.71.4.2.1|810101010101';
      const page2 = u.searchParams.get('page') === '2';
      res.setHeader('content-type', 'application/fhir+json');
      res.end(JSON.stringify({
        resourceType: 'Bundle', type: 'searchset',
        entry: !found ? [] : page2
          ? [{ resource: { resourceType: 'Organization', id: 'o1', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.2', value: '1999999999' }] } }]
          : [
              { resource: { resourceType: 'Practitioner', id: 'p1', telecom: [mss('dr.fhir@cabinet-demo.mssante.test', 'PER', 2), { system: 'email', value: 'not.mss@gmail.com' }] } },
              { resource: { resourceType: 'PractitionerRole', id: 'r1', practitioner: { reference: 'Practitioner/p1' }, organization: { reference: 'Organization/o1' }, telecom: [mss('dr.fhir@chu-demo.mssante.test', 'PER', 1)] } },
            ],
        link: found && !page2 ? [{ relation: 'next', url: `${url}/fhir/v2/Practitioner?identifier=urn:oid:1.2.250.1.71.4.2.1%7C810101010101&page=2` }] : [],
      }));
    }));
  });
  afterAll(() => {
    server.close();
  });

  const resolver = () => new FhirDirectory({ baseUrl: `${url}/fhir/v2`, apiKey: 'key-123', timeoutMs: 300, cacheTtlMs: 60_000, cacheSize: 100, failureThreshold: 2, resetMs: 400 });

  it('reads MSSANTE telecoms of the practitioner and its roles, across pages, with the API key, and caches the answer', async () => {
    mode = 'ok';
    const fhir = resolver();
    const found = await fhir.findPractitioner('10101010101', 'RPPS');
    expect(found.map((m) => [m.address, m.type, m.rank, m.structureId ?? null])).toEqual([
      ['dr.fhir@cabinet-demo.mssante.test', 'PER', 2, null],
      ['dr.fhir@chu-demo.mssante.test', 'PER', 1, '1999999999'],
    ]);
    expect(found[0]!.service).toBe('Cardiologie');
    expect(fhir.requests).toBe(2);
    expect(requests.at(-1)!.key).toBe('key-123');
    await fhir.findPractitioner('810101010101', 'IDNPS');
    expect(fhir.requests).toBe(2);
    expect(await fhir.findPractitioner('10000000000', 'RPPS')).toEqual([]);
  });

  it('times out, opens its circuit after repeated failures, and tries again after the reset delay', async () => {
    const fhir = resolver();
    mode = 'slow';
    await expect(fhir.findPractitioner('10000000001', 'RPPS')).rejects.toThrow(DirectoryUnavailableError);
    mode = 'error';
    await expect(fhir.findPractitioner('10000000002', 'RPPS')).rejects.toThrow(/HTTP 500/);
    expect(fhir.circuitOpen).toBe(true);
    const sent = fhir.requests;
    await expect(fhir.findPractitioner('10000000003', 'RPPS')).rejects.toThrow(/circuit open/);
    expect(fhir.requests).toBe(sent);
    await new Promise((r) => setTimeout(r, 450));
    mode = 'ok';
    expect(await fhir.findPractitioner('10101010101', 'RPPS')).toHaveLength(2);
    expect(fhir.circuitOpen).toBe(false);
  });
});
