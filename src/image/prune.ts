// Removes guest assets that no longer match the current inputs (old kernels and
// root images) and temporaries left by crashed builds. Never runs by itself.

import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccelPreference } from '../hypervisor/index.js';
import type { Logger } from '../log/index.js';
import { kernelInputs } from './kernel.js';
import { cacheLayout } from './paths.js';
import { rootInputs } from './root-image.js';

/** PruneOptions configures pruneAssets. */
export interface PruneOptions {
  log: Logger;
  cacheDir?: string;
  agentFile?: string;
  /** accel and qemuBinary name the current root image's key, as ensureAssets was given them. */
  accel?: AccelPreference;
  qemuBinary?: string;
  signal?: AbortSignal;
  /** dryRun lists what would be removed without removing it. */
  dryRun?: boolean;
}

/**
 * pruneAssets deletes kernel/<hash> and root/<hash> directories other than the
 * current ones, and *.tmp-<pid>-* / *.old-<pid>-* leftovers whose process is gone.
 * A running VM keeps its open root image alive (Linux unlink semantics), but a
 * saved VM snapshot that names an old image will no longer restore, so call
 * this only on an explicit request (`hako image prune`). Returns removed paths.
 */
export async function pruneAssets(opts: PruneOptions): Promise<string[]> {
  const layout = cacheLayout(opts.cacheDir);
  const keep = new Set<string>();
  keep.add((await kernelInputs(opts)).hash);
  try {
    keep.add((await rootInputs(opts)).hash);
  } catch (err) {
    // Without an agent bundle there is no current root to keep: keep every root.
    opts.log.warn('prune: cannot compute the current root image key; keeping all root images', { err });
    return pruneDir(join(layout.root, 'kernel'), keep, opts);
  }
  return [
    ...(await pruneDir(join(layout.root, 'kernel'), keep, opts)),
    ...(await pruneDir(join(layout.root, 'root'), keep, opts)),
    ...(await pruneLeftovers(layout.images, opts)),
  ];
}

async function pruneDir(dir: string, keep: Set<string>, opts: PruneOptions): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await list(dir)) {
    const leftover = leftoverPid(name);
    if (leftover !== undefined ? alive(leftover) : keep.has(name)) continue;
    removed.push(join(dir, name));
  }
  await remove(removed, opts);
  return removed;
}

async function pruneLeftovers(dir: string, opts: PruneOptions): Promise<string[]> {
  const removed = (await list(dir))
    .filter((name) => {
      const pid = leftoverPid(name);
      return pid !== undefined && !alive(pid);
    })
    .map((name) => join(dir, name));
  await remove(removed, opts);
  return removed;
}

async function remove(paths: string[], opts: PruneOptions): Promise<void> {
  for (const p of paths) {
    opts.signal?.throwIfAborted();
    opts.log.info(opts.dryRun ? 'prune: would remove' : 'prune: removing', { path: p });
    if (!opts.dryRun) await rm(p, { recursive: true, force: true });
  }
}

/** leftoverPid extracts the builder's pid from "<name>.tmp-<pid>-<rand>" or ".old-". */
function leftoverPid(name: string): number | undefined {
  const m = /\.(?:tmp|old)-(\d+)-[0-9a-f]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
