// mssgw: the gateway's command-line tool (bin/mssgw.ts runs it). It talks to a terminal, hence console.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { apiAccessOf, ConfigError, loadConfig, type GatewayConfig } from '@mssgw/config';
import { createWriteStream } from 'node:fs';
import { connectRedis } from '@mssgw/queue';
import { domainAllowed, fetchWhitelist } from '@mssgw/whitelist';
import { composeResult } from './compose.ts';
import {
  DirectoryStore, describeRejections, generateExtraction, importExtraction, practitionerKeys, progressLine, structureKeys, type DirectoryMailbox,
} from '@mssgw/directory';
import { describeWarnings, Hl7Error, parseResult, type ErrorLocation } from '@mssgw/hl7';
import { toleranceOf } from '@mssgw/intake';
import { listDeadLetters, replayDeadLetters } from '@mssgw/dispatcher';
import { parseReceipt } from '@mssgw/receipts';
import { closeContext, createContext, redisEndpoint } from '@mssgw/runtime';
import { connectPostgres, describePostgres, migrationStatus, OppositionStore, prepareSchema, pruneRecords, StoreUnavailableError, type Opposition } from '@mssgw/store';
import { oppositionDirections, parseOppositionSubject } from '@mssgw/routing';
import { closePatientConversation, CloseRefused, FIN_SUBJECT } from '@mssgw/api';
import { FINAL_STATES } from '@mssgw/lifecycle';
import { StatusStore } from '@mssgw/status';
import { createApiKey, isRole, listApiKeys, pruneAudit, queryAudit, recordAudit, revokeApiKey, ROLES, type AuditEvent } from '@mssgw/auth';
import { userInfo } from 'node:os';
import { formatTable, runDemo } from './demo.ts';
import { SERVICE_NAMES, startGateway, type ServiceName } from './start.ts';

const HELP = `mssgw — MSSanté gateway for lab results and imaging reports

Usage:
  mssgw start [service...] [--config FILE]   run services in this process (default: all)
                                             services: ${SERVICE_NAMES.join(', ')}
                                             (every process serves /healthz and /metrics;
                                             the API only the api service)
  mssgw demo [--keep-running] [--config FILE] send the shipped sample results through the sandbox
                                             operator and print each recipient's outcome
  mssgw parse FILE [--json] [--source S]     print the normalised result of an HL7 file and what its
                                             ACK would warn about, or the error its NACK would carry
                                             (exit status 2); --source reads it as that source's
                                             listener does (intake.tolerance)
  mssgw compose FILE.hl7 --out DIR [--source S] write the .eml files the gateway would send for a result
                                             (configured rules, liste blanche, and the directory when
                                             Redis answers); one line per mail; nothing is sent
  mssgw receipt FILE.eml [--json]            print what a DSN / MDN / other mail says
  mssgw directory import FILE|URL [--force]  load an Annuaire Santé MSSanté extraction (.zip or .txt)
                                             as the directory; prints the rows rejected and why
  mssgw directory lookup ID [--type T] [--json] mailboxes of a practitioner (T = RPPS, IDNPS, ADELI),
                                             a structure (T = FINESS, SIRET, IDNST) or an address
  mssgw directory info                       what the current directory was loaded from, and when
  mssgw directory generate FILE [--rows N]   write a synthetic extraction (benchmarks, tests)
  mssgw migrate [--status]                   bring the message store's schema (PostgreSQL) up to date, under
                                             a lock; --status lists applied and pending migrations (exit 3
                                             when some are pending)
  mssgw prune [--dry-run]                    remove from the message store the results older than
                                             receipts.retentionDays whose recipients are all final, and
                                             empty the bodies of those over since postgres.bodyRetentionDays
  mssgw dlq list [--json]                    deliveries that exhausted their retries, with the reason
  mssgw dlq replay ID|--all                  put them back on their send queue (one whose domain left
                                             the liste blanche is refused instead, with that reason)
  mssgw opposition add ID --direction D [--date YYYY-MM-DD]
                                             record a patient's opposition: ID = INS:<ins> or
                                             IPP:<ipp>@<facility> (MSH-4 of its results); D = patient
                                             (no mail to the patient), professionals (no mail about the
                                             patient to practitioners) or both
  mssgw opposition remove ID [--direction D] withdraw it (both directions unless --direction)
  mssgw opposition list [ID] [--json]        the oppositions recorded (file, CLI, API), oldest first
  mssgw patient close INS --mailbox M        end the patient's conversation with the sending mailbox M:
                                             sends the one mail whose subject is [FIN] (docs/message.md)
  mssgw replies [--mailbox M] [--unmatched] [--limit N] [--json]
                                             the replies that reached the sending mailboxes, newest
                                             first: what each answers, how it was matched, its copy
                                             (--json adds the sender and subject; audited)
  mssgw apikey create --role R --name N      make an API key (R = viewer, operator, admin); the key
                                             is printed once, only its hash is kept
  mssgw apikey list [--json]                 the API keys: id, role, name, created, last used, revoked
  mssgw apikey revoke ID                     refuse a key from now on
  mssgw audit [--actor A] [--id ID] [--outcome allowed|refused] [--since T] [--limit N] [--json]
                                             the API's audit trail, newest first (who read or did
                                             what, when, from where, allowed or refused)
  mssgw audit prune                          remove the events older than api.auditRetentionDays
  mssgw --help                               this text

Configuration: --config FILE or MSSGW_CONFIG (YAML or JSON), then MSSGW_<SECTION>_<KEY>
environment overrides (e.g. MSSGW_REDIS_URL, MSSGW_HTTP_PORT). With neither, the embedded
demo defaults run against the local sandbox (deploy/local/infra.sh up).`;

/**
 * A clean stop on SIGTERM or SIGINT. Further signals while stopping are ignored: under `npm run`, Ctrl-C reaches the
 * gateway twice (from the terminal and forwarded by npm), and the second must not kill it half-stopped.
 */
function stopOnSignal(gateway: { ctx: { log: { info: (o: object, m: string) => void } }; stop: () => Promise<void> }): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    gateway.ctx.log.info({ signal }, 'stopping');
    gateway.stop().then(
      () => {
        gateway.ctx.log.info({ signal }, 'stopped');
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const fail = (message: string, code = 1): never => {
  console.error(`mssgw: ${message}`);
  process.exit(code);
};

/** " at OBX[22]-5": where an ERR segment points, as parse and compose print it. */
const at = (l: ErrorLocation | null | undefined) => (l ? ` at ${l.segment}${l.sequence ? `[${l.sequence}]` : ''}${l.field ? `-${l.field}` : ''}` : '');

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      'keep-running': { type: 'boolean' },
      all: { type: 'boolean' },
      status: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      force: { type: 'boolean' },
      type: { type: 'string' },
      rows: { type: 'string' },
      out: { type: 'string' },
      source: { type: 'string' },
      role: { type: 'string' },
      name: { type: 'string' },
      actor: { type: 'string' },
      id: { type: 'string' },
      outcome: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      direction: { type: 'string' },
      date: { type: 'string' },
      mailbox: { type: 'string' },
      unmatched: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command || command === 'help') {
    console.log(HELP);
    return;
  }
  const config = () => loadConfig({ file: values.config });

  switch (command) {
    case 'start': {
      const unknown = rest.filter((s) => !(SERVICE_NAMES as readonly string[]).includes(s));
      if (unknown.length) fail(`unknown service ${unknown.join(', ')} (expected ${SERVICE_NAMES.join(', ')})`, 2);
      stopOnSignal(await startGateway(config(), rest.length ? (rest as ServiceName[]) : SERVICE_NAMES));
      return;
    }
    case 'demo': {
      const { rows, gateway } = await runDemo(config(), { keepRunning: values['keep-running'] ?? false });
      console.log(formatTable(rows));
      const confirmed = rows.filter((r) => r.status === 'delivered').length;
      console.log(`\n${new Set(rows.map((r) => r.controlId)).size} results, ${rows.length} recipients, ${confirmed} deliveries confirmed by DSN`);
      if (values['keep-running']) {
        // The API takes no request without a credential: the demo makes an operator key for whoever explores it.
        const { key } = await createApiKey(gateway.ctx.pg, { role: 'operator', name: 'demo', createdBy: cliUser() });
        const api = `${gateway.api!.scheme}://${gateway.ctx.config.http.host}:${gateway.api!.port}`;
        console.log(`API key (operator, shown once): ${key}`);
        console.log(`  curl -H 'Authorization: Bearer ${key}' '${api}/api/v1/results?limit=5'`);
        console.log(`  more keys: MSSGW_POSTGRES_SCHEMA=${gateway.ctx.config.postgres.schema} npm run mssgw -- apikey create --role viewer|operator|admin --name NAME (docs/security.md)`);
        console.log(`gateway still running (API on ${api}); Ctrl-C to stop`);
        stopOnSignal(gateway);
        return;
      }
      console.log('to explore the HTTP API: npm run demo -- --keep-running (it prints an API key)');
      process.exit(confirmed >= 3 ? 0 : 1);
      break;
    }
    case 'parse': {
      const file = rest[0] ?? fail('parse needs a FILE', 2);
      try {
        const r = parseResult(readFileSync(file), values.source ? toleranceOf(config(), values.source) : undefined);
        const out = {
          messageType: `${r.messageType}^${r.event}`, version: r.version, controlId: r.controlId, profile: r.profile, action: r.action,
          patient: { ins: r.patient.ins ?? null, ipp: r.patient.ipp ?? null, identityReliability: r.patient.identityReliability ?? null },
          participants: r.participants.map((p) => ({ role: p.role, kind: p.kind, id: p.id ?? null, idType: p.idType ?? null, address: p.address ?? null })),
          documents: r.documents.map((d) => ({ kind: d.kind, code: d.code, bytes: d.bytes, sha256: d.sha256 })),
          flags: r.flags,
          warnings: describeWarnings(r.warnings),
        };
        if (values.json) console.log(JSON.stringify(out, null, 2));
        else {
          console.log(`${out.messageType} v${out.version} control id ${out.controlId} (${out.profile}, ${out.action})`);
          console.log(`patient INS ${r.patient.ins ? `${r.patient.ins.value} (${r.patient.ins.oid}, ${r.patient.ins.qualified ? 'qualified' : 'not qualified'})` : 'none'}`);
          for (const p of out.participants) console.log(`  ${p.role.padEnd(11)} ${p.kind.padEnd(12)} ${p.idType ?? ''} ${p.id ?? ''} ${p.address ?? ''}`);
          for (const d of out.documents) console.log(`  document ${d.kind} ${d.code} ${d.bytes} bytes sha256 ${d.sha256}`);
          console.log(`  flags ${Object.entries(out.flags).map(([k, v]) => `${k}=${v ? 'Y' : 'N'}`).join(' ') || 'none'}`);
          for (const w of out.warnings) console.log(`  warning ${w.code}${at(w.location)}: ${w.text}`);
        }
      } catch (err) {
        if (err instanceof Hl7Error) {
          if (values.json) console.log(JSON.stringify({ error: { ack: err.ackCode, code: err.code, reason: err.reasonCode || null, condition: err.condition, location: err.location ?? null, text: err.message } }, null, 2));
          else console.error(`mssgw: ${err.ackCode} ${err.code}${at(err.location)}: ${err.message}${err.reasonCode ? ` [${err.reasonCode}]` : ''}`);
          process.exit(2);
        }
        throw err;
      }
      return;
    }
    case 'compose': {
      const file = rest[0] ?? fail('usage: mssgw compose FILE.hl7 --out DIR [--source S]', 2);
      const out = values.out ?? fail('compose needs --out DIR', 2);
      const cfg = config();
      const source = values.source ?? cfg.mllp.listeners[0]?.source ?? 'lab';
      const w = cfg.mssante.whitelist;
      const list = w.location ? await fetchWhitelist({ location: w.location, ...(w.sha256 ? { sha256: w.sha256 } : {}), ...(w.checksumUrl ? { checksumUrl: w.checksumUrl } : {}) }) : undefined;
      const testDomains = new Set(cfg.mssante.testDomains.map((d) => d.toLowerCase()));
      // The directory is in Redis; without Redis, practitioners without an address are reported as no-mailbox.
      const redis = connectRedis(redisEndpoint(cfg), { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 1500 });
      redis.on('error', () => undefined);
      const directory = await redis.connect().then(() => new DirectoryStore(redis, cfg.redis.prefix), () => {
        console.error(`mssgw: Redis at ${cfg.redis.url} does not answer; composing without the directory`);
        return undefined;
      });
      try {
        const composed = await composeResult(readFileSync(file), {
          config: cfg, source, allowsDomain: (d, forPatient) => domainAllowed(list, testDomains, d, forPatient), ...(directory ? { directory } : {}),
        });
        mkdirSync(out, { recursive: true });
        for (const m of composed.mails) {
          writeFileSync(path.join(out, m.file), m.eml);
          console.log(`${m.file}  ${m.spec.audience}  to ${m.spec.to.join(', ')}  "${m.spec.subject}"  ${m.eml.length} bytes`);
        }
        for (const r of composed.refusals) console.log(`refused  ${r.address ?? `${r.origin}:${r.id ?? '-'}`}  ${r.reason}: ${r.detail}`);
        for (const w of describeWarnings(composed.warnings)) console.log(`warning  ${w.code}${at(w.location)}: ${w.text}`);
        console.log(`${composed.mails.length} mail(s) written to ${out}, ${composed.refusals.length} recipient(s) refused; nothing sent`);
      } catch (err) {
        if (err instanceof Hl7Error) fail(`${err.ackCode} ${err.code}: ${err.message}${err.reasonCode ? ` [${err.reasonCode}]` : ''}`, 2);
        throw err;
      } finally {
        redis.disconnect();
      }
      return;
    }
    case 'receipt': {
      const file = rest[0] ?? fail('receipt needs a FILE', 2);
      const r = await parseReceipt(readFileSync(file));
      if (values.json) console.log(JSON.stringify(r, null, 2));
      else if (r.kind === 'dsn') {
        console.log(`DSN envelope id ${r.envelopeId ?? '-'} original message id ${r.originalMessageId ?? '-'}`);
        for (const x of r.recipients) console.log(`  ${x.recipient} ${x.action} ${x.status} ${x.diagnosticCode ?? ''}`);
      } else if (r.kind === 'mdn') {
        console.log(`MDN for ${r.originalMessageId ?? '-'} from ${r.finalRecipient ?? '-'}: ${r.disposition.actionMode}/${r.disposition.sendingMode}; ${r.disposition.type}${r.disposition.error ? ` error ${r.disposition.error.code} ${r.disposition.error.label}` : ''}`);
      } else console.log(`not a receipt (${r.reason})`);
      return;
    }
    case 'directory': {
      const [action, arg] = rest;
      if (action === 'generate') {
        const file = arg ?? fail('usage: mssgw directory generate FILE [--rows N]', 2);
        const rows = Number(values.rows ?? 535_000);
        if (!Number.isInteger(rows) || rows < 1) fail(`--rows: expected a positive integer, got "${values.rows}"`, 2);
        const out = createWriteStream(file);
        await generateExtraction(out, { rows, invalidEvery: 50_000 });
        await new Promise((resolve) => out.end(resolve));
        console.log(`${rows} rows written to ${file}`);
        return;
      }
      const ctx = createContext(config(), 'mssgw-cli');
      const store = new DirectoryStore(ctx.redis, ctx.config.redis.prefix);
      try {
        if (action === 'import' && arg) {
          // Progress on stderr, and only on a terminal: piped or logged output holds the summary alone.
          const progress = progressLine(process.stderr);
          const report = await importExtraction(store, arg, { force: values.force ?? false, onProgress: (p) => progress.update(p) }).finally(() => progress.done());
          if (values.json) console.log(JSON.stringify(report, null, 2));
          else {
            console.log(`${report.mailboxes} mailboxes from ${report.rows} rows of ${report.source} in ${(report.durationMs / 1000).toFixed(1)} s (sha256 ${report.sourceSha256 ?? '-'})`);
            for (const line of describeRejections(report)) console.log(line);
          }
        } else if (action === 'lookup' && arg) {
          const type = (values.type ?? '').toUpperCase();
          const found = arg.includes('@')
            ? await store.findAddress(arg)
            : ['FINESS', 'FINEG', 'FINEJ', 'SIRET', 'SIREN', 'IDNST'].includes(type)
              ? await store.lookup(structureKeys(arg, type))
              : await store.lookup(type ? practitionerKeys(arg, type) : [...practitionerKeys(arg), ...structureKeys(arg)]);
          if (values.json) console.log(JSON.stringify(found, null, 2));
          else {
            for (const m of found) console.log(describeMailbox(m));
            console.log(`${found.length} mailbox(es)`);
          }
          if (!found.length) process.exitCode = 3;
        } else if (action === 'info') {
          const info = await store.info();
          if (!info) fail('no directory loaded yet (mssgw directory import FILE, or directory.extraction in the configuration)', 3);
          console.log(values.json ? JSON.stringify(info, null, 2) : `${info!.mailboxes} mailboxes from ${info!.source}, imported ${new Date(info!.importedAt).toISOString()} (${info!.rejected} rows rejected)`);
          // Where the rejected rows are, also after a scheduled import (the router's, whose output is in its logs).
          if (!values.json && info!.rejected) for (const line of describeRejections(info!).slice(1)) console.log(line);
        } else fail('usage: mssgw directory import FILE|URL | lookup ID [--type T] | info | generate FILE [--rows N]', 2);
      } finally {
        await closeContext(ctx);
      }
      return;
    }
    case 'migrate': {
      const cfg = config();
      const pool = connectPostgres(cfg.postgres, 'mssgw-cli');
      try {
        if (values.status) {
          const { applied, pending } = await migrationStatus(pool).catch((err: Error) => {
            throw new StoreUnavailableError(describePostgres(cfg.postgres), err);
          });
          for (const m of applied) console.log(`applied  ${String(m.version).padStart(4, '0')} ${m.name}  ${m.appliedAt.toISOString()}`);
          for (const m of pending) console.log(`pending  ${String(m.version).padStart(4, '0')} ${m.name}`);
          if (pending.length) process.exitCode = 3;
        } else {
          const applied = await prepareSchema(pool, { ...cfg.postgres, migrateOnStart: true });
          console.log(applied.length ? `applied ${applied.map((m) => `${m.version} (${m.name})`).join(', ')}` : 'the message store is up to date');
        }
      } finally {
        await pool.end();
      }
      return;
    }
    case 'prune': {
      const cfg = config();
      const pool = connectPostgres(cfg.postgres, 'mssgw-cli');
      try {
        const olderThan = new Date(Date.now() - cfg.receipts.retentionDays * 86_400_000);
        // The same retention as the router's hourly prune: records after receipts.retentionDays, bodies after
        // postgres.bodyRetentionDays.
        const bodiesOlderThan = new Date(Date.now() - cfg.postgres.bodyRetentionDays * 86_400_000);
        const r = await pruneRecords(pool, { olderThan, bodiesOlderThan, finalStates: FINAL_STATES, dryRun: values['dry-run'] ?? false }).catch((err: Error) => {
          throw new StoreUnavailableError(describePostgres(cfg.postgres), err);
        });
        const dry = values['dry-run'] ?? false;
        console.log(`${dry ? 'would remove' : 'removed'} ${r.results} results received before ${olderThan.toISOString()} with every recipient final, ${r.deliveries} recipients, ${r.events} events, ${r.bodies} bodies`);
        console.log(`${dry ? 'would empty' : 'emptied'} the bodies of ${r.emptied} results over since before ${bodiesOlderThan.toISOString()} (their records stay)`);
      } finally {
        await pool.end();
      }
      return;
    }
    case 'dlq': {
      const ctx = createContext(config(), 'mssgw-cli');
      try {
        if (rest[0] === 'list') {
          const dead = await listDeadLetters(ctx);
          if (values.json) console.log(JSON.stringify(dead, null, 2));
          else {
            for (const d of dead) console.log(`${d.deliveryId}  ${new Date(d.failedAt).toISOString()}  ${d.mailbox}  ${d.reason}`);
            console.log(`${dead.length} dead-lettered deliveries`);
          }
        } else if (rest[0] === 'replay' && (values.all || rest[1])) {
          const report = { refused: [] as { deliveryId: string; reason: string; detail: string }[] };
          const ids = await replayDeadLetters(ctx, values.all ? { all: true } : { deliveryId: rest[1]! }, report);
          // Like the console's replay: who put what back on its queue is in the audit trail, and each refusal with its reason.
          if (ids.length) await auditCli(ctx.pg, 'dlq replay', ids);
          for (const r of report.refused) await auditCli(ctx.pg, 'dlq replay', [r.deliveryId], r.reason);
          for (const r of report.refused) console.log(`${r.deliveryId}  refused  ${r.reason}: ${r.detail}`);
          if (!values.all && ids.length === 0 && report.refused.length === 0) fail(`no dead-lettered delivery ${rest[1]}`, 2);
          console.log(`${ids.length} deliveries replayed${ids.length ? `: ${ids.join(', ')}` : ''}${report.refused.length ? `, ${report.refused.length} refused` : ''}`);
          // A replay refused (its domain left the liste blanche): not what was asked, said by the exit status.
          if (report.refused.length) process.exitCode = 4;
        } else fail('usage: mssgw dlq list | mssgw dlq replay ID|--all', 2);
      } finally {
        await closeContext(ctx);
      }
      return;
    }
    case 'apikey': {
      await withStore(config(), async (pool) => {
        const [action, arg] = rest;
        if (action === 'create') {
          const role = values.role ?? fail(`apikey create needs --role (${ROLES.join(', ')})`, 2);
          if (!isRole(role)) fail(`--role: expected one of ${ROLES.join(', ')}, got "${role}"`, 2);
          const name = values.name ?? fail('apikey create needs --name (who or what the key is for)', 2);
          const { key, apiKey } = await createApiKey(pool, { role: role as (typeof ROLES)[number], name, createdBy: cliUser() });
          if (values.json) console.log(JSON.stringify({ ...apiKey, key }, null, 2));
          else {
            console.log(`${apiKey.keyId}  ${apiKey.role}  ${apiKey.name}`);
            console.log(`key (shown once, keep it secret): ${key}`);
            console.log(`use it as: Authorization: Bearer <key>`);
          }
        } else if (action === 'list') {
          const keys = await listApiKeys(pool);
          if (values.json) console.log(JSON.stringify(keys, null, 2));
          else {
            for (const k of keys) {
              const state = k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : `last used ${k.lastUsedAt?.toISOString() ?? 'never'}`;
              console.log(`${k.keyId}  ${k.role.padEnd(8)}  ${k.name}  created ${k.createdAt.toISOString()} by ${k.createdBy}  ${state}`);
            }
            console.log(`${keys.length} key(s), ${keys.filter((k) => !k.revokedAt).length} active`);
          }
        } else if (action === 'revoke' && arg) {
          if (!(await revokeApiKey(pool, arg))) fail(`no active key ${arg}`, 3);
          console.log(`${arg} revoked`);
        } else fail('usage: mssgw apikey create --role R --name N | list [--json] | revoke ID', 2);
      });
      return;
    }
    case 'replies': {
      await withStore(config(), async (pool) => {
        if (rest.length) fail('usage: mssgw replies [--mailbox M] [--unmatched] [--limit N] [--json]', 2);
        const limit = Number(values.limit ?? 50);
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) fail(`--limit: expected 1 to 500, got "${values.limit}"`, 2);
        const replies = await new StatusStore(pool).listReplies({
          limit, ...(values.mailbox !== undefined ? { mailbox: values.mailbox } : {}), ...(values.unmatched ? { unmatched: true } : {}),
        });
        // A reply's sender and subject are the patient's or a practitioner's words: read like the API's, so audited.
        await auditCli(pool, 'replies', replies.flatMap((r) => [`reply:${r.id}`, ...(r.deliveryId ? [r.deliveryId] : []), ...(r.resultId ? [r.resultId] : [])]));
        if (values.json) console.log(JSON.stringify(replies, null, 2));
        else {
          for (const r of replies) {
            const copy = r.auto ? 'auto-reply, not forwarded' : r.forwardedAt ? `forwarded ${new Date(r.forwardedAt).toISOString()}` : r.forwardTo ? 'copy pending' : 'no copy';
            console.log(`${r.id.padStart(6)}  ${new Date(r.receivedAt).toISOString()}  ${r.mailbox}  ${r.matchedBy}  ${r.resultId ?? '-'}  ${r.deliveryId ?? '-'}  ${copy}`);
          }
          console.log(`${replies.length} repl${replies.length === 1 ? 'y' : 'ies'}, newest first`);
        }
      });
      return;
    }
    case 'audit': {
      const cfg = config();
      await withStore(cfg, async (pool) => {
        if (rest[0] === 'prune') {
          const days = apiAccessOf(cfg).auditRetentionDays;
          const olderThan = new Date(Date.now() - days * 86_400_000);
          console.log(`removed ${await pruneAudit(pool, olderThan)} audit events older than ${olderThan.toISOString()} (${days} days)`);
          return;
        }
        if (rest.length) fail('usage: mssgw audit [--actor A] [--id ID] [--outcome allowed|refused] [--since T] [--limit N] [--json] | audit prune', 2);
        const limit = Number(values.limit ?? 50);
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) fail(`--limit: expected 1 to 10000, got "${values.limit}"`, 2);
        if (values.outcome !== undefined && values.outcome !== 'allowed' && values.outcome !== 'refused') fail('--outcome: expected allowed or refused', 2);
        const since = values.since === undefined ? undefined : new Date(values.since);
        if (since && Number.isNaN(since.getTime())) fail(`--since: expected an ISO 8601 date or date-time, got "${values.since}"`, 2);
        const { events } = await queryAudit(pool, {
          limit,
          ...(values.actor !== undefined ? { actor: values.actor } : {}),
          ...(values.id !== undefined ? { id: values.id } : {}),
          ...(values.outcome !== undefined ? { outcome: values.outcome as 'allowed' | 'refused' } : {}),
          ...(since ? { from: since } : {}),
        });
        if (values.json) console.log(JSON.stringify(events, null, 2));
        else {
          for (const e of events) console.log(describeAuditEvent(e));
          console.log(`${events.length} event(s), newest first`);
        }
      });
      return;
    }
    case 'opposition': {
      await withStore(config(), async (pool) => {
        const store = new OppositionStore(pool);
        const [action, arg] = rest;
        const subject = arg === undefined ? undefined : parseOppositionSubject(arg);
        if (arg !== undefined && !subject) fail('ID: expected INS:<ins> or IPP:<ipp>@<facility>', 2);
        const directions = values.direction === undefined ? undefined : oppositionDirections(values.direction);
        if (values.direction !== undefined && !directions) fail(`--direction: expected patient, professionals or both, got "${values.direction}"`, 2);
        if (action === 'add' && subject) {
          if (subject.idType === 'any') fail('ID: say which id it is: INS:<ins>, or IPP:<ipp>@<facility> (an IPP alone means nothing across facilities)', 2);
          if (!directions) fail('opposition add needs --direction patient|professionals|both', 2);
          const opposedAt = values.date === undefined ? Date.now() : Date.parse(values.date);
          if (Number.isNaN(opposedAt)) fail(`--date: expected an ISO 8601 date, got "${values.date}"`, 2);
          const added = await store.add(directions!.map((direction) => ({ ...subject, direction, opposedAt })), 'cli');
          await auditCli(pool, 'opposition add', added.map((o) => `opposition:${o.id}`));
          for (const o of added) console.log(describeOpposition(o));
          console.log(`${added.length} opposition(s) recorded${added.length < directions!.length ? ` (${directions!.length - added.length} already were)` : ''}`);
        } else if (action === 'remove' && subject) {
          const removed = (await Promise.all((directions ?? [undefined]).map((d) => store.remove(subject, d)))).flat();
          await auditCli(pool, 'opposition remove', removed.map((o) => `opposition:${o.id}`));
          for (const o of removed) console.log(`removed  ${describeOpposition(o)}`);
          console.log(`${removed.length} opposition(s) removed`);
          if (!removed.length) process.exitCode = 3;
        } else if (action === 'list') {
          const list = await store.list(subject ? { patientId: subject.patientId, limit: 100_000 } : { limit: 100_000 });
          if (values.json) console.log(JSON.stringify(list, null, 2));
          else {
            for (const o of list) console.log(describeOpposition(o));
            console.log(`${list.length} opposition(s)`);
          }
        } else fail('usage: mssgw opposition add ID --direction D [--date T] | remove ID [--direction D] | list [ID] [--json]', 2);
      });
      return;
    }
    case 'patient': {
      const [action, ins] = rest;
      if (action !== 'close' || !ins || !values.mailbox) fail('usage: mssgw patient close INS --mailbox SENDER', 2);
      const cfg = config();
      const ctx = createContext(cfg, 'mssgw-cli');
      try {
        await prepareSchema(ctx.pg, cfg.postgres);
        const closed = await closePatientConversation(ctx, { ins: ins!, mailbox: values.mailbox!, by: cliUser() });
        await auditCli(ctx.pg, 'patient close', [closed.closingId, closed.deliveryId]);
        console.log(values.json ? JSON.stringify(closed, null, 2) : `${closed.deliveryId}  ${closed.state}  ${FIN_SUBJECT} message ${closed.messageId}: ${closed.detail}`);
        if (closed.state === 'failed') process.exitCode = 1;
      } catch (err) {
        if (err instanceof CloseRefused) fail(err.message, err.code === 'patient-opposition' ? 4 : 2);
        throw err;
      } finally {
        await closeContext(ctx);
      }
      return;
    }
    default:
      fail(`unknown command "${command}"; see mssgw --help`, 2);
  }
}

/** Who runs the CLI, as a key records its creator. */
const cliUser = () => `cli:${userInfo().username}`;

/** The message store, its schema brought up to date as a start would (postgres.migrateOnStart), for one command. */
async function withStore(cfg: GatewayConfig, fn: (pool: ReturnType<typeof connectPostgres>) => Promise<void>): Promise<void> {
  const pool = connectPostgres(cfg.postgres, 'mssgw-cli');
  try {
    await prepareSchema(pool, cfg.postgres);
    await fn(pool);
  } finally {
    await pool.end();
  }
}

/**
 * An action taken from the command line, in the audit trail beside the API's: ids only, the user as the actor (no API
 * credential: actor kind `none`), method `CLI`. An action the gateway refused (`refusedFor`, its reason code) has
 * status 409, as the API records it.
 */
async function auditCli(pool: ReturnType<typeof connectPostgres>, command: string, ids: string[], refusedFor?: string): Promise<void> {
  await recordAudit(pool, {
    actorKind: 'none', actor: cliUser(), role: null, method: 'CLI', route: `mssgw ${command}`, status: refusedFor ? 409 : 200,
    outcome: 'allowed', reason: refusedFor ? `refused: ${refusedFor}` : null,
    ids, filters: [], client: 'local', requestId: `cli-${process.pid}-${Date.now()}`,
  });
}

/** One opposition on one line: its id, whom it names, its direction, its date, who recorded it. */
function describeOpposition(o: Opposition): string {
  const who = o.idType === 'ipp' ? `IPP:${o.patientId}@${o.facility}` : o.idType === 'ins' ? `INS:${o.patientId}` : `${o.patientId} (old file format: INS or IPP)`;
  return `${o.id.padStart(6)}  ${who}  ${o.direction === 'patient' ? 'no mail to the patient' : 'no mail to professionals'}  since ${new Date(o.opposedAt).toISOString().slice(0, 10)}  recorded ${new Date(o.recordedAt).toISOString()} (${o.origin})`;
}

/** One audit event on one line: when, allowed or refused, who, the request, its status, ids, filters, address, reason. */
export function describeAuditEvent(e: AuditEvent): string {
  const who = e.actor ? `${e.actorKind}:${e.actor}${e.role ? ` (${e.role})` : ''}` : 'no credential';
  const ids = e.ids.length ? `  ids ${e.ids.slice(0, 5).join(',')}${e.ids.length > 5 ? ` +${e.ids.length - 5}` : ''}` : '';
  const filters = e.filters.length ? `  filters ${e.filters.join(',')}` : '';
  return `${e.at.toISOString()}  ${e.outcome.padEnd(7)}  ${who}  ${e.method} ${e.route} ${e.status}${ids}${filters}  from ${e.client}${e.reason ? `  "${e.reason}"` : ''}`;
}

function describeMailbox(m: DirectoryMailbox): string {
  const who = [m.family, m.given].filter(Boolean).join(' ') || m.structureName || '';
  const ids = [m.practitionerNationalId && `idNatPs ${m.practitionerNationalId}`, m.structureId && `structure ${m.structureId}`].filter(Boolean).join(', ');
  return `${m.type}  ${m.address}  ${who}${m.service ? ` (${m.service})` : ''}${ids ? `  [${ids}]` : ''}`;
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) fail(err.message, 78);
  fail(err instanceof Error ? err.message : String(err));
});
