// The console's health (issue #24), on the sandbox: every service instance writes a health beacon to Redis, and the
// api's overview shows them all. The Kafka intake's group lag (mssgw_kafka_consumer_lag) while another member of the
// group holds the partition and consumes nothing, then 0 once the intake has it and catches up; the receipts' IMAP
// session on Dovecot (connected, polled lately), then refused with a wrong password; an MLLP connection and its peer;
// a beacon that expires shows as gone, an instance stopped on purpose leaves.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AssignerProtocol, Kafka, logLevel, type Consumer, type PartitionAssigner } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '@mssgw/config';
import { MllpClient } from '@mssgw/hl7';
import { publishBeacon, readClusterHealth, shapeBeacon, type ClusterHealth } from '@mssgw/runtime';
import { startGateway, type Gateway } from '../../services/gateway/src/start.ts';
import { apiClient, type ApiClient } from '../support/api.ts';
import { DOCTORS, makeCisisResult, PATIENTS } from '../support/samples.ts';
import { tag, testConfig, waitFor } from '../support/env.ts';

type Health = ClusterHealth & { redis: { ok: boolean }; postgres: { ok: boolean } };
type Instance = Health['instances'][number];

/**
 * A member of the intake's group that, as its leader, gives itself every partition and consumes nothing: the intake
 * runs, in the group, and is not consuming. (Its protocol has the name of kafkajs's default, which the intake uses.)
 */
const takeEverything: PartitionAssigner = ({ cluster }) => ({
  name: 'RoundRobinAssigner',
  version: 0,
  assign({ members, topics }) {
    const mine = members.find((m) => AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData.toString() === 'hold');
    const all = Object.fromEntries(topics.map((topic) => [topic, cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId)]));
    return Promise.resolve(members.map((m) => ({ memberId: m.memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: m === mine ? all : {}, userData: Buffer.alloc(0) }) })));
  },
  protocol({ topics }) {
    return { name: 'RoundRobinAssigner', metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.from('hold') }) };
  },
});

describe('the console\'s health of every service instance, from their beacons in Redis', () => {
  const t = tag();
  const kafka = new Kafka({ clientId: 'mssgw-test-health', brokers: ['127.0.0.1:19092'], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer();
  const dir = mkdtempSync(path.join(tmpdir(), 'mssgw-health-'));
  let config: GatewayConfig;
  let gateway: Gateway | undefined;
  let second: Gateway | undefined;
  let holder: Consumer | undefined;
  let viewer: ApiClient;
  let topic = '';
  const overviewMs: number[] = [];
  const records = 12;

  const base = (g: Gateway) => `http://127.0.0.1:${g.api!.port}`;
  const health = async (g: Gateway): Promise<Health> => {
    const t0 = performance.now();
    const r = await viewer.json<{ health: Health }>(`${base(g)}/api/v1/console/overview`);
    overviewMs.push(performance.now() - t0);
    expect(r.status).toBe(200);
    return r.body.health;
  };
  const instance = (h: Health, service: string): Instance | undefined => h.instances.find((i) => i.service === service && i.state === 'live');
  /** A metric's value in a gateway's /metrics, for the labels given. */
  const metric = async (g: Gateway, name: string, labels: Record<string, string>): Promise<number | undefined> => {
    const text = await (await fetch(`${base(g)}/metrics`)).text();
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  beforeAll(async () => {
    config = testConfig('health', (c) => {
      c.kafka.enabled = true;
    });
    topic = config.kafka.intakeTopics[0]!;
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 1 }, { topic: config.kafka.deadLetterTopic, numPartitions: 1 }, { topic: config.kafka.statusTopic, numPartitions: 1 }],
    });
    await producer.connect();
    // The holder joins first (the group's leader), and keeps the partition while the intake joins.
    holder = kafka.consumer({ groupId: config.kafka.groupId, partitionAssigners: [takeEverything], sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    const joined = new Promise<void>((resolve) => holder!.on(holder!.events.GROUP_JOIN, (e) => e.payload.memberAssignment[topic]?.length && resolve()));
    await holder.connect();
    await holder.subscribe({ topic, fromBeginning: true });
    await holder.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: () => Promise.resolve(holder!.pause([{ topic }])) });
    await joined;
  }, 60_000);

  afterAll(async () => {
    await holder?.disconnect().catch(() => undefined);
    await gateway?.stop();
    await second?.stop();
    await producer.disconnect();
    await admin.disconnect();
    rmSync(dir, { recursive: true, force: true });
    if (overviewMs.length) console.log(`overview: ${overviewMs.length} calls, median ${overviewMs.sort((a, b) => a - b)[Math.floor(overviewMs.length / 2)]!.toFixed(1)} ms, max ${Math.max(...overviewMs).toFixed(1)} ms`);
  });

  it('shows the Kafka lag while the intake does not consume, and 0 once it has caught up; the IMAP session; an MLLP peer', async () => {
    gateway = await startGateway(config, ['intake', 'dispatcher', 'receipts', 'api']);
    viewer = await apiClient(gateway.ctx.pg, 'viewer', 'health viewer');
    const doctors = [{ ...DOCTORS[0]!, address: `health-${t}@cabinet-demo.mssante.test` }];
    await producer.send({ topic, messages: Array.from({ length: records }, (_, i) => ({ key: String(i), value: makeCisisResult({ controlId: `H-${t}-${i}`, patient: PATIENTS[i % 3]!, doctors }) })) });
    const mllp = new MllpClient({ host: '127.0.0.1', port: gateway.intake!.listeners[0]!.port });
    await mllp.connect();
    try {
      // The metric, read every 10 s by the intake from the broker.
      const lag = await waitFor('the lag in /metrics', async () => (await metric(gateway!, 'mssgw_kafka_consumer_lag', { topic, partition: '0' })) === records, 30_000, 500);
      expect(lag).toBe(true);
      // The overview: the intake's beacon, its partition lagging and not its own, and the warning.
      const held = await waitFor('the lag in the overview', async () => {
        const h = await health(gateway!);
        const i = instance(h, 'intake');
        return i?.kafka?.partitions[0]?.lag === records && i.mllp?.[0]?.connections === 1 ? h : undefined;
      }, 30_000, 1000);
      const intake = instance(held, 'intake')!;
      console.log(`intake beacon while the partition is held: ${JSON.stringify(intake)}`);
      expect(intake.kafka).toMatchObject({ groupId: config.kafka.groupId, consuming: false, partitions: [{ topic, partition: 0, lag: records, assigned: false, paused: false }] });
      expect(intake.mllp).toEqual([{ source: 'lab', port: gateway.intake!.listeners[0]!.port, connections: 1, peers: 1 }]);
      expect(held.warnings).toContainEqual({ code: 'kafka-lag', service: 'intake', subject: `${topic}/0: ${records}` });
      expect(held.redis.ok && held.postgres.ok).toBe(true);
      expect(held.services.map((s) => s.service).sort()).toEqual(['api', 'dispatcher', 'intake', 'receipts']);

      // The receipts' session on Dovecot: connected, polled within the last few seconds (the sweep runs every second).
      const receipts = instance(held, 'receipts')!;
      const mailbox = config.mailboxes[0]!.address;
      expect(receipts.imap).toEqual([{ mailbox, connected: true, lastPollAt: expect.any(Number) as number }]);
      expect(Date.now() - receipts.imap![0]!.lastPollAt!).toBeLessThan(20_000);
      expect(await metric(gateway, 'mssgw_imap_connected', { mailbox })).toBe(1);
      expect(Date.now() / 1000 - (await metric(gateway, 'mssgw_imap_last_poll_timestamp_seconds', { mailbox }))!).toBeLessThan(10);
      // The dispatcher's mailbox: not paused, nothing sent yet, DSN advertised by the sandbox operator.
      expect(instance(held, 'dispatcher')!.smtp).toEqual([{ mailbox, paused: null, lastAcceptedAt: null, dsn: true }]);
      expect(held.warnings.filter((w) => w.code.startsWith('imap') || w.code.startsWith('smtp') || w.code === 'dsn-unsupported')).toEqual([]);
    } finally {
      await mllp.close();
    }

    // The holder leaves: the intake gets the partition, consumes from the start, commits; the lag falls to 0.
    await holder!.disconnect();
    holder = undefined;
    await waitFor('every result queued', async () => {
      const found = await Promise.all(Array.from({ length: records }, (_, i) => gateway!.ctx.status.resultsByControlId(`H-${t}-${i}`)));
      return found.every((f) => f.length === 1);
    }, 60_000, 500);
    await waitFor('a lag of 0 in /metrics', async () => (await metric(gateway!, 'mssgw_kafka_consumer_lag', { topic, partition: '0' })) === 0, 30_000, 500);
    const caughtUp = await waitFor('a lag of 0 in the overview', async () => {
      const h = await health(gateway!);
      const i = instance(h, 'intake');
      return i?.kafka?.partitions[0]?.lag === 0 && i.kafka.consuming && i.mllp?.[0]?.connections === 0 ? h : undefined;
    }, 30_000, 1000);
    expect(instance(caughtUp, 'intake')!.kafka!.partitions).toEqual([{ topic, partition: 0, lag: 0, assigned: true, paused: false }]);
    expect(caughtUp.warnings.filter((w) => w.code.startsWith('kafka'))).toEqual([]);
  }, 120_000);

  it('shows a mailbox whose IMAP login is refused as not connected, and an instance stopped on purpose no more', async () => {
    await gateway!.stop();
    gateway = undefined;
    const wrong = path.join(dir, 'wrong-imap-password');
    writeFileSync(wrong, 'not-the-password\n');
    const mailbox = config.mailboxes[0]!.address;
    second = await startGateway({ ...config, kafka: { ...config.kafka, enabled: false }, mailboxes: [{ ...config.mailboxes[0]!, imapPassword: { file: wrong } }] }, ['receipts', 'api']);
    viewer = await apiClient(second.ctx.pg, 'viewer', 'health viewer 2');
    // Its second beacon at least (5 s after start): by then the login has been refused (and tried again).
    const h = await waitFor('the receipts instance in the overview, 5 s after its start', async () => {
      const x = await health(second!);
      const r = instance(x, 'receipts');
      return r && r.at - r.startedAt >= 5_000 ? x : undefined;
    }, 30_000, 1000);
    expect(instance(h, 'receipts')!.imap).toEqual([{ mailbox, connected: false, lastPollAt: null }]);
    expect(h.warnings).toContainEqual({ code: 'imap-disconnected', service: 'receipts', instance: instance(h, 'receipts')!.instance, subject: mailbox });
    expect(await metric(second, 'mssgw_imap_connected', { mailbox })).toBe(0);
    // The first gateway's intake and dispatcher stopped cleanly: they removed their beacons, and are not shown.
    expect(h.instances.map((i) => i.service).sort()).toEqual(['api', 'receipts']);
  }, 60_000);

  it('shows an instance whose beacon expired as gone, and its service with no live instance', async () => {
    const now = Date.now();
    await publishBeacon(second!.ctx.redis, config.redis.prefix, shapeBeacon({ service: 'router', instance: `crashed-${t}`, version: 'test', startedAt: now - 1000, now, ttlMs: 6_000 }));
    const live = await waitFor('the beacon in the overview', async () => {
      const x = await health(second!);
      return instance(x, 'router') ? x : undefined;
    }, 10_000, 500);
    expect(live.services).toContainEqual({ service: 'router', live: 1, gone: 0 });
    const gone = await waitFor('the beacon expired', async () => {
      const x = await health(second!);
      return x.instances.some((i) => i.service === 'router' && i.state === 'gone') ? x : undefined;
    }, 20_000, 500);
    expect(gone.instances.find((i) => i.service === 'router')).toMatchObject({ instance: `crashed-${t}`, state: 'gone', lastSeenAt: now });
    expect(gone.services).toContainEqual({ service: 'router', live: 0, gone: 1 });
    expect(gone.warnings).toContainEqual({ code: 'service-gone', service: 'router' });
    // What reading every beacon costs the overview: one HGETALL and one MGET.
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await readClusterHealth(second!.ctx.redis, config.redis.prefix);
      times.push(performance.now() - t0);
    }
    console.log(`readClusterHealth (${gone.instances.length} instances): median ${times.sort((a, b) => a - b)[10]!.toFixed(2)} ms, max ${times[19]!.toFixed(2)} ms`);
  }, 30_000);
});
