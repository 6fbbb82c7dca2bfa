// A container's own cgroup in the guest, /sys/fs/cgroup/<id>: made at CreateContainer with a low CPU
// weight and its controllers delegated to crun's leaf, removed at RemoveContainer.

import { access, mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import type { Logger } from '../../log/index.js';

/**
 * CONTAINER_CPU_WEIGHT is the cpu.weight of each container's own cgroup (the default is 100, a nice-0
 * task's share): the agent in the root cgroup then wins the CPU from a busy container whenever it has
 * work, such as answering the host or moving the container's output. Containers keep equal shares among
 * themselves, and any CPU the agent leaves. Measured on one vCPU (bench/guest-paths.js): a Check beside a
 * busy loop 7-9 ms -> 2-4 ms, while `yes` streams its stdout 50-80 ms -> 3-6 ms. The price: a container
 * writing stdout as fast as it can gets less CPU, and throughput fell from 3.6-5 MB/s to 1.3-2.2 MB/s
 * (with output-buffer.ts's coalescing and pipe-gate.ts's pacing, which won some of it back).
 */
export const CONTAINER_CPU_WEIGHT = 10;

/** makeCgroup creates the container's own cgroup (CPU weight CONTAINER_CPU_WEIGHT) and delegates its controllers to crun's child. */
export async function makeCgroup(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const controllers = (await readFile(`${dir}/cgroup.controllers`, 'utf8')).trim().split(/\s+/).filter((c) => c !== '');
  if (controllers.length > 0) await writeFile(`${dir}/cgroup.subtree_control`, controllers.map((c) => `+${c}`).join(' '));
  if (controllers.includes('cpu')) await writeFile(`${dir}/cpu.weight`, String(CONTAINER_CPU_WEIGHT));
}

/** removeCgroup removes a container's cgroup once crun is done with it, retrying while it is busy. */
export async function removeCgroup(dir: string, log: Logger): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      // crun removes its leaf when it deletes the container; remove what is left, children first.
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await rmdir(`${dir}/${e.name}`).catch(() => {});
      }
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') break;
      await sleep(100);
    }
  }
  await access(dir).then(() => log.warn('could not remove the container cgroup', { dir }), () => {});
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
