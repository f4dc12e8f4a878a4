// mssgw: the gateway's command-line tool (bin/mssgw.ts runs it). It talks to a terminal, hence console.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '@mssgw/config';
import { Hl7Error, parseResult } from '@mssgw/hl7';
import { listDeadLetters, replayDeadLetters } from '@mssgw/dispatcher';
import { parseReceipt } from '@mssgw/receipts';
import { closeContext, createContext } from '@mssgw/runtime';
import { formatTable, runDemo } from './demo.ts';
import { SERVICE_NAMES, startGateway, type ServiceName } from './start.ts';

const HELP = `mssgw — MSSanté gateway for lab results and imaging reports

Usage:
  mssgw start [service...] [--config FILE]   run services in this process (default: all)
                                             services: ${SERVICE_NAMES.join(', ')}
                                             (every process serves /healthz and /metrics)
  mssgw demo [--keep-running] [--config FILE] send the shipped sample results through the sandbox
                                             operator and print each recipient's outcome
  mssgw parse FILE [--json]                  print the normalised result of an HL7 file, or the
                                             error its NACK would carry (exit status 2)
  mssgw receipt FILE.eml [--json]            print what a DSN / MDN / other mail says
  mssgw dlq list [--json]                    deliveries that exhausted their retries, with the reason
  mssgw dlq replay ID|--all                  put them back on their send queue
  mssgw --help                               this text

Configuration: --config FILE or MSSGW_CONFIG (YAML or JSON), then MSSGW_<SECTION>_<KEY>
environment overrides (e.g. MSSGW_REDIS_URL, MSSGW_HTTP_PORT). With neither, the embedded
demo defaults run against the local sandbox (deploy/local/infra.sh up).`;

const fail = (message: string, code = 1): never => {
  console.error(`mssgw: ${message}`);
  process.exit(code);
};

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      'keep-running': { type: 'boolean' },
      all: { type: 'boolean' },
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
      const gateway = await startGateway(config(), rest.length ? (rest as ServiceName[]) : SERVICE_NAMES);
      const stop = (signal: string) => {
        gateway.ctx.log.info({ signal }, 'stopping');
        gateway.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      return;
    }
    case 'demo': {
      const { rows, gateway } = await runDemo(config(), { keepRunning: values['keep-running'] ?? false });
      console.log(formatTable(rows));
      const confirmed = rows.filter((r) => r.status === 'delivered').length;
      console.log(`\n${new Set(rows.map((r) => r.controlId)).size} results, ${rows.length} recipients, ${confirmed} deliveries confirmed by DSN`);
      if (values['keep-running']) {
        console.log(`gateway still running (API on http://${gateway.ctx.config.http.host}:${gateway.ctx.config.http.port}); Ctrl-C to stop`);
        process.once('SIGINT', () => void gateway.stop().then(() => process.exit(0)));
        return;
      }
      process.exit(confirmed >= 3 ? 0 : 1);
      break;
    }
    case 'parse': {
      const file = rest[0] ?? fail('parse needs a FILE', 2);
      try {
        const r = parseResult(readFileSync(file));
        const out = {
          messageType: `${r.messageType}^${r.event}`, version: r.version, controlId: r.controlId, profile: r.profile, action: r.action,
          patient: { ins: r.patient.ins ?? null, ipp: r.patient.ipp ?? null, identityReliability: r.patient.identityReliability ?? null },
          participants: r.participants.map((p) => ({ role: p.role, kind: p.kind, id: p.id ?? null, idType: p.idType ?? null, address: p.address ?? null })),
          documents: r.documents.map((d) => ({ kind: d.kind, code: d.code, bytes: d.bytes, sha256: d.sha256 })),
          flags: r.flags,
        };
        if (values.json) console.log(JSON.stringify(out, null, 2));
        else {
          console.log(`${out.messageType} v${out.version} control id ${out.controlId} (${out.profile}, ${out.action})`);
          console.log(`patient INS ${r.patient.ins ? `${r.patient.ins.value} (${r.patient.ins.oid}, ${r.patient.ins.qualified ? 'qualified' : 'not qualified'})` : 'none'}`);
          for (const p of out.participants) console.log(`  ${p.role.padEnd(11)} ${p.kind.padEnd(12)} ${p.idType ?? ''} ${p.id ?? ''} ${p.address ?? ''}`);
          for (const d of out.documents) console.log(`  document ${d.kind} ${d.code} ${d.bytes} bytes sha256 ${d.sha256}`);
          console.log(`  flags ${Object.entries(out.flags).map(([k, v]) => `${k}=${v ? 'Y' : 'N'}`).join(' ') || 'none'}`);
        }
      } catch (err) {
        if (err instanceof Hl7Error) {
          const where = err.location ? ` at ${err.location.segment}${err.location.sequence ? `[${err.location.sequence}]` : ''}${err.location.field ? `-${err.location.field}` : ''}` : '';
          if (values.json) console.log(JSON.stringify({ error: { ack: err.ackCode, code: err.code, condition: err.condition, location: err.location ?? null, text: err.message } }, null, 2));
          else console.error(`mssgw: ${err.ackCode} ${err.code}${where}: ${err.message}`);
          process.exit(2);
        }
        throw err;
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
          const ids = await replayDeadLetters(ctx, values.all ? { all: true } : { deliveryId: rest[1]! });
          if (!values.all && ids.length === 0) fail(`no dead-lettered delivery ${rest[1]}`, 2);
          console.log(`${ids.length} deliveries replayed${ids.length ? `: ${ids.join(', ')}` : ''}`);
        } else fail('usage: mssgw dlq list | mssgw dlq replay ID|--all', 2);
      } finally {
        await closeContext(ctx);
      }
      return;
    }
    default:
      fail(`unknown command "${command}"; see mssgw --help`, 2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) fail(err.message, 78);
  fail(err instanceof Error ? err.message : String(err));
});
