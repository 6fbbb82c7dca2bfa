// The factory keeps template RAM on tmpfs, so that clones share its pages through the page cache
// and nothing touches a disk. Where the state dir is not tmpfs, hako mounts its own there.

import { mkdir, statfs } from 'node:fs/promises';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { run } from '../image/run.js';
import { readMounts } from '../storage/index.js';

/** TMPFS_MAGIC is statfs's f_type of tmpfs (linux/magic.h). */
export const TMPFS_MAGIC = 0x01021994;

/** isTmpfs reports whether dir is on tmpfs. */
export async function isTmpfs(dir: string): Promise<boolean> {
  return (await statfs(dir)).type === TMPFS_MAGIC;
}

/**
 * ensureTmpfs creates dir (0700) and, unless it already is on tmpfs, mounts a private tmpfs
 * there (mode 0700, nosuid, nodev, noexec). Resolves with whether it mounted one.
 */
export async function ensureTmpfs(dir: string, log: Logger): Promise<boolean> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (await isTmpfs(dir)) return false;
  try {
    await run(['mount', '-t', 'tmpfs', '-o', 'mode=0700,nosuid,nodev,noexec', 'hako-factory', dir], { timeoutMs: 10_000 });
  } catch (err) {
    // Two processes may race to mount: the loser finds the winner's tmpfs.
    if (await isTmpfs(dir)) return false;
    throw HakoError.wrap(err, `mounting a tmpfs for VM templates at ${dir}`);
  }
  if (!(await isTmpfs(dir))) throw errorf(Code.INTERNAL, `${dir} is still not on tmpfs after mounting one`);
  log.info('mounted a tmpfs for VM templates', { dir });
  return true;
}

/** unmountOwnTmpfs lazily unmounts the tmpfs hako mounted at dir (clones keep their mappings). */
export async function unmountOwnTmpfs(dir: string): Promise<boolean> {
  const mine = (await readMounts()).some((m) => m.mountPoint === dir && m.fsType === 'tmpfs' && m.source === 'hako-factory');
  if (!mine) return false;
  await run(['umount', '-l', '--', dir], { timeoutMs: 10_000 });
  return true;
}
