// Exec latency: wall time of `ctr task exec --exec-id X ID true` into a running
// (sleeping) container, per runtime.

import { ctr, ctrRun, IMAGE, ID_PREFIX, removeContainer } from '../lib/ctr.js';
import { describeFailure } from '../lib/proc.js';
import { runtime, type RuntimeName } from '../lib/runtimes.js';
import { summarize } from '../lib/stats.js';
import { notMeasured, type Latency, type Measured } from '../lib/types.js';

/** ExecOptions sets how many execs to time and to discard first. */
export interface ExecOptions {
  reps: number;
  warmup: number;
  progress: (line: string) => void;
}

/** measureExec starts one idle container and times execs of `true` into it. */
export async function measureExec(name: RuntimeName, opts: ExecOptions): Promise<Measured<Latency>> {
  const rt = runtime(name);
  const id = `${ID_PREFIX}${name}-exec-${process.pid}`;
  const runArgs = ['run', '-d', ...rt.ctrArgs, IMAGE, id, 'sleep', '3600'];
  try {
    const started = await ctrRun(runArgs, id, rt.timeoutMs);
    if (started.code !== 0) return notMeasured(describeFailure(['ctr', ...runArgs], started));
    const samples: number[] = [];
    let failures = 0;
    let firstFailure: string | undefined;
    for (let i = 0; i < opts.warmup + opts.reps; i++) {
      const args = ['task', 'exec', '--exec-id', `x${i}`, id, 'true'];
      const r = await ctr(args, rt.timeoutMs);
      if (r.code !== 0) {
        failures++;
        firstFailure ??= describeFailure(['ctr', ...args], r);
        opts.progress(`  ${name} exec #${i}: FAILED ${firstFailure}`);
        if (i === 0) return notMeasured(firstFailure);
        continue;
      }
      if (i >= opts.warmup) samples.push(r.ms);
      opts.progress(`  ${name} exec #${i}${i < opts.warmup ? ' (warmup)' : ''}: ${r.ms.toFixed(0)} ms`);
    }
    if (samples.length === 0 || failures > opts.reps / 2) {
      return notMeasured(`${failures} of ${opts.warmup + opts.reps} execs failed; first: ${firstFailure}`);
    }
    return { ok: true, ms: summarize(samples), failures, ...(firstFailure ? { firstFailure } : {}) };
  } finally {
    await removeContainer(id);
  }
}
