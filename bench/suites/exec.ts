// Exec latency: wall time of `ctr task exec --exec-id X ID true` into a running
// (sleeping) container, per runtime and hako mode.

import { ctr, ctrRun, IMAGE, ID_PREFIX, removeContainer } from '../lib/ctr.js';
import { hakoRow, type HakoMode } from '../lib/hako-modes.js';
import { describeFailure } from '../lib/proc.js';
import { runtime, type RuntimeName } from '../lib/runtimes.js';
import { summarize } from '../lib/stats.js';
import { notMeasured, type Latency, type Measured } from '../lib/types.js';
import { countSources, sandboxVmSource } from '../lib/vm-source.js';

/** ExecOptions sets how many execs to time and to discard first, and hako's mode. */
export interface ExecOptions {
  reps: number;
  warmup: number;
  progress: (line: string) => void;
  mode?: HakoMode;
  /** waitReady runs before the container starts and again before the execs (pool mode: until the pool is full, so its refill does not run during the execs). */
  waitReady?: () => Promise<void>;
}

/** measureExec starts one idle container and times execs of `true` into it. */
export async function measureExec(name: RuntimeName, opts: ExecOptions): Promise<Measured<Latency>> {
  const rt = runtime(name);
  const row = name === 'hako' && opts.mode !== undefined ? hakoRow(opts.mode) : name;
  const id = `${ID_PREFIX}${row}-exec-${process.pid}`;
  const runArgs = ['run', '-d', ...rt.ctrArgs, IMAGE, id, 'sleep', '3600'];
  try {
    await opts.waitReady?.();
    const started = await ctrRun(runArgs, id, rt.timeoutMs);
    if (started.code !== 0) return notMeasured(describeFailure(['ctr', ...runArgs], started));
    const source = name === 'hako' ? await sandboxVmSource(id) : undefined;
    await opts.waitReady?.();
    const samples: number[] = [];
    let failures = 0;
    let firstFailure: string | undefined;
    for (let i = 0; i < opts.warmup + opts.reps; i++) {
      const args = ['task', 'exec', '--exec-id', `x${i}`, id, 'true'];
      const r = await ctr(args, rt.timeoutMs);
      if (r.code !== 0) {
        failures++;
        firstFailure ??= describeFailure(['ctr', ...args], r);
        opts.progress(`  ${row} exec #${i}: FAILED ${firstFailure}`);
        if (i === 0) return notMeasured(firstFailure);
        continue;
      }
      if (i >= opts.warmup) samples.push(r.ms);
      opts.progress(`  ${row} exec #${i}${i < opts.warmup ? ' (warmup)' : ''}: ${r.ms.toFixed(0)} ms`);
    }
    if (samples.length === 0 || failures > opts.reps / 2) {
      return notMeasured(`${failures} of ${opts.warmup + opts.reps} execs failed; first: ${firstFailure}`);
    }
    return {
      ok: true, ms: summarize(samples), failures,
      ...(firstFailure ? { firstFailure } : {}),
      ...(name === 'hako' ? { vmSources: countSources([source]) } : {}),
    };
  } finally {
    await removeContainer(id);
  }
}
