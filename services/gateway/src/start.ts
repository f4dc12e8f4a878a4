import type { GatewayConfig } from '@mssgw/config';
import { startApi, type ApiService } from '@mssgw/api';
import { startDispatcher } from '@mssgw/dispatcher';
import { startFeedback, type FeedbackService } from '@mssgw/feedback';
import { startIntake, type IntakeService } from '@mssgw/intake';
import { startReceipts, type ReceiptsService } from '@mssgw/receipts-service';
import { startRouter } from '@mssgw/router';
import { closeContext, createContext, startHealthBeacon, type HealthBeaconHandle, type RunningService, type ServiceContext } from '@mssgw/runtime';
import { prepareSchema } from '@mssgw/store';

export const SERVICE_NAMES = ['intake', 'router', 'dispatcher', 'receipts', 'feedback', 'api'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface Gateway {
  ctx: ServiceContext;
  services: RunningService[];
  intake?: IntakeService;
  receipts?: ReceiptsService;
  feedback?: FeedbackService;
  api?: ApiService;
  stop(): Promise<void>;
}

/**
 * Starts the named services (all by default) in this process. The same code runs one process on a laptop and one
 * service per Kubernetes deployment: services only meet through Redis, Kafka and the operator.
 */
export async function startGateway(config: GatewayConfig, names: readonly ServiceName[] = SERVICE_NAMES): Promise<Gateway> {
  const ctx = createContext(config, names.length === 1 ? `mssgw-${names[0]}` : 'mssgw');
  const services: RunningService[] = [];
  let beacon: HealthBeaconHandle | undefined = undefined;
  const gateway: Gateway = {
    ctx,
    services,
    async stop() {
      await beacon?.stop();
      // Reverse order: stop taking input first, let the downstream stages finish what is in flight.
      for (const s of [...services].reverse()) {
        await s.stop().catch((err: Error) => ctx.log.error({ service: s.name, err: err.message }, 'stop failed'));
      }
      await closeContext(ctx);
    },
  };
  try {
    // The message store first: nothing is taken in that could not be recorded.
    const applied = await prepareSchema(ctx.pg, config.postgres);
    if (applied.length) ctx.log.info({ migrations: applied.map((m) => m.version) }, 'message store migrated');
    // Every process serves /healthz and /metrics (probes, Prometheus), whichever services it runs; only the api
    // service serves the API itself (behind its credentials, TLS when configured). Downstream first, so that nothing
    // is accepted before it can be carried through.
    services.push((gateway.api = await startApi(ctx, { routes: names.includes('api') })));
    if (names.includes('feedback')) services.push((gateway.feedback = await startFeedback(ctx)));
    if (names.includes('receipts')) services.push((gateway.receipts = await startReceipts(ctx)));
    if (names.includes('dispatcher')) services.push(await startDispatcher(ctx));
    if (names.includes('router')) services.push(await startRouter(ctx));
    if (names.includes('intake')) services.push((gateway.intake = await startIntake(ctx)));
  } catch (err) {
    await gateway.stop();
    throw err;
  }
  // One health beacon per service this process runs (the console's overview reads them all from Redis); the api
  // process serves /healthz and /metrics whatever it runs, but is the api service only when named.
  beacon = startHealthBeacon(ctx.redis, config.redis.prefix, ctx.log, names.map((name) => {
    const service = services.find((s) => s.name === name);
    return { name, health: service?.health && (() => service.health!()) };
  }));
  ctx.log.info({ services: services.map((s) => s.name), node: process.version, nodeFlags: process.execArgv }, 'gateway started');
  return gateway;
}
