// The per-sandbox 9p share: <sandbox>/shared is a read-only bind of <sandbox>/share-dirs, and each
// container's rootfs and volumes are bind-mounted below it, so the guest can write only into those.

import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { bindMount, unmountAll } from './mount.js';
import { isUnder, readMounts } from './mountinfo.js';

/** SHARE_TAG is the 9p mount tag of every sandbox share (docs/guest-contract.md). */
export const SHARE_TAG = 'hakoshare';

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** validId checks a container id before it becomes a path component. */
export function validId(id: string, what = 'container id'): string {
  if (!ID_RE.test(id)) throw errorf(Code.INVALID_ARGUMENT, `${what} ${JSON.stringify(id)} must match ${ID_RE.source}`);
  return id;
}

/** Share manages one sandbox's shared directory. */
export class Share {
  /** path is the directory QEMU exports over 9p (`<sandbox>/shared`). */
  readonly path: string;
  /** dirs is the writable directory behind it, where the host creates mount points. */
  readonly dirs: string;

  private constructor(readonly sandboxDir: string, private readonly log: Logger) {
    this.path = join(sandboxDir, 'shared');
    this.dirs = join(sandboxDir, 'share-dirs');
  }

  /**
   * create makes the share of sandboxDir. The export itself is read-only, so a guest cannot
   * plant symlinks where the host later mounts; only the bind mounts below it are writable.
   */
  static async create(sandboxDir: string, log: Logger): Promise<Share> {
    const s = new Share(sandboxDir, log.child({ subsystem: 'storage' }));
    await mkdir(s.dirs, { recursive: true, mode: 0o755 });
    await mkdir(s.path, { recursive: true, mode: 0o755 });
    const mounted = (await readMounts()).some((m) => m.mountPoint === s.path);
    if (!mounted) await bindMount(s.dirs, s.path, { readonly: true, trustedRoot: sandboxDir });
    return s;
  }

  /** open returns the Share of an existing sandbox directory without mounting anything. */
  static open(sandboxDir: string, log: Logger): Share {
    return new Share(sandboxDir, log.child({ subsystem: 'storage' }));
  }

  /** addRootfs bind-mounts hostRootfs at shared/<cid>/rootfs and returns the share-relative path. */
  async addRootfs(cid: string, hostRootfs: string): Promise<string> {
    validId(cid);
    const st = await stat(hostRootfs).catch(() => null);
    if (!st?.isDirectory()) throw errorf(Code.INVALID_ARGUMENT, `rootfs ${hostRootfs} is not a directory`);
    await mkdir(join(this.dirs, cid, 'rootfs'), { recursive: true, mode: 0o755 });
    await bindMount(hostRootfs, join(this.path, cid, 'rootfs'), { trustedRoot: this.sandboxDir });
    this.log.debug('rootfs shared', { container: cid, source: hostRootfs });
    return `${cid}/rootfs`;
  }

  /** addVolume bind-mounts a host file or directory at shared/<cid>/volumes/<n> (read-only if asked). */
  async addVolume(cid: string, n: number, hostPath: string, readonly: boolean): Promise<string> {
    validId(cid);
    if (!Number.isInteger(n) || n < 0) throw errorf(Code.INVALID_ARGUMENT, `volume index ${n}`);
    const st = await stat(hostPath).catch(() => null);
    if (!st) throw errorf(Code.NOT_FOUND, `volume source ${hostPath} does not exist`);
    const dir = join(this.dirs, cid, 'volumes');
    await mkdir(dir, { recursive: true, mode: 0o755 });
    // A bind mount needs a target of the same kind: a directory for a directory, a file for a file.
    if (st.isDirectory()) await mkdir(join(dir, String(n)), { mode: 0o755 });
    else await writeFile(join(dir, String(n)), '', { mode: 0o644, flag: 'wx' });
    await bindMount(hostPath, join(this.path, cid, 'volumes', String(n)), { readonly, trustedRoot: this.sandboxDir });
    this.log.debug('volume shared', { container: cid, n, source: hostPath, readonly });
    return `${cid}/volumes/${n}`;
  }

  /** removeContainer unmounts everything of cid from the share and deletes its mount points. */
  async removeContainer(cid: string): Promise<void> {
    validId(cid);
    await unmountAll(join(this.path, cid), this.log);
    await rm(join(this.dirs, cid), { recursive: true, force: true });
  }

  /** mounted lists the share's mount points (for state.json and diagnostics). */
  async mounted(): Promise<string[]> {
    return (await readMounts()).map((m) => m.mountPoint).filter((p) => isUnder(p, this.path));
  }
}
