// Applying one OCI layer (a tar stream) onto a rootfs directory: create members without ever
// following a symlink out of the root, and honour whiteouts (`.wh.name`, `.wh..wh..opq`).

import { constants as fsc } from 'node:fs';
import { lchown, link, lstat, lutimes, mkdir, open, readdir, rm, symlink, chmod } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Code, errorf } from '../errors/index.js';
import { execTool } from './exec.js';
import { cleanRelative, secureJoin } from './secure-path.js';
import { readTar, type TarEntry, type TarBody } from './tar-reader.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** LayerStats counts what one layer did; unpack logs it. */
export interface LayerStats {
  entries: number;
  whiteouts: number;
  /** skipped counts members hako cannot reproduce (xattrs are not copied). */
  xattrsIgnored: number;
}

/** applyLayer extracts the uncompressed tar stream of one layer onto root (which exists). */
export async function applyLayer(root: string, tar: AsyncIterable<Buffer | Uint8Array | string>): Promise<LayerStats> {
  const stats: LayerStats = { entries: 0, whiteouts: 0, xattrsIgnored: 0 };
  // Paths this layer created: an opaque whiteout hides only what lower layers put there.
  const created = new Set<string>();
  await readTar(tar, async (entry, body) => {
    const rel = cleanRelative(entry.name);
    if (rel === null) throw errorf(Code.INVALID_ARGUMENT, `layer member ${JSON.stringify(entry.name)} climbs out of the root`);
    if (rel === '') return; // the root directory itself keeps its own attributes
    stats.entries++;
    const base = basename(rel);
    const parentRel = dirname(rel) === '.' ? '' : dirname(rel);
    if (base === OPAQUE) {
      stats.whiteouts++;
      await opaque(root, parentRel, created);
      return;
    }
    if (base.startsWith(WHITEOUT)) {
      stats.whiteouts++;
      const parent = await secureJoin(root, parentRel);
      await rm(join(parent, base.slice(WHITEOUT.length)), { recursive: true, force: true });
      return;
    }
    created.add(rel);
    if (Object.keys(entry.xattrs).length > 0) stats.xattrsIgnored++;
    const parent = await secureJoin(root, parentRel);
    await mkdir(parent, { recursive: true, mode: 0o755 });
    await createMember(root, join(parent, base), entry, body);
  });
  return stats;
}

async function opaque(root: string, dirRel: string, created: Set<string>): Promise<void> {
  const dir = await secureJoin(root, dirRel);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const name of names) {
    const rel = dirRel === '' ? name : `${dirRel}/${name}`;
    if (!created.has(rel)) await rm(join(dir, name), { recursive: true, force: true });
  }
}

async function createMember(root: string, target: string, entry: TarEntry, body: TarBody): Promise<void> {
  // Replace whatever a lower layer left there, unless both are directories (then merge).
  const existing = await lstat(target).catch(() => null);
  if (existing && !(existing.isDirectory() && entry.type === 'dir')) await rm(target, { recursive: true, force: true });
  switch (entry.type) {
    case 'dir':
      if (!existing?.isDirectory()) await mkdir(target, { mode: 0o700 });
      break;
    case 'file': {
      // O_NOFOLLOW|O_EXCL: the path was just cleared, so anything there now is a race; refuse it.
      const fh = await open(target, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
      try {
        await body.pipe(async (chunk) => {
          let off = 0;
          while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
        });
      } finally {
        await fh.close();
      }
      break;
    }
    case 'symlink':
      await symlink(entry.linkName, target);
      break;
    case 'hardlink': {
      const rel = cleanRelative(entry.linkName);
      if (rel === null || rel === '') throw errorf(Code.INVALID_ARGUMENT, `hard link to ${JSON.stringify(entry.linkName)} leaves the root`);
      // The link names an archive member: resolve its directory inside root, not the member itself.
      const srcParent = await secureJoin(root, dirname(rel) === '.' ? '' : dirname(rel));
      await link(join(srcParent, basename(rel)), target);
      return; // a hard link shares the inode's owner, mode and times
    }
    case 'char':
    case 'block':
      await execTool(['mknod', target, entry.type === 'char' ? 'c' : 'b', String(entry.devMajor), String(entry.devMinor)]);
      break;
    case 'fifo':
      await execTool(['mkfifo', target]);
      break;
  }
  await lchown(target, entry.uid, entry.gid);
  // chmod after chown: chown clears set-id bits. Symlinks have no mode of their own.
  if (entry.type !== 'symlink') await chmod(target, entry.mode);
  await lutimes(target, entry.mtime, entry.mtime);
}
