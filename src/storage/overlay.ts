// A container's writable view of an unpacked image: overlayfs with the cached rootfs as the
// read-only lower layer and upper/work directories in the sandbox directory.

import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/index.js';
import { overlayMount, unmountAll } from './mount.js';
import { validId } from './share.js';

/** ContainerRootfs is a mounted writable rootfs for one container. */
export interface ContainerRootfs {
  /** path is the merged view to hand to Sandbox.createContainer. */
  path: string;
  /** dir holds upper/, work/ and the mount point; remove() deletes it. */
  dir: string;
  remove(): Promise<void>;
}

/** mountContainerRootfs mounts <sandboxDir>/rootfs/<cid>/merged over lower (an unpacked image). */
export async function mountContainerRootfs(sandboxDir: string, cid: string, lower: string, log: Logger): Promise<ContainerRootfs> {
  validId(cid);
  const dir = join(sandboxDir, 'rootfs', cid);
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  const merged = join(dir, 'merged');
  for (const d of [upper, work, merged]) await mkdir(d, { recursive: true, mode: 0o755 });
  await overlayMount({ lower: [lower], upper, work, target: merged, trustedRoot: sandboxDir });
  log.child({ subsystem: 'storage' }).debug('container rootfs mounted', { container: cid, lower, merged });
  return {
    path: merged,
    dir,
    remove: async () => {
      await unmountAll(dir, log);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
