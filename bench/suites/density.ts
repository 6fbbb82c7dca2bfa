// Density: start idle containers one by one until start latency doubles against
// the first, free memory runs low, or a count/time bound is hit; report why it stopped.

import { ctrRun, IMAGE, ID_PREFIX, removeContainer } from '../lib/ctr.js';
import { describeFailure } from '../lib/proc.js';
import { hakoSandboxDirs, measurePss, memAvailableMiB, runtimeProcesses } from '../lib/pss.js';
import { runtime, type RuntimeName } from '../lib/runtimes.js';
import { notMeasured, type Density, type Measured } from '../lib/types.js';

/** DensityOptions bounds the density run. */
export interface DensityOptions {
  maxCount: number;
  maxMs: number;
  /** minFreeMiB stops the run when MemAvailable would drop below it. */
  minFreeMiB: number;
  progress: (line: string) => void;
}

/** measureDensity starts idle containers until a stop condition holds, then removes them all. */
export async function measureDensity(name: RuntimeName, opts: DensityOptions): Promise<Measured<Density>> {
  const rt = runtime(name);
  const t0 = Date.now();
  const before = await hakoSandboxDirs();
  const ids: string[] = [];
  const startMs: number[] = [];
  const freeMiB: number[] = [await memAvailableMiB()];
  let stoppedBecause = '';
  try {
    for (let i = 0; ; i++) {
      if (i >= opts.maxCount) { stoppedBecause = `count bound reached (${opts.maxCount})`; break; }
      if (Date.now() - t0 >= opts.maxMs) { stoppedBecause = `time bound reached (${Math.round(opts.maxMs / 1000)} s)`; break; }
      const free = freeMiB[freeMiB.length - 1]!;
      if (free < opts.minFreeMiB) { stoppedBecause = `memory low (MemAvailable ${free} MiB < ${opts.minFreeMiB} MiB)`; break; }
      const id = `${ID_PREFIX}${name}-dens-${process.pid}-${i}`;
      ids.push(id);
      const args = ['run', '-d', ...rt.ctrArgs, IMAGE, id, 'sleep', '3600'];
      const r = await ctrRun(args, id, rt.timeoutMs);
      if (r.code !== 0) {
        if (i === 0) return notMeasured(describeFailure(['ctr', ...args], r));
        stoppedBecause = `start ${i + 1} failed: ${describeFailure(['ctr', 'run'], r)}`;
        break;
      }
      startMs.push(Math.round(r.ms));
      freeMiB.push(await memAvailableMiB());
      opts.progress(`  ${name} density #${i + 1}: start ${r.ms.toFixed(0)} ms, MemAvailable ${freeMiB[freeMiB.length - 1]} MiB`);
      if (i > 0 && r.ms >= 2 * startMs[0]!) {
        stoppedBecause = `start latency doubled (${r.ms.toFixed(0)} ms vs first ${startMs[0]} ms)`;
        break;
      }
    }
    const count = startMs.length;
    const pss = count > 0 ? await measurePss(await runtimeProcesses(ids, before)) : undefined;
    return {
      ok: true,
      count,
      stoppedBecause,
      startMs,
      memAvailableMiB: freeMiB,
      elapsedMs: Date.now() - t0,
      ...(pss && count > 0 ? { perContainerPssKiB: Math.round(pss.total / count) } : {}),
    };
  } finally {
    for (const id of ids) await removeContainer(id);
  }
}
