// Reference data over TLS: the liste blanche, the Annuaire Santé extraction and its FHIR API are served with
// certificates of the IGC-Santé, whose roots Node's store lacks. Each download takes a CA file (caFile in the
// configuration), trusted besides Node's store. Here a CA of the test's own stands for the IGC-Santé, on loopback.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryUnavailableError, FhirDirectory, openExtraction } from '@mssgw/directory';
import { fetchWhitelist, WhitelistError } from '@mssgw/whitelist';

const ROOT = path.resolve(import.meta.dirname, '../..');
const WHITELIST = readFileSync(path.join(ROOT, 'test/fixtures/whitelist/listeblanchemssante.xml'));
const EXTRACTION = readFileSync(path.join(ROOT, 'deploy/demo/directory/Extraction_Correspondance_MSSante_demo.txt'));
const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-ca-'));
const file = (name: string) => path.join(dir, name);

/** A root of the test's own ("IGC-Santé"), and a server certificate it signs for 127.0.0.1. */
function makePki(): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Test IGC-Sante root');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
}

let server: Server;
let base: string;
const bundle = {
  resourceType: 'Bundle', type: 'searchset',
  entry: [{ resource: { resourceType: 'Practitioner', id: 'p1', telecom: [{ system: 'email', value: 'dr.tls@cabinet-demo.mssante.test', extension: [
    { url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type', valueCoding: { code: 'MSSANTE' } },
  ] }] } }],
};

beforeAll(async () => {
  makePki();
  server = createServer({ cert: readFileSync(file('server.pem')), key: readFileSync(file('server.key')) }, (req, res) => {
    const url = req.url ?? '';
    if (url === '/lb.xml') return void res.end(WHITELIST);
    if (url === '/moved') return void res.writeHead(302, { location: '/lb.xml' }).end();
    if (url === '/extraction.txt') return void res.end(EXTRACTION);
    if (url.startsWith('/fhir/v2/Practitioner')) return void res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(JSON.stringify(bundle));
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.close();
});

describe('a CA for each reference-data download', () => {
  it('the liste blanche: refused on Node\'s store alone, loaded with the CA, through a redirect too', async () => {
    await expect(fetchWhitelist({ location: `${base}/lb.xml` })).rejects.toThrow(WhitelistError);
    await expect(fetchWhitelist({ location: `${base}/lb.xml` })).rejects.toThrow(/certificate/);
    const list = await fetchWhitelist({ location: `${base}/lb.xml`, caFile: file('ca.pem') });
    expect(Object.keys(list.domains).length).toBeGreaterThan(0);
    const moved = await fetchWhitelist({ location: `${base}/moved`, caFile: file('ca.pem') });
    expect(moved.sha256).toBe(list.sha256);
  });

  it('the Annuaire Santé extraction: refused without the CA, read whole with it', async () => {
    await expect(openExtraction(`${base}/extraction.txt`)).rejects.toThrow(/certificate/);
    const source = await openExtraction(`${base}/extraction.txt`, { caFile: file('ca.pem') });
    const chunks: Buffer[] = [];
    for await (const chunk of source.text) chunks.push(chunk as Buffer);
    await source.close();
    expect(Buffer.concat(chunks).equals(EXTRACTION)).toBe(true);
    await expect(openExtraction(`${base}/missing.txt`, { caFile: file('ca.pem') })).rejects.toThrow(/HTTP 404/);
  });

  it('the Annuaire Santé FHIR API: unavailable without the CA, answering with it', async () => {
    const options = { baseUrl: `${base}/fhir/v2`, apiKey: 'k', timeoutMs: 5_000, cacheTtlMs: 0, cacheSize: 10, failureThreshold: 5, resetMs: 1_000 };
    await expect(new FhirDirectory(options).findPractitioner('10101010101', 'RPPS')).rejects.toThrow(DirectoryUnavailableError);
    const found = await new FhirDirectory({ ...options, caFile: file('ca.pem') }).findPractitioner('10101010101', 'RPPS');
    expect(found.map((m) => m.address)).toEqual(['dr.tls@cabinet-demo.mssante.test']);
  });
});
