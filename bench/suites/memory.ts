// Memory per idle pod, as Kata measures it: start N idle containers, let them settle, sum the
// PSS of every host process the runtime started, divide by N; the warm pool's own share apart.

import { ctrRun, IMAGE, ID_PREFIX, removeContainer } from '../lib/ctr.js';
import { describeFailure, sleep } from '../lib/proc.js';
import { hakoSandboxDirs, measurePss, poolOverheadProcesses, runtimeProcesses } from '../lib/pss.js';
import { runtime, type RuntimeName } from '../lib/runtimes.js';
import { summarize, type Summary } from '../lib/stats.js';
import { guestPhases, readGuestTimes, type GuestTimes } from '../lib/guest-console.js';
import { hakoRow, type HakoMode } from '../lib/hako-modes.js';
import { countSources, sandboxVmSource } from '../lib/vm-source.js';
import { notMeasured, type Measured, type Memory, type PoolOverhead } from '../lib/types.js';

/** MemoryOptions sets the number of containers and how long they settle before measuring. */
export interface MemoryOptions {
  n: number;
  settleMs: number;
  /** deadlineMs bounds the whole measurement including starts. */
  deadlineMs: number;
  progress: (line: string) => void;
  mode?: HakoMode;
  /** waitReady runs before each start and before the PSS is read (pool mode waits for a full pool). */
  waitReady?: () => Promise<void>;
  /** poolDaemonPid is the warm pool daemon (pool mode): its own PSS is reported apart. */
  poolDaemonPid?: number;
}

/** measureMemory starts opts.n `sleep 3600` containers and reports their runtime's PSS. */
export async function measureMemory(name: RuntimeName, opts: MemoryOptions): Promise<Measured<Memory>> {
  const rt = runtime(name);
  const row = name === 'hako' && opts.mode !== undefined ? hakoRow(opts.mode) : name;
  const t0 = Date.now();
  const before = await hakoSandboxDirs();
  const ids: string[] = [];
  const startMs: number[] = [];
  try {
    for (let i = 0; i < opts.n; i++) {
      if (Date.now() - t0 > opts.deadlineMs) break;
      const id = `${ID_PREFIX}${row}-mem-${process.pid}-${i}`;
      ids.push(id);
      const args = ['run', '-d', ...rt.ctrArgs, IMAGE, id, 'sleep', '3600'];
      await opts.waitReady?.();
      const r = await ctrRun(args, id, rt.timeoutMs);
      if (r.code !== 0) return notMeasured(`container ${i + 1} of ${opts.n} did not start: ${describeFailure(['ctr', ...args], r)}`);
      startMs.push(r.ms);
      opts.progress(`  ${row} idle container ${i + 1}/${opts.n} started in ${r.ms.toFixed(0)} ms`);
    }
    const n = startMs.length;
    if (n === 0) return notMeasured('no container started within the deadline');
    // The pool refills after the last take: measure it full, as it stands between bursts.
    await opts.waitReady?.();
    await sleep(opts.settleMs);
    const procs = await runtimeProcesses(ids, before);
    const [pss, overhead] = await Promise.all([measurePss(procs), opts.poolDaemonPid !== undefined ? measureOverhead(opts.poolDaemonPid, new Set(procs.map((p) => p.pid))) : undefined]);
    if (pss.shares.length === 0) return notMeasured('found no host processes for the containers');
    const guests = (await Promise.all(ids.map(readGuestTimes))).filter((g): g is GuestTimes => g !== undefined);
    const phases = Object.entries(guestPhases(guests)).map(([k, v]) => [k, summarize(v)] as [string, Summary]);
    const sources = name === 'hako' ? countSources(await Promise.all(ids.map(sandboxVmSource))) : undefined;
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
      ...(sources !== undefined ? { vmSources: sources } : {}),
      ...(overhead !== undefined ? { poolOverhead: overhead } : {}),
    };
  } finally {
    for (const id of ids) await removeContainer(id);
  }
}

// measureOverhead reads the PSS of the pool daemon's own processes (none of the pods' counted twice).
async function measureOverhead(daemonPid: number, counted: ReadonlySet<number>): Promise<PoolOverhead> {
  const { procs, warmVms } = await poolOverheadProcesses(daemonPid);
  const pss = await measurePss(procs.filter((p) => !counted.has(p.pid)));
  return { pssKiB: pss.total, byName: pss.byName, processes: pss.shares, warmVms };
}
