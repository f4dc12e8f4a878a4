import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { MllpListenerConfig } from '@mssgw/config';
import { buildAck, frame, Hl7Error, MllpDecoder } from '@mssgw/hl7';
import { watchCertificateExpiry } from '@mssgw/runtime';
import type { Logger } from '@mssgw/telemetry';
import { metrics } from '@mssgw/telemetry';
import type { ResultIntake } from './pipeline.ts';

export interface MllpListener {
  source: string;
  port: number;
  close(): Promise<void>;
}

/**
 * One MLLP v1 listener. Each connection is answered in order, one ACK per frame, however the frames are split
 * over TCP reads; a connection idle past its timeout, or sending non-HL7 bytes, is closed without affecting others.
 */
export async function startMllpListener(config: MllpListenerConfig, intake: ResultIntake, log: Logger): Promise<MllpListener> {
  /** Each open connection and the promise of its last queued answer. */
  const sockets = new Map<net.Socket, Promise<void>>();
  const onConnection = (socket: net.Socket) => {
    sockets.set(socket, Promise.resolve());
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.setTimeout(config.idleTimeoutMs, () => socket.destroy());
    const decoder = new MllpDecoder(config.maxMessageBytes);
    let lastByteAt = 0;
    socket.on('data', (chunk: Buffer) => {
      lastByteAt = performance.now();
      for (const event of decoder.push(chunk)) {
        const arrivedAt = lastByteAt;
        const chain = (sockets.get(socket) ?? Promise.resolve()).then(async () => {
          if (event.type === 'message') {
            const outcome = await intake.accept(event.payload, config.source, 'mllp');
            if (!socket.destroyed) socket.write(frame(outcome.ack));
            metrics.ackLatency.observe({ transport: 'mllp' }, (performance.now() - arrivedAt) / 1000);
          } else if (event.type === 'oversized') {
            const err = Hl7Error.of('tooLarge', `message of ${event.bytes} bytes exceeds the ${config.maxMessageBytes}-byte limit`);
            metrics.resultsRejected.inc({ source: config.source, transport: 'mllp', code: err.code });
            if (!socket.destroyed) socket.write(frame(buildAck(undefined, 'AR', err)));
          } else {
            log.warn({ source: config.source, bytes: event.bytes, remote: socket.remoteAddress }, 'bytes outside MLLP framing ignored');
          }
        });
        sockets.set(socket, chain);
      }
    });
    socket.on('error', (err) => log.debug({ source: config.source, err: err.message }, 'MLLP connection error'));
    socket.on('close', () => sockets.delete(socket));
  };

  if (config.tls) {
    watchCertificateExpiry(readFileSync(config.tls.certFile), `mllp-server-${config.source}`);
    if (config.tls.clientCaFile) watchCertificateExpiry(readFileSync(config.tls.clientCaFile), `mllp-client-ca-${config.source}`);
  }
  const server = config.tls
    ? tls.createServer(
        {
          cert: readFileSync(config.tls.certFile),
          key: readFileSync(config.tls.keyFile),
          minVersion: 'TLSv1.2',
          ...(config.tls.clientCaFile ? { ca: readFileSync(config.tls.clientCaFile), requestCert: true, rejectUnauthorized: true } : {}),
        },
        onConnection,
      )
    : net.createServer(onConnection);
  server.on('tlsClientError', (err: Error) => log.warn({ source: config.source, err: err.message }, 'MLLP TLS handshake refused'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info({ source: config.source, host: config.host, port, tls: Boolean(config.tls) }, 'MLLP listener ready');
  return {
    source: config.source,
    port,
    async close() {
      // No new connections; the messages already received are queued and acknowledged, then connections close.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const pending = Promise.all(sockets.values());
      await Promise.race([pending, new Promise((r) => setTimeout(r, 5_000).unref())]);
      for (const s of sockets.keys()) s.destroy();
      await closed;
    },
  };
}
