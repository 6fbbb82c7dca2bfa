// A streaming reader of tar archives (ustar, pax and GNU long names), enough for OCI
// layers and OCI archives. Bodies are streamed in chunks, never held whole in memory.

import { Code, HakoError, errorf } from '../errors/index.js';

/** TarEntryType is the kind of one archive member. */
export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** TarEntry is one member's header, with pax and GNU extensions applied. */
export interface TarEntry {
  name: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkName: string;
  devMajor: number;
  devMinor: number;
  /** xattrs from pax SCHILY.xattr.* records. */
  xattrs: Record<string, string>;
}

const BLOCK = 512;
// pax and GNU long-name records are small; a larger one is an attack or a corrupt archive.
const MAX_META_BYTES = 1024 * 1024;

/** ByteSource pulls exact byte counts out of an async stream of chunks. */
class ByteSource {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;

  constructor(input: AsyncIterable<Buffer | Uint8Array | string>) {
    this.it = input[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return true;
  }

  /** read returns exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n && (await this.fill()));
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** stream hands n bytes to fn in chunks as they arrive; fewer at the end of the stream is an error. */
  async stream(n: number, fn: (chunk: Buffer) => Promise<void> | void): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) throw errorf(Code.DATA_LOSS, 'tar: archive ends inside a member');
      const take = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(take.length);
      left -= take.length;
      await fn(take);
    }
  }

  /** close stops the underlying iterator (destroys the stream). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

function cstring(b: Buffer, start: number, end: number): string {
  const slice = b.subarray(start, end);
  const nul = slice.indexOf(0);
  return (nul < 0 ? slice : slice.subarray(0, nul)).toString('utf8');
}

/** parseNumeric reads an octal (or GNU base-256) numeric header field. */
export function parseNumeric(b: Buffer, start: number, end: number): number {
  const f = b.subarray(start, end);
  if (f.length > 0 && (f[0]! & 0x80) !== 0) {
    // GNU base-256: big-endian, the top bit of the first byte is the marker.
    let n = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) n = n * 256 + f[i]!;
    return n;
  }
  const s = cstring(b, start, end).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw errorf(Code.DATA_LOSS, `tar: bad numeric field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let stored: number;
  try {
    stored = parseNumeric(h, 148, 156);
  } catch {
    return false;
  }
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === stored;
}

/** parsePax parses pax extended header records ("<len> key=value\n"). */
export function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number(data.subarray(pos, space).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) throw errorf(Code.DATA_LOSS, 'tar: malformed pax record');
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink',
  '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};

/** TarBody lets the consumer of an entry stream its data. */
export interface TarBody {
  /** pipe hands the body to fn chunk by chunk; unread bodies are skipped automatically. */
  pipe(fn: (chunk: Buffer) => Promise<void> | void): Promise<void>;
}

/**
 * readTar calls onEntry for each member in order and awaits it before reading on.
 * A body the callback does not read is skipped.
 */
export async function readTar(
  input: AsyncIterable<Buffer | Uint8Array | string>,
  onEntry: (entry: TarEntry, body: TarBody) => Promise<void>,
): Promise<void> {
  const src = new ByteSource(input);
  try {
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const h = await src.read(BLOCK);
      if (h.length === 0) return; // archive without end blocks: tolerated
      if (h.length < BLOCK) throw errorf(Code.DATA_LOSS, 'tar: truncated header');
      if (h.every((b) => b === 0)) return; // end-of-archive marker
      if (!checksumOk(h)) throw errorf(Code.DATA_LOSS, 'tar: header checksum mismatch (not a tar archive?)');
      const flag = String.fromCharCode(h[156]!);
      let size = parseNumeric(h, 124, 136);
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (size > MAX_META_BYTES) throw errorf(Code.DATA_LOSS, `tar: ${size}-byte extension header is too large`);
        const data = await src.read(size);
        await src.read(pad(size));
        if (data.length < size) throw errorf(Code.DATA_LOSS, 'tar: archive ends inside an extension header');
        if (flag === 'x') pax = { ...pax, ...parsePax(data) };
        else if (flag === 'L') longName = cstring(data, 0, data.length);
        else if (flag === 'K') longLink = cstring(data, 0, data.length);
        continue; // 'g' (global pax) carries nothing hako uses
      }
      const type = TYPES[flag];
      const ustar = h.subarray(257, 262).toString('ascii') === 'ustar';
      const prefix = ustar ? cstring(h, 345, 500) : '';
      let name = longName ?? (prefix !== '' ? `${prefix}/${cstring(h, 0, 100)}` : cstring(h, 0, 100));
      let linkName = longLink ?? cstring(h, 157, 257);
      if (pax.path !== undefined) name = pax.path;
      if (pax.linkpath !== undefined) linkName = pax.linkpath;
      if (pax.size !== undefined) size = Number(pax.size);
      if (!Number.isSafeInteger(size) || size < 0) throw errorf(Code.DATA_LOSS, `tar: bad size for ${name}`);
      const xattrs: Record<string, string> = {};
      for (const [k, v] of Object.entries(pax)) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice(13)] = v;
      const entry: TarEntry = {
        name,
        type: type ?? 'file',
        mode: parseNumeric(h, 100, 108) & 0o7777,
        uid: pax.uid !== undefined ? Number(pax.uid) : parseNumeric(h, 108, 116),
        gid: pax.gid !== undefined ? Number(pax.gid) : parseNumeric(h, 116, 124),
        size: type === 'dir' || type === 'symlink' || type === 'hardlink' ? 0 : size,
        mtime: new Date((pax.mtime !== undefined ? Number(pax.mtime) : parseNumeric(h, 136, 148)) * 1000),
        linkName,
        devMajor: parseNumeric(h, 329, 337),
        devMinor: parseNumeric(h, 337, 345),
        xattrs,
      };
      pax = {};
      longName = undefined;
      longLink = undefined;
      if (type === undefined) throw errorf(Code.UNIMPLEMENTED, `tar: member ${name} has unsupported type ${JSON.stringify(flag)}`);
      let consumed = false;
      const body: TarBody = {
        pipe: async (fn) => {
          if (consumed) throw errorf(Code.FAILED_PRECONDITION, `tar: body of ${name} read twice`);
          consumed = true;
          await src.stream(size, fn);
        },
      };
      try {
        await onEntry(entry, body);
      } catch (err) {
        throw HakoError.wrap(err, name);
      }
      if (!consumed) await src.stream(size, () => {});
      await src.read(pad(size));
    }
  } finally {
    await src.close();
  }
}

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}
