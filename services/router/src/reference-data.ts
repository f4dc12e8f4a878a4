import { fork } from 'node:child_process';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { readSecret } from '@mssgw/config';
import { DirectoryChain, DirectoryStore, FhirDirectory, type DirectoryInfo, type PractitionerDirectory } from '@mssgw/directory';
import { QUEUES } from '@mssgw/queue';
import { OppositionList, policyForSource, type RoutingPolicy } from '@mssgw/routing';
import { bullConnection, redisEndpoint, type ServiceContext } from '@mssgw/runtime';
import { metrics, referenceData } from '@mssgw/telemetry';
import { WhitelistKeeper } from '@mssgw/whitelist';

/** What routing decisions rest on: the liste blanche, the directory and the opposition list, kept current. */
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

  let opposition: OppositionList | undefined;
  if (config.routing.patientOpposition) {
    const list = new OppositionList(config.routing.patientOpposition.file);
    const loaded = () => {
      referenceData['patient-opposition'] = Date.now();
      metrics.referenceDataEntries.set({ data: 'patient-opposition' }, list.size);
    };
    // Without the list, a patient who refused could be written to: the router does not start.
    await list.load();
    loaded();
    list.watch(config.routing.patientOpposition.refreshIntervalMs, (err) => {
      metrics.referenceDataRefreshFailures.inc({ data: 'patient-opposition' });
      log.warn({ err: err.message }, 'patient opposition list unreadable; the last list stays in use');
    });
    opposition = list;
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
      ...(opposition ? { opposes: (p: Parameters<OppositionList['opposes']>[0]) => opposition.opposes(p) } : {}),
    });

  return {
    policyFor,
    directory,
    whitelist,
    refreshDirectory,
    async stop() {
      clearInterval(infoTimer);
      whitelist.stop();
      opposition?.stop();
      await refreshWorker?.close();
      await refreshQueue?.close();
    },
  };
}
