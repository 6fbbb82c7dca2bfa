// Atomic installation of a built asset directory: fill a temporary sibling, then
// rename it into place, so readers never see a half-written asset.

import { randomBytes } from 'node:crypto';
import { access, lstat, mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * installDir builds dir by calling fill on a temporary sibling and renaming it
 * into place. An existing dir (a forced rebuild) is moved aside first and removed
 * after the swap. If another process installs the same dir concurrently, the
 * first rename wins and this copy is discarded: both are built from the same key.
 */
export async function installDir(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = `${dir}.tmp-${tag}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
    const old = `${dir}.old-${tag}`;
    let movedAside = false;
    try {
      await rename(dir, old);
      movedAside = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      await rename(tmp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      // Someone else installed it between our two renames: keep theirs.
    }
    if (movedAside) await rm(old, { recursive: true, force: true });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** tempSibling names a unique temporary path next to path (for files built before a rename). */
export function tempSibling(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** pathExists reports whether path exists (with noFollow, a dangling symlink counts). */
export async function pathExists(path: string, noFollow = false): Promise<boolean> {
  try {
    await (noFollow ? lstat(path) : access(path));
    return true;
  } catch {
    return false;
  }
}
