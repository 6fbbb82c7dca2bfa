// The factory keeps template RAM on tmpfs, so that clones share its pages through the page cache
// and nothing touches a disk. Where the state dir is not tmpfs, hako mounts its own there.

import { mkdir, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { withLock } from '../image/lock.js';
import { run } from '../image/run.js';
import { readMounts } from '../storage/index.js';

// One mount attempt per directory in this process; the flock covers other processes.
const mounting = new Map<string, Promise<boolean>>();

/** TMPFS_MAGIC is statfs's f_type of tmpfs (linux/magic.h). */
export const TMPFS_MAGIC = 0x01021994;

/** isTmpfs reports whether dir is on tmpfs. */
export async function isTmpfs(dir: string): Promise<boolean> {
  return (await statfs(dir)).type === TMPFS_MAGIC;
}

/**
 * ensureTmpfs creates dir (0700) and, unless it already is on tmpfs, mounts a private tmpfs
 * there (mode 0700, nosuid, nodev, noexec). Resolves with whether it mounted one. The check and
 * the mount run under a lock next to dir: two starts mounting at once would stack two tmpfs,
 * and the files of the lower one would vanish under the other's feet.
 */
export async function ensureTmpfs(dir: string, log: Logger): Promise<boolean> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (await isTmpfs(dir)) return false;
  let p = mounting.get(dir);
  if (p === undefined) {
    p = withLock(join(dirname(dir), '.factory-mount.lock'), { timeoutMs: 30_000 }, () => mountTmpfs(dir, log)).finally(() => mounting.delete(dir));
    mounting.set(dir, p);
  }
  return p;
}

async function mountTmpfs(dir: string, log: Logger): Promise<boolean> {
  if (await isTmpfs(dir)) return false;
  try {
    await run(['mount', '-t', 'tmpfs', '-o', 'mode=0700,nosuid,nodev,noexec', 'hako-factory', dir], { timeoutMs: 10_000 });
  } catch (err) {
    throw HakoError.wrap(err, `mounting a tmpfs for VM templates at ${dir}`);
  }
  if (!(await isTmpfs(dir))) throw errorf(Code.INTERNAL, `${dir} is still not on tmpfs after mounting one`);
  log.info('mounted a tmpfs for VM templates', { dir });
  return true;
}

/** unmountOwnTmpfs lazily unmounts the tmpfs hako mounted at dir (clones keep their mappings), every layer of it. */
export async function unmountOwnTmpfs(dir: string): Promise<boolean> {
  let unmounted = false;
  for (let i = 0; i < 16; i++) {
    const mine = (await readMounts()).some((m) => m.mountPoint === dir && m.fsType === 'tmpfs' && m.source === 'hako-factory');
    if (!mine) break;
    await run(['umount', '-l', '--', dir], { timeoutMs: 10_000 });
    unmounted = true;
  }
  return unmounted;
}
