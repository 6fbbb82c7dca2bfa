// Host mount operations for sandboxes: bind mounts (read-only by remount), overlayfs, and
// unmounting everything below a directory deepest first, with a lazy detach as the last resort.

import { lstat } from 'node:fs/promises';
import { isAbsolute, normalize, sep } from 'node:path';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { execTool } from './exec.js';
import { mountsUnder, readMounts } from './mountinfo.js';

/**
 * assertNoSymlinks checks that no component of path below trustedRoot is a symlink, so a
 * mount onto path cannot be redirected elsewhere on the host by whoever writes below root.
 */
export async function assertNoSymlinks(trustedRoot: string, path: string): Promise<void> {
  const root = normalize(trustedRoot);
  const p = normalize(path);
  if (!isAbsolute(p) || !(p === root || p.startsWith(root + sep))) {
    throw errorf(Code.INVALID_ARGUMENT, `mount target ${path} is not below ${trustedRoot}`);
  }
  let cur = root;
  for (const part of p.slice(root.length).split(sep).filter((x) => x !== '')) {
    cur += sep + part;
    const st = await lstat(cur);
    if (st.isSymbolicLink()) throw errorf(Code.PERMISSION_DENIED, `refusing to mount onto ${path}: ${cur} is a symlink`);
  }
}

/** BindOptions tunes bindMount. */
export interface BindOptions {
  readonly?: boolean;
  /** trustedRoot is the directory target must stay inside without symlinks. */
  trustedRoot: string;
}

/**
 * bindMount binds source (recursively, with its submounts) onto target, marks the new mount
 * private so nothing propagates back to the host, and remounts it read-only if asked.
 */
export async function bindMount(source: string, target: string, opts: BindOptions): Promise<void> {
  await assertNoSymlinks(opts.trustedRoot, target);
  await execTool(['mount', '--rbind', '--', source, target]);
  try {
    await execTool(['mount', '--make-rprivate', '--', target]);
    // A bind mount takes no `ro` on its first mount(2) call: it needs the remount.
    if (opts.readonly) await execTool(['mount', '-o', 'remount,bind,ro', '--', target]);
  } catch (err) {
    await execTool(['umount', '-l', '--', target]).catch(() => {});
    throw err;
  }
}

/** OverlayOptions names the directories of an overlayfs mount. */
export interface OverlayOptions {
  lower: string[];
  upper: string;
  work: string;
  target: string;
  trustedRoot: string;
}

/** overlayMount mounts overlayfs at target: lower layers read-only, writes go to upper. */
export async function overlayMount(o: OverlayOptions): Promise<void> {
  await assertNoSymlinks(o.trustedRoot, o.target);
  for (const p of [...o.lower, o.upper, o.work]) {
    // overlayfs options are comma and colon separated; such paths cannot be expressed.
    if (/[,:]/.test(p)) throw errorf(Code.INVALID_ARGUMENT, `overlay path ${p} contains ',' or ':'`);
  }
  const data = `lowerdir=${o.lower.join(':')},upperdir=${o.upper},workdir=${o.work}`;
  await execTool(['mount', '-t', 'overlay', '-o', data, '--', 'overlay', o.target]);
}

/** unmount unmounts target; if it stays busy it is lazily detached (it vanishes when idle). */
export async function unmount(target: string, log?: Logger): Promise<void> {
  try {
    await execTool(['umount', '--', target]);
  } catch (err) {
    const msg = HakoError.from(err).message;
    if (/not mounted|no mount point|not found/i.test(msg)) return;
    log?.warn('unmount failed, detaching lazily', { target, err });
    await execTool(['umount', '-l', '--', target]);
  }
}

/**
 * unmountAll unmounts every mount at or below dir, children first. It throws when
 * something is still mounted afterwards, so callers never delete through a mount.
 */
export async function unmountAll(dir: string, log?: Logger): Promise<number> {
  const root = normalize(dir);
  let count = 0;
  // Stacked and propagated mounts can reveal more mounts after one pass: loop a few times.
  for (let pass = 0; pass < 4; pass++) {
    const targets = mountsUnder(await readMounts(), root);
    if (targets.length === 0) return count;
    for (const t of targets) {
      try {
        await unmount(t, log);
        count++;
      } catch (err) {
        log?.warn('unmount failed', { target: t, err });
      }
    }
  }
  const left = mountsUnder(await readMounts(), root);
  if (left.length > 0) throw errorf(Code.INTERNAL, `still mounted after unmounting: ${left.join(', ')}`);
  return count;
}
