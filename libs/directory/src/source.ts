import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { httpGet } from './https.ts';

/** An extraction ready to stream: its text, its name and the SHA-256 of what was fetched or read. */
export interface ExtractionSource {
  name: string;
  text: Readable;
  sha256(): string | undefined;
  close(): Promise<void>;
}

export class ExtractionSourceError extends Error {
  override name = 'ExtractionSourceError';
}

/**
 * Opens `Extraction_Correspondance_MSSante_*.zip` or `.txt`, from a file or an https URL (downloaded to a temporary
 * file first, so that a slow or broken download never leaves a half-read directory behind). `caFile`: CA certificates
 * trusted for the download besides Node's store (the IGC-Santé chain).
 */
export async function openExtraction(location: string, options: { timeoutMs?: number; caFile?: string | undefined } = {}): Promise<ExtractionSource> {
  if (/^https?:\/\//i.test(location)) {
    const dir = await mkdtemp(path.join(tmpdir(), 'mssgw-directory-'));
    const file = path.join(dir, 'extraction');
    try {
      const res = await httpGet(location, { caFile: options.caFile, timeoutMs: options.timeoutMs ?? 10 * 60_000 });
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
        res.resume();
        throw new ExtractionSourceError(`GET ${location}: HTTP ${res.statusCode}`);
      }
      await pipeline(res, createWriteStream(file));
      const opened = (await startsWithZipMagic(file)) ? await openZip(file, location) : openText(file, location);
      return { ...opened, close: async () => { await opened.close(); await rm(dir, { recursive: true, force: true }); } };
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err instanceof ExtractionSourceError ? err : new ExtractionSourceError(`GET ${location}: ${(err as Error).message}`);
    }
  }
  return location.toLowerCase().endsWith('.zip') ? openZip(location, path.basename(location)) : openText(location, path.basename(location));
}

function openText(file: string, name: string): ExtractionSource {
  const hash = createHash('sha256');
  const text = createReadStream(file).pipe(new Transform({ transform(chunk: Buffer, _enc, cb) { hash.update(chunk); cb(null, chunk); } }));
  let digest: string | undefined;
  return {
    name,
    text,
    sha256: () => (text.readableEnded ? (digest ??= hash.digest('hex')) : undefined),
    close: () => { text.destroy(); return Promise.resolve(); },
  };
}

async function openZip(file: string, name: string): Promise<ExtractionSource> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  const digest = hash.digest('hex');
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false }, (err, z) => (err ? reject(new ExtractionSourceError(`${name}: ${err.message}`)) : resolve(z))),
  );
  const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
    zip.on('entry', (e: yauzl.Entry) => (/\.txt$/i.test(e.fileName) ? resolve(e) : zip.readEntry()));
    zip.on('end', () => resolve(undefined));
    zip.on('error', reject);
    zip.readEntry();
  });
  if (!entry) {
    zip.close();
    throw new ExtractionSourceError(`${name}: no .txt extraction inside the archive`);
  }
  const text = await new Promise<Readable>((resolve, reject) => zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s))));
  return { name: `${name}!${entry.fileName}`, text, sha256: () => digest, close: () => { text.destroy(); zip.close(); return Promise.resolve(); } };
}

async function startsWithZipMagic(file: string): Promise<boolean> {
  const fh = await open(file);
  try {
    const head = Buffer.alloc(2);
    await fh.read(head, 0, 2, 0);
    return head.toString('latin1') === 'PK';
  } finally {
    await fh.close();
  }
}
