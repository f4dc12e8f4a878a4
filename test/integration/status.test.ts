import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis, RedisScript } from '@mssgw/queue';
import { StatusStore } from '@mssgw/status';
import { tag } from '../support/env.ts';

describe('recipient state machine (real Redis)', () => {
  const redis = connectRedis('redis://127.0.0.1:16379');
  const store = new StatusStore(redis, `test-status-${tag()}`);
  afterAll(async () => redis.quit());
  const base = { resultId: 'r-1', recipient: 'a@b.mssante.test', kind: 'professional' as const, messageId: '<m1@x>' };

  it('creates a recipient once, whatever the retries', async () => {
    expect(await store.createDelivery({ ...base, deliveryId: 'd-1', state: 'queued' })).toBe(true);
    expect(await store.createDelivery({ ...base, deliveryId: 'd-1', state: 'refused', reason: 'x' })).toBe(false);
    expect((await store.getDelivery('d-1'))!.state).toBe('queued');
  });

  it('runs its scripts by SHA, and sends them again when Redis has forgotten them (restart, SCRIPT FLUSH)', async () => {
    const script = new RedisScript(`return {KEYS[1], ARGV[1], ${Date.now()}}`);
    expect(await redis.script('EXISTS', script.sha)).toEqual([0]);
    expect(((await script.run(redis, ['k'], ['v'])) as unknown[]).slice(0, 2)).toEqual(['k', 'v']);
    expect(await redis.script('EXISTS', script.sha)).toEqual([1]);
    await redis.script('FLUSH');
    expect(await store.createDelivery({ ...base, deliveryId: 'd-flush', state: 'queued' })).toBe(true);
    expect((await store.transition('d-flush', 'submitted', 'dispatcher')).applied).toBe(true);
  });

  it('moves forward only, keeping late and out-of-order receipts in the history', async () => {
    await store.createDelivery({ ...base, deliveryId: 'd-2', state: 'queued' });
    expect((await store.transition('d-2', 'submitted', 'dispatcher')).applied).toBe(true);
    expect((await store.transition('d-2', 'displayed', 'mdn')).applied).toBe(true); // an MDN may overtake its DSN
    expect(await store.transition('d-2', 'delivered', 'dsn')).toEqual({ applied: false, previous: 'displayed' });
    expect((await store.getDelivery('d-2'))!.state).toBe('displayed');
    expect((await store.history('d-2')).map((h) => [h.state, h.applied])).toEqual([
      ['queued', true], ['submitted', true], ['displayed', true], ['delivered', false],
    ]);
    expect((await store.transition('d-2', 'queued', 'dispatcher')).applied).toBe(false);
  });

  it('turns a recipient without a final DSN into unconfirmed, timed from submission, not reset by a delay', async () => {
    await store.createDelivery({ ...base, deliveryId: 'd-3', state: 'queued' });
    await store.createDelivery({ ...base, deliveryId: 'd-4', state: 'queued' });
    await store.transition('d-3', 'submitted', 'dispatcher', {}, 1_000);
    await store.transition('d-3', 'delayed', 'dsn', {}, 50_000);
    await store.transition('d-4', 'submitted', 'dispatcher', {}, 90_000);
    expect(await store.expireUnconfirmed(60_000, 100_000)).toEqual(['d-3']);
    expect((await store.getDelivery('d-3'))!.state).toBe('unconfirmed');
    expect((await store.getDelivery('d-4'))!.state).toBe('submitted');
    // A late DSN is still recorded and reconciles the outcome.
    expect((await store.transition('d-3', 'delivered', 'dsn')).applied).toBe(true);
  });

  it('keeps records for the configured retention', async () => {
    const short = new StatusStore(redis, `test-status-retention-${tag()}`, 7 * 24 * 3600);
    await short.createDelivery({ ...base, deliveryId: 'd-r', state: 'queued' });
    const ttl = await redis.ttl(`${(short as unknown as { p: string }).p}:delivery:d-r`);
    expect(ttl).toBeGreaterThan(7 * 24 * 3600 - 10);
    expect(ttl).toBeLessThanOrEqual(7 * 24 * 3600);
  });

  it('finds a recipient from the Message-ID and address an MDN names', async () => {
    await store.createDelivery({ ...base, deliveryId: 'd-5', state: 'queued', messageId: '<M5@X>', recipient: 'B@c.mssante.test' });
    expect(await store.deliveryForMessage('<m5@x>', 'b@C.mssante.test')).toBe('d-5');
  });
});
