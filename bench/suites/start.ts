// Start latency through containerd: wall time of `ctr run --rm IMAGE ID true`,
// which covers create, start, the process's exit and the task's deletion.

import { ctrRun, IMAGE, ID_PREFIX, removeContainer } from '../lib/ctr.js';
import { describeFailure } from '../lib/proc.js';
import { runtime, type RuntimeName } from '../lib/runtimes.js';
import { summarize } from '../lib/stats.js';
import { notMeasured, type BootPhase, type Latency, type Measured } from '../lib/types.js';
import { containerdLogPath, logSize, shimMarks } from '../lib/containerd-log.js';
import { hakoRow, type HakoMode } from '../lib/hako-modes.js';
import { countSources, type VmSources } from '../lib/vm-source.js';
import { bootPhases, runVmSource, type RunMarks } from './boot-marks.js';

/** StartOptions sets how many runs to time and to discard first, and hako's mode. */
export interface StartOptions {
  reps: number;
  warmup: number;
  progress: (line: string) => void;
  /** mode is hako's mode in force (hako only; names the row and the container ids). */
  mode?: HakoMode;
  /** waitReady runs before each start, untimed (pool mode waits for a full pool). */
  waitReady?: () => Promise<void>;
}

/** measureStart times `ctr run --rm` of `true` under one runtime. */
export async function measureStart(name: RuntimeName, opts: StartOptions): Promise<Measured<Latency>> {
  const rt = runtime(name);
  const row = name === 'hako' && opts.mode !== undefined ? hakoRow(opts.mode) : name;
  const samples: number[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  // hako's shim logs its timing lines through containerd: remember where its log ends now.
  const log = name === 'hako' ? await containerdLogPath() : undefined;
  const logFrom = log !== undefined ? await logSize(log) : 0;
  const timed: Array<{ id: string; startedAtMs: number; ms: number }> = [];
  for (let i = 0; i < opts.warmup + opts.reps; i++) {
    const id = `${ID_PREFIX}${row}-start-${process.pid}-${i}`;
    const args = ['run', '--rm', ...rt.ctrArgs, IMAGE, id, 'true'];
    await opts.waitReady?.();
    const r = await ctrRun(args, id, rt.timeoutMs);
    if (r.code !== 0) {
      await removeContainer(id);
      failures++;
      firstFailure ??= describeFailure(['ctr', ...args], r);
      opts.progress(`  ${row} start #${i}: FAILED ${firstFailure}`);
      // A runtime that fails its first attempt (the warmup) is not working: stop early.
      if (i === 0) return notMeasured(firstFailure);
      continue;
    }
    if (i >= opts.warmup) {
      samples.push(r.ms);
      timed.push({ id, startedAtMs: r.startedAtMs, ms: r.ms });
    }
    opts.progress(`  ${row} start #${i}${i < opts.warmup ? ' (warmup)' : ''}: ${r.ms.toFixed(0)} ms${r.retried ? ' (retried: containerd restarted meanwhile)' : ''}`);
  }
  if (samples.length === 0 || failures > opts.reps / 2) {
    return notMeasured(`${failures} of ${opts.warmup + opts.reps} runs failed; first: ${firstFailure}`);
  }
  const shim = log !== undefined ? await shimPhases(log, logFrom, timed, opts.mode) : undefined;
  return {
    ok: true, ms: summarize(samples), failures,
    ...(firstFailure ? { firstFailure } : {}),
    ...(shim !== undefined && shim.phases.length > 0 ? { phases: shim.phases, phasesSource: `the shim's timing lines, copied by containerd into ${log}${shim.note}` } : {}),
    ...(shim !== undefined && name === 'hako' ? { vmSources: shim.vmSources } : {}),
  };
}

async function shimPhases(log: string, from: number, timed: ReadonlyArray<{ id: string; startedAtMs: number; ms: number }>, mode?: HakoMode): Promise<{ phases: BootPhase[]; vmSources: VmSources; note: string }> {
  const marks = await shimMarks(log, from, timed.map((t) => t.id)).catch(() => new Map<string, RunMarks['marks']>());
  const all: RunMarks[] = timed
    .filter((t) => (marks.get(t.id)?.length ?? 0) > 0)
    .map((t) => ({ marks: marks.get(t.id)!, spawnEpochMs: t.startedAtMs, exitEpochMs: t.startedAtMs + t.ms }));
  const vmSources = countSources(timed.map((t) => {
    const m = marks.get(t.id) as RunMarks['marks'] | undefined;
    return m !== undefined ? runVmSource({ marks: m }) : undefined;
  }));
  // A start that fell back to another source has other marks: break down only the mode's own.
  const runs = mode === undefined ? all : all.filter((r) => runVmSource(r) === mode);
  const note = runs.length < all.length ? ` (the ${runs.length} of ${all.length} starts whose VM came from ${mode})` : '';
  const phases = bootPhases(runs).map((p) => ({ ...p, phase: p.phase.replace('process start → sandbox clock starts (node + CLI startup)', '`ctr run` starts → sandbox clock starts (containerd, shim start, bundle)').replace('→ host process exit', '→ `ctr run --rm` returns (task delete, shim exit)') }));
  return { phases, vmSources, note };
}
