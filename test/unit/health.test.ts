// Health beacons (issue #24): the pure parts: a consumer group's lag from the broker's offsets, a beacon's shape and
// bounds, and the cluster's health from the beacons the api reads (live, gone, forgotten, warnings).
import { describe, expect, it } from 'vitest';
import {
  BEACON_CAPS, consumerLag, KAFKA_LAG_WARNING, shapeBeacon, summarizeBeacons, type HealthBeacon, type ServiceHealth,
} from '@mssgw/runtime';
import { redisKeys } from '@mssgw/queue';

const NOW = 1_800_000_000_000;
const beacon = (service: string, instance: string, health: ServiceHealth = {}, at = NOW): HealthBeacon =>
  shapeBeacon({ service, instance, version: '0.1.0', startedAt: at - 60_000, now: at, ttlMs: 15_000, health });

describe('consumer lag', () => {
  it('is the high-water mark minus the committed offset, per partition', () => {
    const lag = consumerLag(
      [{ topic: 'lab', partitions: [{ partition: 1, high: '120', low: '0' }, { partition: 0, high: '100', low: '0' }] }],
      [{ topic: 'lab', partitions: [{ partition: 0, offset: '40' }, { partition: 1, offset: '120' }] }],
    );
    expect(lag).toEqual([{ topic: 'lab', partition: 0, lag: 60 }, { topic: 'lab', partition: 1, lag: 0 }]);
  });

  it('counts a partition never committed from its low-water mark (the intake starts from the beginning)', () => {
    expect(consumerLag([{ topic: 't', partitions: [{ partition: 0, high: '50', low: '20' }] }], [{ topic: 't', partitions: [{ partition: 0, offset: '-1' }] }]))
      .toEqual([{ topic: 't', partition: 0, lag: 30 }]);
    expect(consumerLag([{ topic: 't', partitions: [{ partition: 0, high: '5', low: '0' }] }], [])).toEqual([{ topic: 't', partition: 0, lag: 5 }]);
  });

  it('clamps a committed offset outside [low, high] (records removed by retention, a topic recreated)', () => {
    const ends = [{ topic: 't', partitions: [{ partition: 0, high: '500', low: '300' }, { partition: 1, high: '10', low: '0' }] }];
    expect(consumerLag(ends, [{ topic: 't', partitions: [{ partition: 0, offset: '100' }, { partition: 1, offset: '900' }] }]))
      .toEqual([{ topic: 't', partition: 0, lag: 200 }, { topic: 't', partition: 1, lag: 0 }]);
  });
});

describe('a health beacon', () => {
  it('keeps what a service says, made sane', () => {
    const b = beacon('intake', 'pod-1', {
      mllp: [{ source: 'lab', port: 2575, connections: 3, peers: 2 }],
      kafka: { groupId: 'g', consuming: true, lagAt: NOW, partitions: [{ topic: 't', partition: 0, lag: -4, assigned: true, paused: false }] },
      imap: [{ mailbox: 'noreply@x.test', connected: true, lastPollAt: Number.NaN }],
      smtp: [{ mailbox: 'noreply@x.test', paused: null, lastAcceptedAt: NOW, dsn: true }],
    });
    expect(b).toMatchObject({ v: 1, service: 'intake', instance: 'pod-1', at: NOW, ttlMs: 15_000 });
    expect(b.kafka!.partitions[0]!.lag).toBe(0);
    expect(b.imap![0]!.lastPollAt).toBeNull();
    expect(b.truncated).toBeUndefined();
  });

  it('stays small whatever the configuration: lists capped, the largest Kafka lags kept', () => {
    const many = 1000;
    const b = beacon('intake', 'x'.repeat(300), {
      mllp: Array.from({ length: many }, (_, i) => ({ source: `source-${'s'.repeat(300)}-${i}`, port: 2000 + i, connections: 64, peers: 16 })),
      kafka: { groupId: 'g'.repeat(500), consuming: true, lagAt: NOW, partitions: Array.from({ length: many }, (_, i) => ({ topic: `topic-${'t'.repeat(200)}`, partition: i, lag: i, assigned: true, paused: false })) },
      imap: Array.from({ length: many }, (_, i) => ({ mailbox: `m${i}-${'n'.repeat(300)}@x.test`, connected: true, lastPollAt: NOW })),
      smtp: Array.from({ length: many }, (_, i) => ({ mailbox: `m${i}-${'n'.repeat(300)}@x.test`, paused: 'unreachable', lastAcceptedAt: NOW, dsn: true })),
    });
    expect(b.mllp).toHaveLength(BEACON_CAPS.listeners);
    expect(b.kafka!.partitions).toHaveLength(BEACON_CAPS.partitions);
    expect(b.kafka!.partitions[0]!.lag).toBe(many - 1);
    expect(b.imap).toHaveLength(BEACON_CAPS.mailboxes);
    expect(b.truncated).toBe(4 * many - BEACON_CAPS.listeners - BEACON_CAPS.partitions - 2 * BEACON_CAPS.mailboxes);
    const bytes = Buffer.byteLength(JSON.stringify(b));
    console.log(`health beacon at its caps: ${bytes} bytes; a typical intake's: ${Buffer.byteLength(JSON.stringify(beacon('intake', 'pod-1', { mllp: [{ source: 'lab', port: 2575, connections: 3, peers: 2 }] })))} bytes`);
    expect(bytes).toBeLessThan(64 * 1024);
  });

  it('has its key under the configured prefix, one per service instance', () => {
    expect(redisKeys('mssgw').health('intake', 'pod-1')).toBe('mssgw:health:intake:pod-1');
    expect(redisKeys('{gw}').healthInstances).toBe('{gw}:health-instances');
  });
});

describe('the cluster health the console shows', () => {
  const seen = (b: HealthBeacon) => ({ field: `${b.service}:${b.instance}`, lastSeenAt: b.at });

  it('shows live instances, keeps an expired one as gone for an hour, then forgets it', () => {
    const live = beacon('receipts', 'r1', { imap: [{ mailbox: 'a@x.test', connected: true, lastPollAt: NOW - 5_000 }] });
    const h = summarizeBeacons(
      [seen(live), { field: 'receipts:r0', lastSeenAt: NOW - 60_000 }, { field: 'intake:i0', lastSeenAt: NOW - 30_000 }, { field: 'router:old', lastSeenAt: NOW - 2 * 3_600_000 }],
      [JSON.stringify(live), null, null, null],
      NOW,
    );
    expect(h.instances.map((i) => `${i.service}:${i.instance}:${i.state}`)).toEqual(['intake:i0:gone', 'receipts:r1:live', 'receipts:r0:gone']);
    expect(h.services).toEqual([{ service: 'intake', live: 0, gone: 1 }, { service: 'receipts', live: 1, gone: 1 }]);
    expect(h.forget).toEqual(['router:old']);
    expect(h.warnings).toEqual([
      { code: 'service-gone', service: 'intake' },
      { code: 'instance-gone', service: 'receipts', instance: 'r0' },
    ]);
  });

  it('warns of a mailbox not connected or not polled, a paused mailbox, an operator without DSN, an unreadable beacon as gone', () => {
    const r = beacon('receipts', 'r1', { imap: [{ mailbox: 'a@x.test', connected: false, lastPollAt: null }, { mailbox: 'b@x.test', connected: true, lastPollAt: NOW - 11 * 60_000 }] });
    const d = beacon('dispatcher', 'd1', { smtp: [{ mailbox: 'a@x.test', paused: 'authentication', lastAcceptedAt: null, dsn: false }] });
    const h = summarizeBeacons([seen(r), seen(d), { field: 'api:a1', lastSeenAt: NOW }], [JSON.stringify(r), JSON.stringify(d), '{not json'], NOW);
    expect(h.warnings.map((w) => `${w.code} ${w.subject ?? w.service}`)).toEqual([
      'service-gone api', 'smtp-paused a@x.test (authentication)', 'dsn-unsupported a@x.test', 'imap-disconnected a@x.test', 'imap-poll-stale b@x.test',
    ]);
  });

  it('warns of a Kafka lag that is large, or that no live intake consumes, once per partition whatever the number of intakes', () => {
    const partitions = (assigned: number[]) => [0, 1, 2].map((p) => ({ topic: 'lab', partition: p, lag: [KAFKA_LAG_WARNING, 5, 0][p]!, assigned: assigned.includes(p), paused: false }));
    const a = beacon('intake', 'i1', { kafka: { groupId: 'g', consuming: true, lagAt: NOW, partitions: partitions([0]) } });
    const b = beacon('intake', 'i2', { kafka: { groupId: 'g', consuming: false, lagAt: NOW - 120_000, partitions: partitions([]) } });
    const h = summarizeBeacons([seen(a), seen(b)], [JSON.stringify(a), JSON.stringify(b)], NOW);
    expect(h.warnings.map((w) => [w.code, w.instance, w.subject].filter(Boolean).join(' '))).toEqual([
      'kafka-lag-unknown i2', `kafka-lag lab/0: ${KAFKA_LAG_WARNING}`, 'kafka-lag lab/1: 5',
    ]);
    // Partition 1 consumed by a live intake: its small lag is normal.
    const c = beacon('intake', 'i2', { kafka: { groupId: 'g', consuming: true, lagAt: NOW, partitions: partitions([1, 2]) } });
    expect(summarizeBeacons([seen(a), seen(c)], [JSON.stringify(a), JSON.stringify(c)], NOW).warnings.map((w) => w.code)).toEqual(['kafka-lag']);
  });

  it('warns of a directory or liste blanche loaded over 48 h ago, as the MssgwReferenceDataStale alert', () => {
    const r = beacon('router', 'ro1', { reference: [
      { data: 'directory', loadedAt: NOW - 49 * 3_600_000 }, { data: 'whitelist', loadedAt: NOW - 47 * 3_600_000 },
      { data: 'patient-opposition', loadedAt: NOW - 72 * 3_600_000 }, { data: 'whitelist', loadedAt: NOW - 50 * 3_600_000 },
    ] });
    const h = summarizeBeacons([seen(r)], [JSON.stringify(r)], NOW);
    expect(h.instances[0]!.reference).toHaveLength(4);
    // The oppositions live in the store (no refresh to go stale); a load under 48 h old is no warning.
    expect(h.warnings.map((w) => `${w.code} ${w.instance} ${w.subject}`)).toEqual(['reference-stale ro1 directory', 'reference-stale ro1 whitelist']);
  });
});
