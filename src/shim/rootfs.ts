// Mounting containerd's rootfs[] entries onto <bundle>/rootfs, and unmounting them.
// Entries are bind/rbind mounts or overlays; containerd leaves `target` empty.

import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Code, HakoError } from '../errors/index.js';

const run = promisify(execFile);

/** RootfsMount is one containerd.types.Mount. */
export interface RootfsMount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

/** MOUNT_TIMEOUT_MS bounds one mount(8) or umount(8) call. */
const MOUNT_TIMEOUT_MS = 30_000;

/** mountArgs returns the mount(8) argument list for one entry onto target. */
export function mountArgs(m: RootfsMount, target: string): string[] {
  if (m.target !== undefined && m.target !== '') throw new HakoError(Code.INVALID_ARGUMENT, `rootfs: mount target must be empty, got "${m.target}"`);
  if (m.type === 'bind' || m.type === 'rbind') {
    if (!m.source.startsWith('/')) throw new HakoError(Code.INVALID_ARGUMENT, `rootfs: bind source must be an absolute path, got "${m.source}"`);
    const rec = m.type === 'rbind' || m.options.includes('rbind');
    const rest = m.options.filter((o) => o !== 'rbind' && o !== 'bind');
    const args = [rec ? '--rbind' : '--bind'];
    if (rest.length) args.push('-o', rest.join(','));
    return [...args, m.source, target];
  }
  if (m.type === 'overlay') {
    const opts = m.options;
    if (!opts.some((o) => o.startsWith('lowerdir='))) throw new HakoError(Code.INVALID_ARGUMENT, 'rootfs: overlay mount needs a lowerdir= option');
    for (const o of opts) {
      if (o.includes(',')) throw new HakoError(Code.INVALID_ARGUMENT, `rootfs: overlay option "${o}" contains a comma`);
    }
    return ['-t', 'overlay', '-o', opts.join(','), m.source || 'overlay', target];
  }
  throw new HakoError(Code.INVALID_ARGUMENT, `rootfs: unsupported mount type "${m.type}" (want bind, rbind or overlay)`);
}

/**
 * mountRootfs mounts the entries in order onto target (created if missing). A bind with
 * `ro` is remounted read-only afterwards, since the first bind ignores ro. On failure,
 * what was mounted is unmounted before the error is thrown.
 */
export async function mountRootfs(mounts: RootfsMount[], target: string): Promise<void> {
  await mkdir(target, { recursive: true, mode: 0o711 });
  let done = 0;
  try {
    for (const m of mounts) {
      await run('mount', mountArgs(m, target), { timeout: MOUNT_TIMEOUT_MS });
      done++;
      if ((m.type === 'bind' || m.type === 'rbind') && m.options.includes('ro')) {
        await run('mount', ['-o', 'remount,bind,ro', target], { timeout: MOUNT_TIMEOUT_MS });
      }
    }
  } catch (err) {
    if (done > 0) await unmountAll(target).catch(() => {});
    const e = err as { stderr?: string; message: string };
    throw new HakoError(Code.INTERNAL, `rootfs: mount onto ${target} failed: ${(e.stderr || e.message).trim()}`, { cause: err });
  }
}

/** isMountPoint reports whether path is a mount point, from /proc/self/mountinfo. */
export async function isMountPoint(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => unescapeMount(line.split(' ')[4] ?? '') === path);
}

/** unmountAll unmounts target until it is no longer a mount point (lazily if busy). */
export async function unmountAll(target: string): Promise<void> {
  for (let i = 0; i < 32 && (await isMountPoint(target)); i++) {
    try {
      await run('umount', [target], { timeout: MOUNT_TIMEOUT_MS });
    } catch {
      await run('umount', ['-l', target], { timeout: MOUNT_TIMEOUT_MS }).catch(() => {});
    }
  }
  if (await isMountPoint(target)) throw new HakoError(Code.INTERNAL, `rootfs: ${target} is still mounted`);
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
