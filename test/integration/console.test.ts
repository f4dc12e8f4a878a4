// The operator console (issue #24) end to end, in a real headless browser: Debian's chromium driven by
// playwright-core (nothing downloads a browser), against a gateway on the sandbox. Results go in over MLLP; the
// console signs in with API keys of each role (and through a real OpenID provider, authorization code + PKCE),
// searches the patient by INS and by name, opens a result (one recipient delivered, one failed with DSN 5.1.1, one
// dead-lettered), shows its document, replays the dead letter; a viewer sees identities masked and no action. axe-core
// checks every page for serious or critical accessibility violations. Screenshots: .sandbox/screenshots/console/
// (and docs/console-*.png when MSSGW_DOCS_SCREENSHOTS=1).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { MllpClient } from '@mssgw/hl7';
import { queryAudit, revokeApiKey } from '@mssgw/auth';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { mailboxFiles, SANDBOX, tag, testConfig, waitFor } from '../support/env.ts';
import { apiClient, type ApiClient } from '../support/api.ts';
import { faultyOperator } from '../support/operator.ts';
import { startConsoleIdp, type ConsoleIdp } from '../e2e/console-idp.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CONSOLE = path.join(ROOT, 'services/console');
const SHOTS = path.join(SANDBOX, 'screenshots', 'console');
const DOCS_SHOTS = process.env['MSSGW_DOCS_SCREENSHOTS'] === '1';
/** How long a page may take to show what a check waits for, on a machine busy with the rest of the suite. */
const PATIENT = { timeout: 15_000, interval: 200 };
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** A port nothing listens on now. */
const freePort = () => new Promise<number>((resolve, reject) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address() as { port: number };
    s.close(() => resolve(port));
  }).on('error', reject);
});

interface Delivery { deliveryId: string; recipient: string; state: string; dsnStatus?: string; reason?: string }
interface Result { resultId: string; deliveries: Delivery[] }

describe('operator console, in headless Chromium', () => {
  let gateway: Gateway;
  let idp: ConsoleIdp;
  let browser: Browser;
  let base: string;
  let operator: ApiClient;
  let viewer: ApiClient;
  let admin: ApiClient;
  let resultId: string;
  const timings: Record<string, number> = {};
  const t = tag();
  const patient = PATIENTS[2]!; // ESSAI-NOËL ÉLODIE, INS 294082A10000142
  const ok = { ...DOCTORS[0]!, address: `alice-${t}@cabinet-demo.mssante.test` };
  const unknown = { ...DOCTORS[1]!, address: `unknown-console-${t}@cabinet-demo.mssante.test` };
  const deferred = { ...DOCTORS[2]!, address: `defer-console-${t}@cabinet-demo.mssante.test` };
  // Refused (451) by the first gateway's operator until it is dead-lettered; the sandbox operator takes it after a replay.
  const down = { ...DOCTORS[2]!, address: `down-console-${t}@cabinet-demo.mssante.test` };
  let downResultId: string;

  /** What the pages' Content-Security-Policy refused: nothing, or the console needs something it does not allow. */
  const cspViolations: string[] = [];
  /** A page of its own (storage apart), under the console's own Content-Security-Policy. */
  const newPage = async (): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'fr-FR', timezoneId: 'America/New_York', acceptDownloads: true });
    const page = await context.newPage();
    page.on('dialog', (d) => void d.accept());
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return { context, page };
  };
  const shot = async (page: Page, name: string, docs?: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
    if (docs && DOCS_SHOTS) await page.screenshot({ path: path.join(ROOT, 'docs', docs), fullPage: true });
  };
  /** axe-core in the page: the serious and critical violations, by rule and the first element of each. */
  const axe = async (page: Page): Promise<string[]> => {
    // Through the debugging protocol, which the page's CSP does not govern (a script tag would be refused).
    await page.evaluate(AXE);
    // A string, run in the page (this file is type-checked without the DOM's types).
    const violations = await page.evaluate<{ id: string; impact: string; nodes: { target: string[] }[] }[]>("axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations)");
    return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes[0]?.target.join(' ') ?? ''}`);
  };
  const signIn = async (page: Page, key: string) => {
    const t0 = Date.now();
    await page.goto(`${base}/`);
    await page.getByRole('textbox', { name: 'Clé d’API' }).fill(key);
    await page.getByRole('button', { name: 'Connexion' }).click();
    await page.getByRole('heading', { name: 'Vue d’ensemble', level: 1 }).waitFor();
    timings['sign-in to overview'] = Date.now() - t0;
  };

  beforeAll(async () => {
    execFileSync(process.execPath, [path.join(CONSOLE, 'build.mjs')], { stdio: 'pipe' });
    // The console's address must be known to the IdP (its redirect URI) before the gateway starts: a free port, then both.
    const port = await freePort();
    idp = await startConsoleIdp({ 'console-operator': ['mssgw-operator'], 'console-viewer': ['mssgw-viewer'] }, `http://127.0.0.1:${port}/`);
    const config = testConfig('console', (c) => {
      c.http.port = port;
      // A recipient refused at RCPT with 450 (or 451) at every attempt: dead-lettered once a short retry budget is spent.
      c.dispatcher.retryBudgetMs = 1_000;
      c.dispatcher.backoffMs = 100;
      c.directory.extraction = { location: path.join(ROOT, 'test/fixtures/directory/Extraction_Correspondance_MSSante_202611260400.txt'), refreshIntervalMs: 86_400_000, minRatio: 0.5 };
      c.api = {
        ...(c.api ?? { allowedHosts: [], trustProxy: [], rateLimit: { max: 100_000, windowMs: 60_000 }, auditRetentionDays: 400 }),
        rateLimit: { max: 100_000, windowMs: 60_000 },
        oidc: { issuer: idp.issuer, audience: idp.audience, rolesClaim: 'roles', roleMapping: { 'mssgw-viewer': 'viewer', 'mssgw-operator': 'operator' }, algorithms: ['ES256'], clockToleranceSeconds: 5 },
        console: { oidcClientId: idp.clientId, oidcScope: 'openid api' },
      };
    });
    // First, the same gateway (its store, its queues) in front of an operator that refuses one mailbox for now: that
    // recipient ends in the dead-letter queue. Then the gateway on the sandbox operator, where a replay delivers it.
    const faulty = await faultyOperator();
    const first = await startGateway({ ...structuredClone(config), operator: { ...config.operator, smtpPort: faulty.port } });
    const m = new MllpClient({ host: '127.0.0.1', port: first.intake!.listeners[0]!.port });
    await m.connect();
    expect((await m.send(makeCisisResult({ controlId: `CONSOLE-D-${t}`, patient: PATIENTS[0]!, doctors: [down] }))).code).toBe('AA');
    await m.close();
    downResultId = await waitFor('the refused recipient dead-lettered', async () => {
      const [id] = await first.ctx.status.resultsByControlId(`CONSOLE-D-${t}`);
      const r = id ? await first.ctx.status.getResult(id) : undefined;
      return r?.deliveries[0]?.state === 'dead-lettered' ? id : undefined;
    }, 60_000, 300);
    await first.stop();
    await faulty.close();
    gateway = await startGateway(config);
    base = `http://127.0.0.1:${gateway.api!.port}`;
    [operator, viewer, admin] = await Promise.all([apiClient(gateway.ctx.pg, 'operator', 'console operator'), apiClient(gateway.ctx.pg, 'viewer', 'console viewer'), apiClient(gateway.ctx.pg, 'admin', 'console admin')]);
    const c = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await c.connect();
    const controlId = `CONSOLE-${t}`;
    expect((await c.send(makeCisisResult({ controlId, patient, doctors: [ok, unknown, deferred], toPatient: true }))).code).toBe('AA');
    expect((await c.send(makeCisisResult({ controlId: `CONSOLE-B-${t}`, patient: PATIENTS[1]!, doctors: [ok], kind: 'imaging' }))).code).toBe('AA');
    await c.close();
    resultId = await waitFor('the result routed', async () => {
      const { body } = await operator.json<{ results: Result[] }>(`${base}/api/v1/results?controlId=${controlId}`);
      return body.results[0]?.resultId;
    });
    await waitFor('delivered, failed (5.1.1) and dead-lettered recipients', async () => {
      await gateway.receipts!.sweep();
      const { body } = await operator.json<Result>(`${base}/api/v1/results/${resultId}`);
      const state = (a: string) => body.deliveries.find((d) => d.recipient === a)?.state;
      return state(ok.address) === 'delivered' && state(unknown.address) === 'failed' && state(deferred.address) === 'dead-lettered';
    }, 90_000, 500);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
  }, 180_000);

  afterAll(async () => {
    expect(cspViolations).toEqual([]);
    await browser?.close();
    await gateway?.stop();
    await idp?.stop();
    console.log(`console: screenshots in ${SHOTS}; page times (ms): ${JSON.stringify(timings)}`);
  });

  it('ships at most 300 KB of JavaScript, gzipped, and its sources type-check', () => {
    const js = readFileSync(path.join(CONSOLE, 'dist', 'app.js'));
    const gzipped = gzipSync(js).length;
    console.log(`console: app.js ${js.length} bytes, ${gzipped} gzipped`);
    expect(gzipped).toBeLessThanOrEqual(300 * 1024);
    // Nothing from elsewhere at run time: the page names its own assets only.
    const html = readFileSync(path.join(CONSOLE, 'dist', 'index.html'), 'utf8');
    expect(html.match(/(?:src|href)="([^"]+)"/g)?.every((a) => /="\/console\//.test(a))).toBe(true);
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(CONSOLE, 'tsconfig.json'), '--noEmit'], { stdio: 'pipe' });
  }, 60_000);

  it('signs an operator in with a key: the overview, the patient found by INS and by name, the result, its document, a replay', async () => {
    const { context, page } = await newPage();
    await signIn(page, operator.key);
    await page.locator('#h-states').waitFor();
    await expect.poll(() => page.locator('[data-state="delivered"]').count(), PATIENT).toBeGreaterThan(0);
    // The router's reference data, from its beacon: the oppositions at least (the sandbox has no liste blanche location).
    await expect.poll(() => page.locator('table[data-health="reference"] tbody th').allTextContents(), PATIENT).toContain('Oppositions des patients');
    await shot(page, '1-overview', 'console-overview.png');
    expect(await axe(page)).toEqual([]);

    // By INS.
    let t0 = Date.now();
    await page.getByRole('link', { name: 'Messages' }).click();
    await page.getByLabel('Patient (INS)').fill(patient.ins);
    await page.getByRole('button', { name: 'Rechercher' }).click();
    await expect.poll(() => page.locator('tbody tr[data-result]').count(), PATIENT).toBe(1);
    timings['search by INS'] = Date.now() - t0;
    await expect.poll(() => page.locator(`tr[data-result="${resultId}"] .ins`).textContent(), PATIENT).toBe(patient.ins);
    // By name, without its accent or hyphen.
    t0 = Date.now();
    await page.getByLabel('Patient (INS)').fill('');
    await page.getByLabel('Nom du patient').fill('essai noel');
    await page.getByRole('button', { name: 'Rechercher' }).click();
    await expect.poll(() => page.locator(`tr[data-result="${resultId}"]`).count(), PATIENT).toBe(1);
    timings['search by name'] = Date.now() - t0;
    expect(await page.locator('tbody tr[data-result]').count()).toBe(1);
    await shot(page, '2-messages');
    expect(await axe(page)).toEqual([]);
    // CSV of what is listed.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Exporter en CSV' }).click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    expect(csv).toContain(patient.ins);
    expect(csv).toContain(resultId);
    expect(csv.trim().split('\r\n')).toHaveLength(2);

    // The result: one recipient delivered, one failed with 5.1.1, one dead-lettered.
    t0 = Date.now();
    await page.locator(`tr[data-result="${resultId}"] a`).click();
    const recipient = (address: string) => page.locator('li.recipient', { has: page.locator('.addr', { hasText: address }) });
    await recipient(ok.address).waitFor();
    timings['result page'] = Date.now() - t0;
    expect(await recipient(ok.address).getAttribute('data-state')).toBe('delivered');
    expect(await recipient(unknown.address).getAttribute('data-state')).toBe('failed');
    await expect.poll(() => recipient(unknown.address).textContent(), PATIENT).toContain('5.1.1');
    expect(await recipient(ok.address).locator('ol.timeline li').count()).toBeGreaterThanOrEqual(3); // queued, submitted, delivered
    expect(await page.locator('#h-hl7 ~ dl').textContent()).toContain('ORU R01');
    await shot(page, '3-result-timeline', 'console-result.png');
    // The message as received: its segments, the embedded CDA shortened; an audited read.
    await page.getByRole('button', { name: 'Afficher le message HL7' }).click();
    await expect.poll(() => page.locator('pre.hl7').textContent(), PATIENT).toContain(`MSH|^~\\&|SIL-DEMO|CHU-DEMO|MSSGW|CHU-DEMO|`);
    expect(await page.locator('pre.hl7').textContent()).toMatch(/^OBX\|1\|ED\|11502-2.*characters\)/m);
    expect(await page.locator('pre.hl7').textContent()).toContain(`PID|||${patient.ins}^^^`);
    // The document: a CDA, rendered, with its PDF in the page; an audited read.
    await page.getByRole('button', { name: 'Afficher le document' }).first().click();
    await page.locator('.cda iframe.pdf').waitFor();
    expect(await page.locator('.cda').textContent()).toContain("CR d'examens biologiques");
    await shot(page, '3-result-document');
    expect(await axe(page)).toEqual([]);
    const audit = await queryAudit(gateway.ctx.pg, { id: resultId, route: '/api/v1/console/results/:id/documents/:index', limit: 10 });
    expect(audit.events.map((e) => [e.actor, e.outcome])).toContainEqual([operator.keyId, 'allowed']);

    // Replay the dead letter, confirmed: the timeline shows the operator's replay.
    const dead = recipient(deferred.address);
    expect(await dead.getAttribute('data-state')).toBe('dead-lettered');
    await dead.getByRole('button', { name: 'Rejouer' }).click();
    await page.getByRole('status').filter({ hasText: 'Remis en file d’envoi' }).waitFor();
    await expect.poll(() => dead.locator('ol.timeline').textContent(), { timeout: 20_000 }).toContain('exploitant');
    const replays = await queryAudit(gateway.ctx.pg, { route: '/api/v1/dead-letters/:id/replay', actor: operator.keyId, limit: 10 });
    expect(replays.events[0]).toMatchObject({ outcome: 'allowed', status: 200 });
    await shot(page, '4-replayed');
    // Still refused by the operator, it is dead-lettered again; cancelled, confirmed: refused, nothing sent.
    await expect.poll(() => dead.getAttribute('data-state'), { timeout: 30_000, interval: 500 }).toBe('dead-lettered');
    await dead.getByRole('button', { name: 'Annuler l’envoi' }).click();
    await page.getByRole('status').filter({ hasText: 'Envoi annulé' }).waitFor();
    await expect.poll(() => dead.getAttribute('data-state'), PATIENT).toBe('refused');
    expect(await dead.textContent()).toContain('cancelled');
    const cancels = await queryAudit(gateway.ctx.pg, { route: '/api/v1/console/deliveries/:id/cancel', actor: operator.keyId, limit: 10 });
    expect(cancels.events[0]).toMatchObject({ outcome: 'allowed', status: 200 });
    expect(((await operator.json<{ deadLetters: { deliveryId: string }[] }>(`${base}/api/v1/dead-letters`)).body.deadLetters).map((d) => d.deliveryId))
      .not.toContain(await dead.getAttribute('data-delivery'));
    // Resend to the delivered practitioner: a new mail, linked to the first, delivered in turn (the page refreshes by itself).
    const first = await recipient(ok.address).getAttribute('data-delivery');
    await recipient(ok.address).getByRole('button', { name: 'Renvoyer' }).click();
    await page.getByRole('status').filter({ hasText: 'Nouveau message mis en file d’envoi' }).waitFor();
    const copies = page.locator('li.recipient', { has: page.locator('.addr', { hasText: ok.address }) });
    await expect.poll(() => copies.count(), PATIENT).toBe(2);
    const again = copies.filter({ hasText: `resent from ${first}` });
    await expect.poll(() => again.getAttribute('data-state'), { timeout: 60_000, interval: 1000 }).toBe('delivered');
    expect(await page.locator(`li.recipient[data-delivery="${first}"]`).textContent()).toContain(`resent as ${await again.getAttribute('data-delivery')}`);
    // Both in the practitioner's mailbox: the first mail and the new one, each with its own Message-ID.
    const ofResult = () => mailboxFiles(ok.address).map((m) => /^Message-ID: *(\S+)/im.exec(m.toString('latin1'))?.[1] ?? '').filter((m) => m.includes(resultId));
    const ids = await waitFor('both mails in the mailbox', () => Promise.resolve(ofResult().length >= 2 ? ofResult() : undefined));
    expect(ids.sort()).toEqual([expect.stringMatching(new RegExp(`^<${resultId}-ps-r[0-9a-f]{6}@`)), expect.stringMatching(new RegExp(`^<${resultId}-ps@`))]);
    await shot(page, '4b-resent');

    await page.getByRole('link', { name: 'Lettres mortes' }).click();
    await page.getByRole('heading', { name: 'Lettres mortes', level: 1 }).waitFor();
    const row = page.locator('tr', { has: page.getByRole('link', { name: downResultId }) });
    await row.waitFor();
    await shot(page, '5-dead-letters');
    expect(await axe(page)).toEqual([]);
    // Replayed from the list, then watched on its result's page (refreshed by itself) until the DSN says delivered.
    await row.getByRole('button', { name: 'Rejouer' }).click();
    await page.getByRole('status').filter({ hasText: 'Remis en file d’envoi' }).waitFor();
    await page.goto(`${base}/#/results/${downResultId}`);
    const replayed = recipient(down.address);
    await expect.poll(() => replayed.getAttribute('data-state'), { timeout: 60_000, interval: 1000 }).toBe('delivered');
    expect(await replayed.locator('ol.timeline').textContent()).toContain('replayed from the dead-letter queue');
    await shot(page, '5a-replayed-delivered');

    // Directory look-up: a practitioner's mailboxes by RPPS, with the liste blanche's verdict.
    await page.getByRole('link', { name: 'Annuaire' }).click();
    await page.getByLabel('RPPS, FINESS ou adresse MSSanté').fill('10000000001');
    await page.getByLabel('Type d’identifiant').selectOption('RPPS');
    await page.getByRole('button', { name: 'Rechercher' }).click();
    await expect.poll(() => page.locator('table.directory tbody tr').count(), PATIENT).toBe(2);
    expect(await page.locator('table.directory').textContent()).toContain('alice.medecin-un@cabinet-demo.mssante.test');
    expect(await page.locator('table.directory').textContent()).toContain('domaine autorisé');
    await shot(page, '5b-directory');
    expect(await axe(page)).toEqual([]);
    await context.close();
  }, 240_000);

  it('shows a viewer masked identities and no action', async () => {
    const { context, page } = await newPage();
    await signIn(page, viewer.key);
    await page.getByRole('link', { name: 'Messages' }).click();
    await page.locator(`tr[data-result="${resultId}"]`).waitFor();
    expect(await page.getByLabel('Patient (INS)').count()).toBe(0);
    expect(await page.getByLabel('Nom du patient').count()).toBe(0);
    const row = await page.locator(`tr[data-result="${resultId}"]`).textContent();
    expect(row).toContain('2************42');
    expect(row).not.toContain(patient.ins);
    expect(row).not.toContain(patient.family);
    await shot(page, '6-viewer-messages');
    expect(await axe(page)).toEqual([]);
    await page.locator(`tr[data-result="${resultId}"] a`).click();
    await page.locator('li.recipient').first().waitFor();
    const text = (await page.locator('main').textContent())!;
    for (const secret of [patient.ins, patient.family, ok.address, unknown.address]) expect(text).not.toContain(secret);
    expect(text).toContain('a***@cabinet-demo.mssante.test');
    expect(await page.getByRole('button', { name: 'Rejouer' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Afficher le document' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Afficher le message HL7' }).count()).toBe(0);
    await shot(page, '7-viewer-result');
    expect(await axe(page)).toEqual([]);
    await page.getByRole('link', { name: 'Lettres mortes' }).click();
    await page.getByRole('heading', { name: 'Lettres mortes', level: 1 }).waitFor();
    expect(await page.getByRole('button', { name: 'Rejouer' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Journal d’audit' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Annuaire' }).count()).toBe(0);
    // The key revoked meanwhile: the next call is refused, and the page goes back to sign-in, saying why.
    await revokeApiKey(gateway.ctx.pg, viewer.keyId);
    await page.getByRole('link', { name: 'Messages' }).click();
    await page.getByRole('alert').filter({ hasText: 'reconnectez-vous' }).waitFor();
    expect(await page.getByRole('textbox', { name: 'Clé d’API' }).count()).toBe(1);
    await context.close();
  }, 120_000);

  it('shows an admin the audit log and the API keys, in English on request', async () => {
    const { context, page } = await newPage();
    await signIn(page, admin.key);
    await page.getByLabel('Langue').first().selectOption('en');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
    await expect.poll(() => page.locator('table.audit tbody tr').count(), PATIENT).toBeGreaterThan(5);
    expect(await page.locator('table.audit').textContent()).toContain('/api/v1/console/results/:id');
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    await shot(page, '8-audit');
    expect(await axe(page)).toEqual([]);

    // API keys: one made (shown once), then revoked, both confirmed by the API.
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByLabel('Key name').fill('night desk');
    await page.getByRole('button', { name: 'Create the key' }).click();
    const key = (await page.getByRole('status').locator('code').textContent())!;
    expect(key).toMatch(/^mssgw\.k-[0-9a-f]{24}\./);
    const keyId = key.split('.')[1]!;
    expect((await fetch(`${base}/api/v1/console/me`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    await shot(page, '9-keys');
    expect(await axe(page)).toEqual([]);
    await page.locator(`tr[data-key="${keyId}"]`).getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => page.locator(`tr[data-key="${keyId}"] button`).count(), PATIENT).toBe(0);
    expect((await fetch(`${base}/api/v1/console/me`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
    await context.close();
  }, 120_000);

  it('signs in through the hospital IdP: authorization code + PKCE, the role from the token', async () => {
    const { context, page } = await newPage();
    const t0 = Date.now();
    await page.goto(`${base}/`);
    await page.getByRole('heading', { name: 'Se connecter avec une clé d’API' }).waitFor();
    await shot(page, '0-sign-in');
    expect(await axe(page)).toEqual([]);
    await page.getByRole('button', { name: 'Se connecter avec le fournisseur d’identité de l’établissement' }).click();
    await idp.signIn(page, 'console-viewer');
    await page.getByRole('heading', { name: 'Vue d’ensemble', level: 1 }).waitFor();
    timings['OIDC sign-in'] = Date.now() - t0;
    expect(await page.locator('[data-role]').getAttribute('data-role')).toBe('viewer');
    expect(page.url()).toBe(`${base}/#/`);
    await page.getByRole('link', { name: 'Messages' }).click();
    await page.locator(`tr[data-result="${resultId}"]`).waitFor();
    expect(await page.locator(`tr[data-result="${resultId}"]`).textContent()).not.toContain(patient.ins);
    const events = await queryAudit(gateway.ctx.pg, { actor: 'console-viewer', limit: 10 });
    expect(events.events.some((e) => e.actorKind === 'oidc' && e.route === '/api/v1/results')).toBe(true);
    await context.close();
  }, 120_000);
});
