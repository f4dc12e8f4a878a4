import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { connectRedis } from '@mssgw/queue';
import { cpuSecondsOf } from './process.ts';
import { round } from './stats.ts';

export interface MachineFigures {
  /** One byte there and back between two processes over loopback TCP, one at a time. */
  roundTripUs: number;
  /** CPU each side spends per round trip (its write, its wake-up, its read). */
  roundTripCpuUsPerSide: number;
  redisRoundTripsPerSecond: number;
  redisPipelinedCommandsPerSecond: number;
}

const ECHO = "require('net').createServer((s) => { s.setNoDelay(true); s.on('data', (d) => s.write(d)); }).listen(0, '127.0.0.1', function () { process.stdout.write(this.address().port + '\\n'); });";

/**
 * What the machine charges for talking between processes, which every stage of the pipeline does many times per
 * result (MLLP, Redis, SMTP): the figures of the other scenarios read against these.
 */
export async function benchMachine(roundTrips = 20_000): Promise<MachineFigures> {
  const echo = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(echo.stdout, 'data')) as [Buffer];
    const socket = net.connect(Number(String(line).trim()), '127.0.0.1');
    socket.setNoDelay(true);
    await once(socket, 'connect');
    const [ownCpu, echoCpu, t0] = [process.cpuUsage(), cpuSecondsOf(echo.pid!) * 1000, performance.now()];
    let done = 0;
    await new Promise<void>((resolve) => {
      socket.on('data', () => (++done >= roundTrips ? resolve() : socket.write('x')));
      socket.write('x');
    });
    const elapsedMs = performance.now() - t0;
    const own = process.cpuUsage(ownCpu);
    const cpuMs = ((own.user + own.system) / 1000 + (cpuSecondsOf(echo.pid!) * 1000 - echoCpu)) / 2;
    socket.destroy();

    const redis = connectRedis('redis://127.0.0.1:16379', { enableAutoPipelining: false });
    const r0 = performance.now();
    for (let i = 0; i < roundTrips; i++) await redis.ping();
    const redisRoundTripsPerSecond = roundTrips / ((performance.now() - r0) / 1000);
    const p0 = performance.now();
    for (let i = 0; i < 2_000; i++) {
      const p = redis.pipeline();
      for (let j = 0; j < 100; j++) p.ping();
      await p.exec();
    }
    const redisPipelinedCommandsPerSecond = 200_000 / ((performance.now() - p0) / 1000);
    await redis.quit();
    return {
      roundTripUs: round((elapsedMs * 1000) / roundTrips, 0),
      roundTripCpuUsPerSide: round((cpuMs * 1000) / roundTrips, 0),
      redisRoundTripsPerSecond: round(redisRoundTripsPerSecond, 0),
      redisPipelinedCommandsPerSecond: round(redisPipelinedCommandsPerSecond, 0),
    };
  } finally {
    echo.kill();
  }
}
