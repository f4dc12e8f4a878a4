import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { mllpLimitsOf, type MllpListenerConfig } from '@mssgw/config';
import { buildAck, frame, Hl7Error, MllpDecoder } from '@mssgw/hl7';
import { watchCertificateExpiry } from '@mssgw/runtime';
import type { Logger } from '@mssgw/telemetry';
import { metrics } from '@mssgw/telemetry';
import type { ResultIntake } from './pipeline.ts';

export interface MllpListener {
  source: string;
  port: number;
  /** Its open connections and the distinct peer addresses they come from (the console's health). */
  stats(): { connections: number; peers: number };
  close(): Promise<void>;
}

/**
 * The limits a listener enforces, the `limit` label of mssgw_mllp_limit_total (docs/operations.md, "MLLP limits").
 * Closing: connections, connections-per-peer, frame-timeout, idle-timeout. Pausing (the socket is not read for a
 * while): pending-frames, connection-bytes, listener-bytes.
 */
export const MLLP_LIMITS = ['connections', 'connections-per-peer', 'frame-timeout', 'idle-timeout', 'pending-frames', 'connection-bytes', 'listener-bytes'] as const;
export type MllpLimit = (typeof MLLP_LIMITS)[number];
type PauseReason = Extract<MllpLimit, 'pending-frames' | 'connection-bytes' | 'listener-bytes'>;

const PAUSED: Record<PauseReason, string> = {
  'pending-frames': 'MLLP connection not read until one of its frames is acknowledged',
  'connection-bytes': 'MLLP connection not read until its frames are answered: it holds too many bytes',
  'listener-bytes': 'MLLP connection not read until the listener holds fewer bytes',
};

/** One log line per limit and listener at most this often; the counter has every occurrence. */
const LOG_EVERY_MS = 10_000;

interface Connection {
  socket: net.Socket;
  peer: string;
  decoder: MllpDecoder;
  /** Bytes of frames received and not yet answered. */
  held: number;
  /** decoder.buffered as last counted into the listener's total. */
  partial: number;
  /** Frames received whose ACK the peer has not yet taken (written to the kernel). */
  pending: number;
  /** Frames handed to the intake and not yet answered: then the peer is waiting on us, not idle. */
  answering: number;
  /** The last queued answer; answers go out in order. */
  chain: Promise<void>;
  pausedFor: PauseReason | undefined;
  frameTimer: NodeJS.Timeout | undefined;
  idleTimer: NodeJS.Timeout;
}

/**
 * One MLLP v1 listener. Each connection is answered in order, one ACK per frame, however the frames are split
 * over TCP reads; a connection idle past its timeout, or sending non-HL7 bytes, is closed without affecting others.
 *
 * Its memory is bounded whatever its peers do: connections are capped in total and per peer address, a frame must
 * end within frameTimeoutMs of its start, and a connection is not read (socket.pause(), so TCP pushes back on the
 * sender) while too many of its frames await their ACK, while it holds too many bytes, or while the listener's
 * connections together do.
 */
export async function startMllpListener(config: MllpListenerConfig, intake: ResultIntake, log: Logger): Promise<MllpListener> {
  const limits = mllpLimitsOf(config);
  // One frame of the maximum size must always fit, or it could never be received.
  const maxBufferedBytes = Math.max(limits.maxBufferedBytes, config.maxMessageBytes);
  const source = config.source;
  const connections = new Set<Connection>();
  const perPeer = new Map<string, number>();
  /** Bytes all connections hold: frames in progress and frames not yet answered. */
  let total = 0;

  // Every limit shows in /metrics from the start, at 0.
  const limitCounters = new Map(MLLP_LIMITS.map((limit) => [limit, metrics.mllpLimit.labels({ source, limit })] as const));
  for (const counter of limitCounters.values()) counter.inc(0);
  const openConnections = metrics.mllpConnections.labels({ source });
  openConnections.inc(0);
  const bufferedBytes = metrics.mllpBufferedBytes.labels({ source });
  bufferedBytes.set(0);

  const lastLogged = new Map<string, { at: number; suppressed: number }>();
  /** A warning at most once per LOG_EVERY_MS per kind, with how many were left out since: a flood must not flood the log. */
  const warn = (kind: string, fields: Record<string, unknown>, message: string) => {
    const last = lastLogged.get(kind);
    const now = performance.now();
    if (last && now - last.at < LOG_EVERY_MS) {
      last.suppressed++;
      return;
    }
    // Peer addresses and sizes only: never a byte of a frame.
    log.warn({ source, ...fields, ...(last?.suppressed ? { suppressed: last.suppressed } : {}) }, message);
    lastLogged.set(kind, { at: now, suppressed: 0 });
  };
  /** A limit reached: counted every time, logged as `warn` allows. */
  const reached = (limit: MllpLimit, fields: Record<string, unknown>, message: string) => {
    limitCounters.get(limit)!.inc();
    warn(limit, { limit, ...fields }, message);
  };

  const addTotal = (delta: number) => {
    total += delta;
    bufferedBytes.set(total);
  };

  /** Pauses or resumes a connection's reading according to what it and the listener hold. */
  const regulate = (c: Connection) => {
    if (c.socket.destroyed) return;
    const holds = c.partial + c.held;
    // Pausing only helps when something will drain: frames awaiting their answer, or other connections' bytes.
    const reason: PauseReason | undefined =
      c.pending >= limits.maxPendingFrames ? 'pending-frames'
      : c.pending > 0 && holds >= limits.maxConnectionBytes ? 'connection-bytes'
      : holds > 0 && total >= maxBufferedBytes && holds < total ? 'listener-bytes'
      : undefined;
    if (reason && !c.pausedFor) {
      c.socket.pause();
      c.pausedFor = reason;
      reached(reason, { remote: c.peer, pending: c.pending, bytes: holds, listenerBytes: total }, PAUSED[reason]);
    } else if (!reason && c.pausedFor) {
      c.pausedFor = undefined;
      // After the other connections' reads: what a paused socket kept comes back at once on resume, and a peer
      // that pipelines tiny frames would otherwise be served round after round before anyone else.
      setImmediate(() => !c.pausedFor && !c.socket.destroyed && c.socket.resume());
    }
  };
  /** Bytes were released: connections paused for the listener's total may read again. */
  const regulateAll = () => {
    for (const c of connections) if (c.pausedFor) regulate(c);
  };

  const answer = (c: Connection, ack: Buffer | undefined, size: number) => {
    c.held -= size;
    addTotal(-size);
    const taken = () => {
      c.pending--;
      if (!c.socket.destroyed) c.idleTimer.refresh();
      regulate(c);
      if (size > 0) regulateAll();
    };
    // The write's callback fires once the kernel has the ACK: a peer that does not read its ACKs keeps its frames pending.
    if (ack && !c.socket.destroyed) c.socket.write(ack, taken);
    else taken();
  };

  const onData = (c: Connection, chunk: Buffer) => {
    const wasInFrame = c.decoder.inFrame;
    // No more frames are taken than may await their ACK: one read of tiny frames could otherwise hold thousands.
    const events = c.decoder.push(chunk, Math.max(0, limits.maxPendingFrames - c.pending));
    let ended = 0;
    for (const event of events) {
      if (event.type === 'garbage') {
        warn('garbage', { bytes: event.bytes, remote: c.peer }, 'bytes outside MLLP framing ignored');
        continue;
      }
      ended++;
      const size = event.type === 'message' ? event.payload.length : 0;
      const arrivedAt = performance.now();
      c.held += size;
      c.pending++;
      c.answering++;
      c.chain = c.chain.then(async () => {
        let ack: Buffer | undefined;
        try {
          if (event.type === 'message') {
            const outcome = await intake.accept(event.payload, source, 'mllp');
            metrics.ackLatency.observe({ transport: 'mllp' }, (performance.now() - arrivedAt) / 1000);
            ack = frame(outcome.ack);
          } else {
            const err = Hl7Error.of('tooLarge', `message of ${event.bytes} bytes exceeds the ${config.maxMessageBytes}-byte limit`);
            metrics.resultsRejected.inc({ source, transport: 'mllp', code: err.code });
            ack = frame(buildAck(undefined, 'AR', err));
          }
        } catch (err) {
          // No answer can be given: the sender will send again on a new connection.
          log.error({ source, remote: c.peer, err: (err as Error).message }, 'MLLP frame could not be answered; connection closed');
          c.socket.destroy();
        }
        c.answering--;
        answer(c, ack, size);
      });
    }
    const partial = c.decoder.buffered;
    addTotal(partial - c.partial + events.reduce((n, e) => n + (e.type === 'message' ? e.payload.length : 0), 0));
    c.partial = partial;
    // The deadline runs from a frame's first byte to its end, whatever trickles in between.
    if (ended > 0 || !c.decoder.inFrame) {
      clearTimeout(c.frameTimer);
      c.frameTimer = undefined;
    }
    if (c.decoder.inFrame && (!wasInFrame || ended > 0)) c.frameTimer = setTimeout(() => frameTimedOut(c), limits.frameTimeoutMs).unref();
    if (ended > 0) c.idleTimer.refresh();
    regulate(c);
    // The rest of the read waits, paused, for answers: it comes back as a 'data' event on resume.
    // (The decoder stops early only with maxPendingFrames reached, so regulate has paused the socket.)
    if (c.decoder.consumed < chunk.length && c.pausedFor) c.socket.unshift(chunk.subarray(c.decoder.consumed));
  };

  const frameTimedOut = (c: Connection) => {
    reached('frame-timeout', { remote: c.peer, bytes: c.decoder.buffered, timeoutMs: limits.frameTimeoutMs }, 'MLLP frame not ended in time; connection closed');
    c.socket.destroy();
  };

  const onIdle = (c: Connection) => {
    // A frame in progress has its own deadline; a frame being answered is the gateway's time, not the peer's.
    if (c.decoder.inFrame || c.answering > 0) {
      c.idleTimer.refresh();
      return;
    }
    reached('idle-timeout', { remote: c.peer, timeoutMs: config.idleTimeoutMs }, 'MLLP connection idle; closed');
    c.socket.destroy();
  };

  /** Every accepted TCP connection, before any TLS handshake: the connection limits apply here. */
  const admit = (raw: net.Socket) => {
    const peer = raw.remoteAddress ?? 'unknown';
    const fromPeer = perPeer.get(peer) ?? 0;
    if (fromPeer >= limits.maxConnectionsPerPeer) {
      reached('connections-per-peer', { remote: peer, max: limits.maxConnectionsPerPeer }, 'MLLP connection refused: too many from this peer');
      raw.destroy();
      return;
    }
    perPeer.set(peer, fromPeer + 1);
    openConnections.inc();
    raw.once('close', () => {
      const n = (perPeer.get(peer) ?? 1) - 1;
      if (n > 0) perPeer.set(peer, n);
      else perPeer.delete(peer);
      openConnections.dec();
    });
  };

  const onConnection = (socket: net.Socket) => {
    if (socket.destroyed) return;
    const c: Connection = {
      socket,
      peer: socket.remoteAddress ?? 'unknown',
      decoder: new MllpDecoder(config.maxMessageBytes),
      held: 0,
      partial: 0,
      pending: 0,
      answering: 0,
      chain: Promise.resolve(),
      pausedFor: undefined,
      frameTimer: undefined,
      // Not socket.setTimeout: every byte would restart it, and one byte every few seconds would hold a connection forever.
      idleTimer: setTimeout(() => onIdle(c), config.idleTimeoutMs).unref(),
    };
    connections.add(c);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.on('data', (chunk: Buffer) => onData(c, chunk));
    socket.on('error', (err) => log.debug({ source, err: err.message }, 'MLLP connection error'));
    socket.on('close', () => {
      clearTimeout(c.frameTimer);
      clearTimeout(c.idleTimer);
      connections.delete(c);
      // What the connection held is released once its queued frames are answered (or dropped).
      addTotal(-c.partial);
      c.partial = 0;
      regulateAll();
      void c.chain.then(regulateAll);
    });
  };

  if (config.tls) {
    watchCertificateExpiry(readFileSync(config.tls.certFile), `mllp-server-${source}`);
    if (config.tls.clientCaFile) watchCertificateExpiry(readFileSync(config.tls.clientCaFile), `mllp-client-ca-${source}`);
  }
  const server = config.tls
    ? tls.createServer(
        {
          cert: readFileSync(config.tls.certFile),
          key: readFileSync(config.tls.keyFile),
          minVersion: 'TLSv1.2',
          // A handshake is bounded like a frame: a peer cannot hold a connection by never finishing it.
          handshakeTimeout: limits.frameTimeoutMs,
          ...(config.tls.clientCaFile ? { ca: readFileSync(config.tls.clientCaFile), requestCert: true, rejectUnauthorized: true } : {}),
        },
        onConnection,
      )
    : net.createServer(onConnection);
  // Before the TLS server's own listener, so that a connection over the limit is never handshaken.
  server.prependListener('connection', admit);
  // Past maxConnections, Node closes a new connection before any JavaScript socket exists, and says so here.
  server.maxConnections = limits.maxConnections;
  server.on('drop', (data?: net.DropArgument) =>
    reached('connections', { remote: data?.remoteAddress, max: limits.maxConnections }, 'MLLP connection refused: the listener has its maximum of connections'),
  );
  server.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
    // A handshake not finished in time is a frame deadline of its own; a connection refused above ends here too.
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') reached('frame-timeout', { remote: socket.remoteAddress, timeoutMs: limits.frameTimeoutMs }, 'MLLP TLS handshake not finished in time; connection closed');
    else warn('tls', { err: err.message, remote: socket.remoteAddress }, 'MLLP TLS handshake refused');
    // With a listener for this event, Node leaves the connection open: a peer that never finishes would keep it.
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info({ source, host: config.host, port, tls: Boolean(config.tls), limits: { ...limits, maxBufferedBytes } }, 'MLLP listener ready');
  return {
    source,
    port,
    // The connections admitted (counted per peer in admit), before or after their TLS handshake.
    stats: () => ({ connections: [...perPeer.values()].reduce((a, b) => a + b, 0), peers: perPeer.size }),
    async close() {
      // No new connections; the messages already received are queued and acknowledged, then connections close.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const pending = Promise.all([...connections].map((c) => c.chain));
      await Promise.race([pending, new Promise((r) => setTimeout(r, 5_000).unref())]);
      for (const c of connections) c.socket.destroy();
      await closed;
    },
  };
}
