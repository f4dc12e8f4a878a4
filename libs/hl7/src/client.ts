import net from 'node:net';
import tls from 'node:tls';
import { decodeHl7 } from './encoding.ts';
import { Er7Message } from './er7.ts';
import { frame, MllpDecoder } from './mllp.ts';

export interface MllpClientOptions {
  host: string;
  port: number;
  /** TLS options (with cert/key for mutual TLS; TLS 1.2 at least); plain TCP when absent. */
  tls?: tls.ConnectionOptions;
  /** Time allowed to connect, TLS handshake included (default: ackTimeoutMs, else 30 s). */
  connectTimeoutMs?: number;
  /** Time allowed for each acknowledgement. */
  ackTimeoutMs?: number;
}

export interface Acknowledgement {
  code: string;
  controlId: string;
  text: string;
  raw: string;
}

/**
 * A persistent MLLP connection that sends messages and waits for their ACKs, in order. Several messages may be in
 * flight (pipelined); answers are matched in sending order, as MLLP peers answer in order.
 */
export class MllpClient {
  private socket: net.Socket | undefined;
  private readonly decoder = new MllpDecoder(64 * 1024 * 1024);
  private readonly waiting: { resolve: (a: Acknowledgement) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  private readonly options: MllpClientOptions;

  constructor(options: MllpClientOptions) {
    this.options = options;
  }

  async connect(): Promise<void> {
    const { host, port } = this.options;
    const timeoutMs = this.options.connectTimeoutMs ?? this.options.ackTimeoutMs ?? 30_000;
    this.socket = await new Promise<net.Socket>((resolve, reject) => {
      // The callback runs once connected, and for TLS once the handshake has verified the server's certificate.
      const s = this.options.tls
        ? tls.connect({ host, port, minVersion: 'TLSv1.2', ...this.options.tls }, () => done())
        : net.connect({ host, port }, () => done());
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`MLLP connection to ${host}:${port} not established within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        s.off('error', failed);
        resolve(s);
      };
      const failed = (err: Error) => {
        clearTimeout(timer);
        s.destroy();
        reject(err);
      };
      s.once('error', failed);
    });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      for (const ev of this.decoder.push(chunk)) {
        if (ev.type !== 'message') continue;
        const w = this.waiting.shift();
        if (!w) continue;
        clearTimeout(w.timer);
        w.resolve(parseAck(ev.payload));
      }
    });
    const fail = (err: Error) => {
      for (const w of this.waiting.splice(0)) {
        clearTimeout(w.timer);
        w.reject(err);
      }
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail(new Error('MLLP connection closed before the acknowledgement')));
  }

  send(message: string | Buffer): Promise<Acknowledgement> {
    const socket = this.socket;
    if (!socket || socket.destroyed) return Promise.reject(new Error('MLLP client is not connected'));
    return new Promise<Acknowledgement>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.findIndex((w) => w.timer === timer);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error(`no acknowledgement within ${this.options.ackTimeoutMs ?? 30_000} ms`));
      }, this.options.ackTimeoutMs ?? 30_000);
      this.waiting.push({ resolve, reject, timer });
      socket.write(frame(message));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.socket || this.socket.destroyed) return resolve();
      this.socket.end(() => resolve());
      this.socket.destroySoon();
    });
  }
}

export function parseAck(payload: Buffer): Acknowledgement {
  const raw = decodeHl7(payload).text;
  const msg = new Er7Message(raw);
  const msa = msg.first('MSA');
  const err = msg.first('ERR');
  return { code: msg.get(msa, 1), controlId: msg.get(msa, 2), text: msg.get(err, 8) || msg.get(msa, 3), raw };
}
