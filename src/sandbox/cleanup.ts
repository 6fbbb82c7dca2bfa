// cleanupSandbox: remove every trace of a sandbox from the host without needing its Sandbox
// object: kill a leftover QEMU, unmount everything below its directory, delete the directory.

import { rm, stat } from 'node:fs/promises';
import { Code, HakoError, errorf } from '../errors/index.js';
import { nullLogger, type Logger } from '../log/index.js';
import { killLeftoverVm } from '../hypervisor/qemu/index.js';
import { unmountAll } from '../storage/index.js';
import { cleanupNetwork } from './network-cleanup.js';
import { sandboxPaths } from './paths.js';

/** CleanupOptions configures cleanupSandbox. */
export interface CleanupOptions {
  /** stateDir is runtime.state_dir (default /run/hako). */
  stateDir?: string;
  log?: Logger;
}

/** DEFAULT_STATE_DIR is runtime.state_dir's default. */
export const DEFAULT_STATE_DIR = '/run/hako';

/**
 * cleanupSandbox kills the sandbox's QEMU if one still runs (checked by pidfile and cmdline, in <dir>/vm),
 * unmounts everything under its directory (share binds, volumes, overlays) deepest first,
 * and removes the directory. It never deletes through a mount: if something stays mounted
 * it throws and leaves the directory. Resolves whether there was anything to clean.
 */
export async function cleanupSandbox(id: string, opts: CleanupOptions = {}): Promise<boolean> {
  const log = (opts.log ?? nullLogger).child({ sandbox: id, subsystem: 'cleanup' });
  const { dir, vm } = sandboxPaths(opts.stateDir ?? DEFAULT_STATE_DIR, id);
  const exists = await stat(dir).then(() => true, () => false);
  if (!exists) return false;
  const problems: string[] = [];
  // The VM lives in <dir>/vm; sandboxes made before the factory kept QEMU's files in <dir> itself.
  for (const runtimeDir of [vm, dir]) {
    try {
      const pid = await killLeftoverVm(runtimeDir, { log });
      if (pid !== undefined) log.info('killed leftover qemu', { pid });
    } catch (err) {
      problems.push(HakoError.from(err).message);
    }
  }
  // After QEMU: its taps are gone with it; the mirrors in a joined namespace and the holder remain.
  problems.push(...(await cleanupNetwork(dir, log)));
  try {
    const n = await unmountAll(dir, log);
    if (n > 0) log.debug('unmounted', { count: n });
  } catch (err) {
    // Still mounted: deleting now would delete through the mount into the host's files.
    throw HakoError.wrap(err, `cleaning up sandbox ${id}`);
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  if (problems.length > 0) throw errorf(Code.INTERNAL, `cleaning up sandbox ${id}: ${problems.join('; ')}`);
  return true;
}
