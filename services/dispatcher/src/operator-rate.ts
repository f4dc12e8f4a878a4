import { redisKeys, RedisScript, type Redis } from '@mssgw/queue';

/**
 * The sending rate allowed towards the operator, shared by every dispatcher process through Redis: a GCRA
 * ("leaky bucket as a meter") whose rate drops when the operator says it is overloaded (421, 450, 451, 452) and
 * climbs back while it accepts mail. One key set per operator host, so all the mailboxes sending through the same
 * operator share one budget.
 */
export interface OperatorRateOptions {
  maxPerSecond: number;
  minPerSecond: number;
  /** Multiplier applied on each slow-down answer (e.g. 0.5). */
  slowDownFactor: number;
  /** After this long without a slow-down answer, the rate grows by 1/slowDownFactor, up to the maximum. */
  recoveryMs: number;
  /** Sends allowed at once above the steady rate. */
  burst: number;
}

// KEYS: tat, rate, lastSlowDown. ARGV: now (ms), max, min, burst, recoveryMs, factor.
// Returns the wait in ms before this send may go (0 when it may go now) and the rate in force (x1000, integer).
const ACQUIRE = new RedisScript(`
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local min = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local recovery = tonumber(ARGV[5])
local factor = tonumber(ARGV[6])
local rate = tonumber(redis.call('GET', KEYS[2]) or ARGV[2])
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if rate < max and now - last >= recovery then
  rate = math.min(max, rate / factor)
  redis.call('SET', KEYS[2], tostring(rate))
  redis.call('SET', KEYS[3], tostring(now))
end
if rate < min then rate = min end
local interval = 1000 / rate
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allowAt = tat - interval * burst
if now < allowAt then return {math.ceil(allowAt - now), math.floor(rate * 1000)} end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(interval * (burst + 1)) + 60000)
return {0, math.floor(rate * 1000)}`);

const SLOW_DOWN = new RedisScript(`
local rate = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
rate = math.max(tonumber(ARGV[2]), rate * tonumber(ARGV[3]))
redis.call('SET', KEYS[1], tostring(rate))
redis.call('SET', KEYS[2], ARGV[4])
return tostring(rate)`);

export class OperatorRate {
  private readonly keys: { tat: string; rate: string; last: string };
  private readonly redis: Redis;
  private readonly options: OperatorRateOptions;

  constructor(redis: Redis, prefix: string, operator: string, options: OperatorRateOptions) {
    this.redis = redis;
    this.options = options;
    const base = redisKeys(prefix).operatorRate(operator);
    this.keys = { tat: `${base}:tat`, rate: `${base}:rate`, last: `${base}:last-slow-down` };
  }

  /** Milliseconds to wait before sending (0: send now, the send is counted), and the rate in force. */
  async acquire(now = Date.now()): Promise<{ waitMs: number; perSecond: number }> {
    const o = this.options;
    const [wait, rate] = (await ACQUIRE.run(this.redis, [this.keys.tat, this.keys.rate, this.keys.last], [
      String(now), String(o.maxPerSecond), String(o.minPerSecond), String(o.burst), String(o.recoveryMs), String(o.slowDownFactor)])) as [number, number];
    return { waitMs: wait, perSecond: rate / 1000 };
  }

  /** The operator answered 421 / 45x: every process sends slower from now on. Returns the new rate. */
  async slowDown(now = Date.now()): Promise<number> {
    const o = this.options;
    return Number(await SLOW_DOWN.run(this.redis, [this.keys.rate, this.keys.last], [String(o.maxPerSecond), String(o.minPerSecond), String(o.slowDownFactor), String(now)]));
  }
}

/** SMTP replies that mean "too much, slow down" rather than a problem with this mail. */
export const isSlowDown = (responseCode?: number): boolean => responseCode === 421 || responseCode === 450 || responseCode === 451 || responseCode === 452;
