import { readFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';

export interface GetOptions {
  /** CA certificates (PEM) trusted besides Node's own store: the IGC-Santé chain for the Annuaire Santé. */
  caFile?: string | undefined;
  /** The whole exchange, body included, must end within this long. */
  timeoutMs: number;
  headers?: Record<string, string>;
}

/**
 * GET over http or https, with `caFile`'s certificates trusted besides Node's store (fetch takes no CA of its own).
 * Follows up to 5 redirects. The response is the caller's to read, within the same time limit.
 */
export async function httpGet(url: string, options: GetOptions): Promise<IncomingMessage> {
  const ca = options.caFile ? [...rootCertificates, readFileSync(options.caFile, 'utf8')] : undefined;
  const signal = AbortSignal.timeout(options.timeoutMs);
  let target = new URL(url);
  for (let redirects = 0; ; redirects++) {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = target.protocol === 'https:'
        ? https.get(target, { headers: options.headers, signal, ...(ca ? { ca } : {}) }, resolve)
        : http.get(target, { headers: options.headers, signal }, resolve);
      request.on('error', reject);
    });
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location && redirects < 5) {
      res.resume();
      target = new URL(res.headers.location, target);
      continue;
    }
    return res;
  }
}

/** The body of a response, whole. */
export async function bodyOf(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
