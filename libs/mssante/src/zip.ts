import { constants, crc32, deflateRawSync } from 'node:zlib';

export interface ZipEntry {
  /** Path inside the archive, with forward slashes. */
  name: string;
  content: Buffer;
}

/** MS-DOS date and time, in local time as zip tools read them; the format starts in 1980. */
function dosDateTime(at: Date): { date: number; time: number } {
  const d = at.getFullYear() < 1980 ? new Date(1980, 0, 1) : at;
  return {
    date: ((d.getFullYear() - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
  };
}

const UTF8_NAMES = 0x0800;

interface EntryFields { method: number; time: number; date: number; crc: number; compressed: number; size: number; nameLength: number }

/** The fields the local and the central headers share, from "version needed" to the name length (no extra field). */
function writeSharedFields(buf: Buffer, at: number, f: EntryFields): void {
  buf.writeUInt16LE(20, at); // version needed: 2.0 (deflate)
  buf.writeUInt16LE(UTF8_NAMES, at + 2);
  buf.writeUInt16LE(f.method, at + 4);
  buf.writeUInt16LE(f.time, at + 6);
  buf.writeUInt16LE(f.date, at + 8);
  buf.writeUInt32LE(f.crc, at + 10);
  buf.writeUInt32LE(f.compressed, at + 14);
  buf.writeUInt32LE(f.size, at + 18);
  buf.writeUInt16LE(f.nameLength, at + 22);
}
const MAX_32 = 0xffffffff;

const SAMPLE = 4 * 1024;
const HUFFMAN_ONLY = { strategy: constants.Z_HUFFMAN_ONLY };

/**
 * Deflate, choosing the strategy on a sample from the middle of a large entry. A CDA carrying a PDF is mostly Base64,
 * where LZ77 finds almost nothing to match: Huffman coding alone gives nearly the same size (+3 % on a CDA with a
 * 40 KB PDF) for a third of the CPU. An XML body (a structured report) compresses far better with LZ77 and keeps it.
 */
function deflate(content: Buffer): Buffer {
  if (content.length < 8 * SAMPLE) return deflateRawSync(content);
  const middle = content.subarray((content.length - SAMPLE) >> 1, (content.length + SAMPLE) >> 1);
  // Base64 carries 6 bits per byte: entropy coding alone takes it to about 75 %. When fast LZ77 does no better than
  // 70 % on the sample, it finds almost nothing to match.
  const matchable = deflateRawSync(middle, { level: 1 }).length < 0.7 * middle.length;
  return deflateRawSync(content, matchable ? {} : HUFFMAN_ONLY);
}

/**
 * A ZIP archive (PKWARE APPNOTE 6.3, no ZIP64) built in memory in one synchronous pass: each entry deflated when that
 * makes it smaller, stored otherwise. An IHE_XDM.ZIP holds a few small files and CDAs of at most a few tens of MB,
 * and is built once per mail on the router's hot path, where a streaming writer's per-chunk events and a CRC computed
 * in JavaScript cost more than the compression itself.
 */
export function buildZip(entries: ZipEntry[], modifiedAt: Date): Buffer {
  const { date, time } = dosDateTime(modifiedAt);
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const deflated = deflate(entry.content);
    const stored = deflated.length >= entry.content.length;
    const data = stored ? entry.content : deflated;
    if (offset + data.length > MAX_32 || entry.content.length > MAX_32) throw new Error('archive too large for ZIP without ZIP64');
    const crc = crc32(entry.content);
    const fields = { method: stored ? 0 : 8, time, date, crc, compressed: data.length, size: entry.content.length, nameLength: name.length };
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    writeSharedFields(local, 4, fields);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE((3 << 8) | 20, 4); // made by: UNIX, 2.0 (so that the permissions below are read)
    writeSharedFields(header, 6, fields);
    // extra field, comment, disk number, internal attributes: all zero
    header.writeUInt32LE((0o100644 << 16) >>> 0, 38); // a regular file, rw-r--r--
    header.writeUInt32LE(offset, 42);
    parts.push(local, name, data);
    central.push(header, name);
    offset += local.length + name.length + data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}
