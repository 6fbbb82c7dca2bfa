// Start latency with networking on and off, runs interleaved so both see the same machine: `ctr run
// --rm --cni … true` against `ctr run --rm … true`, and `hako run` with its default network against `--network none`.

import { ctrRun, IMAGE, ID_PREFIX, removeContainer } from '../lib/ctr.js';
import { sweepCniLeftovers } from '../lib/cni-leftovers.js';
import { hakoRow, type HakoMode } from '../lib/hako-modes.js';
import { netRuntime } from '../lib/net-container.js';
import { describeFailure, runCmd, type CmdResult } from '../lib/proc.js';
import { hakoCli, type RuntimeName } from '../lib/runtimes.js';
import { summarize } from '../lib/stats.js';
import { notMeasured, type Latency, type Measured, type NetStart } from '../lib/types.js';
import { countSources } from '../lib/vm-source.js';
import { bootPhases, parseMarks, runVmSource, type RunMarks } from './boot-marks.js';

/** NetStartOptions sets how many pairs of runs to time and to discard first, and hako's mode. */
export interface NetStartOptions {
  reps: number;
  warmup: number;
  progress: (line: string) => void;
  mode?: HakoMode;
  /** waitReady runs before each start, untimed (pool mode waits for a full pool). */
  waitReady?: () => Promise<void>;
}

/** HAKO_RUN_NET_ARGS and HAKO_RUN_NONE_ARGS are `hako run` with its default network and without (timing lines at info). */
export const HAKO_RUN_NET_ARGS = ['--log-level', 'info', 'run', '--rm', 'busybox', '--', 'true'];
export const HAKO_RUN_NONE_ARGS = ['--log-level', 'info', 'run', '--rm', '--network', 'none', 'busybox', '--', 'true'];

type Variant = 'network' | 'none';

/** Start runs one start of a variant (i counts the pair) and returns its result and, for hako run, its marks. */
type Start = (variant: Variant, i: number) => Promise<{ r: CmdResult; marks?: RunMarks }>;

async function interleaved(label: string, opts: NetStartOptions, start: Start): Promise<Measured<{ network: Latency; none: Latency; runs: Record<Variant, RunMarks[]> }>> {
  const samples: Record<Variant, number[]> = { network: [], none: [] };
  const runs: Record<Variant, RunMarks[]> = { network: [], none: [] };
  const failed: Record<Variant, number> = { network: 0, none: 0 };
  const first: Partial<Record<Variant, string>> = {};
  for (let i = 0; i < opts.warmup + opts.reps; i++) {
    // Alternate which variant goes first, so neither always follows the other's cleanup.
    for (const v of (i % 2 === 0 ? ['network', 'none'] : ['none', 'network']) as Variant[]) {
      await opts.waitReady?.();
      const { r, marks } = await start(v, i);
      if (r.code !== 0) {
        failed[v]++;
        first[v] ??= describeFailure([label, v], r);
        opts.progress(`  ${label} start (${v}) #${i}: FAILED ${first[v]}`);
        if (i === 0) return notMeasured(`${v}: ${first[v]}`);
        continue;
      }
      if (i >= opts.warmup) {
        samples[v].push(r.ms);
        if (marks !== undefined) runs[v].push(marks);
      }
      opts.progress(`  ${label} start (${v}) #${i}${i < opts.warmup ? ' (warmup)' : ''}: ${r.ms.toFixed(0)} ms`);
    }
  }
  for (const v of ['network', 'none'] as Variant[]) {
    if (samples[v].length === 0 || failed[v] > opts.reps / 2) return notMeasured(`${v}: ${failed[v]} of ${opts.warmup + opts.reps} runs failed; first: ${first[v]}`);
  }
  const lat = (v: Variant): Latency => ({
    ms: summarize(samples[v]), failures: failed[v], ...(first[v] ? { firstFailure: first[v] } : {}),
    ...(runs[v].length > 0 ? { vmSources: countSources(runs[v].map(runVmSource)) } : {}),
  });
  return { ok: true, network: lat('network'), none: lat('none'), runs };
}

/** measureCtrNetStart times `ctr run --rm --cni … true` against `ctr run --rm … true` under one runtime. */
export async function measureCtrNetStart(name: RuntimeName, opts: NetStartOptions): Promise<Measured<NetStart>> {
  const rt = netRuntime(name);
  const row = name === 'hako' && opts.mode !== undefined ? hakoRow(opts.mode) : name;
  const args = (v: Variant, id: string): string[] => ['run', '--rm', ...(v === 'network' ? ['--cni'] : []), ...rt.ctrArgs, IMAGE, id, 'true'];
  const m = await interleaved(row, opts, async (v, i) => {
    const id = `${ID_PREFIX}${row}-netstart-${process.pid}-${i}-${v}`;
    try {
      return { r: await ctrRun(args(v, id), id, rt.timeoutMs) };
    } finally {
      await removeContainer(id);
      if (v === 'network') await sweepCniLeftovers((ctrId) => ctrId === id);
    }
  });
  if (!m.ok) return m;
  const how = (v: Variant): string => `ctr ${args(v, 'ID').join(' ')}`;
  return { ok: true, network: m.network, none: m.none, networkHow: how('network'), noneHow: how('none') };
}

/** measureHakoRunNetStart times `hako run --rm busybox -- true` with the default network against `--network none`, in one mode. */
export async function measureHakoRunNetStart(opts: NetStartOptions): Promise<Measured<NetStart>> {
  const cli = await hakoCli();
  if ('why' in cli) return notMeasured(cli.why);
  const argsOf = (v: Variant): string[] => (v === 'network' ? HAKO_RUN_NET_ARGS : HAKO_RUN_NONE_ARGS);
  const m = await interleaved(`hako run ${opts.mode ?? ''}`.trim(), opts, async (v) => {
    const r = await runCmd([...cli.argv, ...argsOf(v)], { timeoutMs: 180_000 });
    return { r, marks: { marks: parseMarks(r.stderr), spawnEpochMs: r.startedAtMs, exitEpochMs: r.startedAtMs + r.ms } };
  });
  if (!m.ok) return m;
  // A start whose VM did not come from the mode has other marks: break down only the mode's own.
  const own = (runs: RunMarks[]): RunMarks[] => runs.filter((r) => opts.mode === undefined || runVmSource(r) === opts.mode);
  return {
    ok: true, network: m.network, none: m.none,
    networkHow: `hako ${HAKO_RUN_NET_ARGS.join(' ')}`, noneHow: `hako ${HAKO_RUN_NONE_ARGS.join(' ')}`,
    phases: { network: bootPhases(own(m.runs.network)), none: bootPhases(own(m.runs.none)) },
  };
}
