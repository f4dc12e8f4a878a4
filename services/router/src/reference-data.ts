import { fork } from 'node:child_process';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { readSecret } from '@mssgw/config';
import { DirectoryChain, DirectoryStore, FhirDirectory, type DirectoryInfo, type PractitionerDirectory } from '@mssgw/directory';
import { QUEUES } from '@mssgw/queue';
import { OppositionFile, patientIdsOf, policyForSource, type ParsedOppositionFile, type RoutingPolicy } from '@mssgw/routing';
import { bullConnection, redisEndpoint, type ServiceContext } from '@mssgw/runtime';
import { OppositionStore } from '@mssgw/store';
import { metrics, referenceData } from '@mssgw/telemetry';
import { WhitelistKeeper } from '@mssgw/whitelist';

/** What routing decisions rest on: the liste blanche, the directory and the patients' oppositions, kept current. */
export interface ReferenceData {
  policyFor(source: string): RoutingPolicy;
  directory: DirectoryStore;
  whitelist: WhitelistKeeper;
  /** Runs a directory import now, in a child process; resolves with its report. */
  refreshDirectory(): Promise<DirectoryInfo>;
  stop(): Promise<void>;
}

const INFO_POLL_MS = 30_000;

export async function startReferenceData(ctx: ServiceContext): Promise<ReferenceData> {
  const { config, log } = ctx;
  const whitelist = new WhitelistKeeper(ctx.redis, config.redis.prefix, {
    ...(config.mssante.whitelist.location
      ? {
          source: {
            location: config.mssante.whitelist.location,
            ...(config.mssante.whitelist.sha256 ? { sha256: config.mssante.whitelist.sha256 } : {}),
            ...(config.mssante.whitelist.checksumUrl ? { checksumUrl: config.mssante.whitelist.checksumUrl } : {}),
            ...(config.mssante.whitelist.caFile ? { caFile: config.mssante.whitelist.caFile } : {}),
          },
        }
      : {}),
    testDomains: config.mssante.testDomains,
    refreshIntervalMs: config.mssante.whitelist.refreshIntervalMs,
    onLoaded: (list) => {
      referenceData.whitelist = list.generatedAt ? Date.parse(list.generatedAt) || list.fetchedAt : list.fetchedAt;
      metrics.referenceDataEntries.set({ data: 'whitelist' }, Object.keys(list.domains).length);
      log.info({ domains: Object.keys(list.domains).length, sha256: list.sha256, generatedAt: list.generatedAt }, 'liste blanche loaded');
    },
    onRefreshError: (err) => {
      metrics.referenceDataRefreshFailures.inc({ data: 'whitelist' });
      log.warn({ err: err.message }, 'liste blanche refresh failed; the last good copy stays in use');
    },
  });
  await whitelist.start();
  if (config.mssante.testDomains.length) log.info({ testDomains: config.mssante.testDomains }, 'test domains accepted outside the liste blanche');

  const directory = new DirectoryStore(ctx.redis, config.redis.prefix);
  const sources: PractitionerDirectory[] = [directory];
  const fhir = config.directory.fhir;
  if (fhir) {
    sources.push(new FhirDirectory({ ...fhir, apiKey: readSecret(fhir.apiKey) }));
  }
  const chain = new DirectoryChain(sources);
  const noteDirectory = (info: DirectoryInfo | undefined) => {
    if (!info) return;
    referenceData.directory = info.importedAt;
    metrics.referenceDataEntries.set({ data: 'directory' }, info.mailboxes);
  };
  noteDirectory(await directory.info());
  const infoTimer = setInterval(() => void directory.info().then(noteDirectory, () => undefined), INFO_POLL_MS);
  infoTimer.unref();

  // The oppositions live in the message store (mssgw opposition add|remove|list); the file, when configured, is one
  // source of them, imported again each time it changes (its lines replace those of its previous version).
  const oppositions = new OppositionStore(ctx.pg);
  const countOppositions = () =>
    oppositions.count().then((n) => {
      referenceData['patient-opposition'] = Date.now();
      metrics.referenceDataEntries.set({ data: 'patient-opposition' }, n);
    });
  let oppositionFile: OppositionFile | undefined;
  if (config.routing.patientOpposition) {
    const file = new OppositionFile(config.routing.patientOpposition.file);
    const imported = async (parsed: ParsedOppositionFile) => {
      const r = await oppositions.syncFile(parsed.entries);
      await countOppositions();
      // Counts and line numbers only: a line holds a patient's id.
      log.info({ added: r.added, removed: r.removed, entries: r.total, oldFormatLines: parsed.legacy, rejectedLines: parsed.rejected.slice(0, 20) }, 'patient opposition file imported');
    };
    // Without the file's oppositions, a patient who refused could be written to: the router does not start.
    await imported((await file.read())!);
    file.watch(config.routing.patientOpposition.refreshIntervalMs, imported, (err) => {
      metrics.referenceDataRefreshFailures.inc({ data: 'patient-opposition' });
      log.warn({ err: err.message }, 'patient opposition file unreadable or not imported; the oppositions recorded stay in use');
    });
    oppositionFile = file;
  } else {
    await countOppositions();
  }

  const runImport = (location: string, minRatio: number, caFile: string | undefined) =>
    new Promise<DirectoryInfo>((resolve, reject) => {
      const child = fork(path.join(import.meta.dirname, 'directory-import.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.once('message', (m: { ok: boolean; report?: DirectoryInfo; error?: string }) =>
        m.ok && m.report ? resolve(m.report) : reject(new Error(m.error ?? 'directory import failed')),
      );
      child.once('exit', (code) => reject(new Error(`directory import process exited with ${code}`)));
      child.send({ redis: redisEndpoint(config), prefix: config.redis.prefix, location, minRatio, caFile });
    });

  const extraction = config.directory.extraction;
  let refreshQueue: Queue | undefined;
  let refreshWorker: Worker | undefined;
  const refreshDirectory = async () => {
    if (!extraction) throw new Error('directory.extraction is not configured');
    const started = Date.now();
    try {
      const report = await runImport(extraction.location, extraction.minRatio, extraction.caFile);
      noteDirectory(report);
      log.info({ mailboxes: report.mailboxes, rejected: report.rejected, rejectedByReason: report.rejectedByReason, ms: Date.now() - started }, 'directory imported');
      return report;
    } catch (err) {
      metrics.referenceDataRefreshFailures.inc({ data: 'directory' });
      log.warn({ err: (err as Error).message }, 'directory refresh failed; the current directory stays in use');
      throw err;
    }
  };
  if (extraction) {
    // BullMQ's job scheduler runs the refresh once per interval across all routers, on whichever takes it.
    refreshQueue = new Queue(QUEUES.reference, bullConnection(config));
    await refreshQueue.upsertJobScheduler('directory-refresh', { every: extraction.refreshIntervalMs }, { name: 'directory-refresh' });
    if (!(await directory.info())) await refreshQueue.add('directory-refresh', {}, { jobId: 'directory-initial', removeOnComplete: true, removeOnFail: true });
    refreshWorker = new Worker(QUEUES.reference, () => refreshDirectory(), { ...bullConnection(config), concurrency: 1, lockDuration: 5 * 60_000 });
    refreshWorker.on('error', (err) => log.warn({ err: err.message }, 'reference-data worker error'));
  }

  const policyFor = (source: string): RoutingPolicy =>
    policyForSource(config, source, {
      allowsDomain: (domain, forPatient) => whitelist.allows(domain, forPatient),
      directory: chain,
      oppositions: (result) => oppositions.forPatient(patientIdsOf(result)),
    });

  return {
    policyFor,
    directory,
    whitelist,
    refreshDirectory,
    async stop() {
      clearInterval(infoTimer);
      whitelist.stop();
      oppositionFile?.stop();
      await refreshWorker?.close();
      await refreshQueue?.close();
    },
  };
}
