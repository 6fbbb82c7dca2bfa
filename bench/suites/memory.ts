// Memory per idle pod, as Kata measures it: start N idle containers, let them
// settle, sum the PSS of every host process the runtime started, divide by N.

import { ctrRun, IMAGE, ID_PREFIX, removeContainer } from '../lib/ctr.js';
import { describeFailure, sleep } from '../lib/proc.js';
import { hakoSandboxDirs, measurePss, runtimeProcesses } from '../lib/pss.js';
import { runtime, type RuntimeName } from '../lib/runtimes.js';
import { summarize, type Summary } from '../lib/stats.js';
import { guestPhases, readGuestTimes, type GuestTimes } from '../lib/guest-console.js';
import { notMeasured, type Measured, type Memory } from '../lib/types.js';

/** MemoryOptions sets the number of containers and how long they settle before measuring. */
export interface MemoryOptions {
  n: number;
  settleMs: number;
  /** deadlineMs bounds the whole measurement including starts. */
  deadlineMs: number;
  progress: (line: string) => void;
}

/** measureMemory starts opts.n `sleep 3600` containers and reports their runtime's PSS. */
export async function measureMemory(name: RuntimeName, opts: MemoryOptions): Promise<Measured<Memory>> {
  const rt = runtime(name);
  const t0 = Date.now();
  const before = await hakoSandboxDirs();
  const ids: string[] = [];
  const startMs: number[] = [];
  try {
    for (let i = 0; i < opts.n; i++) {
      if (Date.now() - t0 > opts.deadlineMs) break;
      const id = `${ID_PREFIX}${name}-mem-${process.pid}-${i}`;
      ids.push(id);
      const args = ['run', '-d', ...rt.ctrArgs, IMAGE, id, 'sleep', '3600'];
      const r = await ctrRun(args, id, rt.timeoutMs);
      if (r.code !== 0) return notMeasured(`container ${i + 1} of ${opts.n} did not start: ${describeFailure(['ctr', ...args], r)}`);
      startMs.push(r.ms);
      opts.progress(`  ${name} idle container ${i + 1}/${opts.n} started in ${r.ms.toFixed(0)} ms`);
    }
    const n = startMs.length;
    if (n === 0) return notMeasured('no container started within the deadline');
    await sleep(opts.settleMs);
    const procs = await runtimeProcesses(ids, before);
    const pss = await measurePss(procs);
    if (pss.shares.length === 0) return notMeasured('found no host processes for the containers');
    const guests = (await Promise.all(ids.map(readGuestTimes))).filter((g): g is GuestTimes => g !== undefined);
    const phases = Object.entries(guestPhases(guests)).map(([k, v]) => [k, summarize(v)] as [string, Summary]);
    return {
      ok: true,
      n,
      settleMs: opts.settleMs,
      totalPssKiB: pss.total,
      perContainerKiB: Math.round(pss.total / n),
      byName: pss.byName,
      processes: pss.shares,
      startMs: summarize(startMs),
      ...(phases.length > 0 ? { guestPhases: Object.fromEntries(phases) } : {}),
    };
  } finally {
    for (const id of ids) await removeContainer(id);
  }
}
