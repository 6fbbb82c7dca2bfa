// `hako run --rm busybox -- true` timed from the host in one hako mode, and hako's boot path
// broken down from the structured timing lines hako logs on stderr during the same runs.

import { runCmd, describeFailure } from '../lib/proc.js';
import { hakoCli } from '../lib/runtimes.js';
import { summarize, type Summary } from '../lib/stats.js';
import type { HakoMode } from '../lib/hako-modes.js';
import { countSources } from '../lib/vm-source.js';
import { notMeasured, type BootPath, type Latency, type Measured } from '../lib/types.js';
import { agentSplit, bootPhases, markFields, parseMarks, runVmSource, type RunMarks } from './boot-marks.js';

/** HakoRunOptions sets how many runs to time and to discard first, in which mode. */
export interface HakoRunOptions {
  mode: HakoMode;
  reps: number;
  warmup: number;
  progress: (line: string) => void;
  /** waitReady runs before each run, untimed (pool mode waits for a full pool). */
  waitReady?: () => Promise<void>;
}

/** HAKO_RUN_ARGS are the CLI arguments after the CLI itself (hako prints its timing lines at info). */
export const HAKO_RUN_ARGS = ['--log-level', 'info', 'run', '--rm', 'busybox', '--', 'true'];

/** CLONE_SPLIT_NOTE says why a restored VM's boot is not split with the guest clock. */
export const CLONE_SPLIT_NOTE = "a restored VM's guest uptime at agent start is the template's (its agent started once, before the template was saved), so only a cold boot is split with the guest clock";

/** measureHakoRun returns the start latency of `hako run --rm` and the boot-path breakdown of those runs. */
export async function measureHakoRun(opts: HakoRunOptions): Promise<{ start: Measured<Latency>; boot: Measured<BootPath> }> {
  const cli = await hakoCli();
  if ('why' in cli) return { start: notMeasured(cli.why), boot: notMeasured(cli.why) };
  const argv = [...cli.argv, ...HAKO_RUN_ARGS];
  const samples: number[] = [];
  const all: RunMarks[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  for (let i = 0; i < opts.warmup + opts.reps; i++) {
    await opts.waitReady?.();
    const r = await runCmd(argv, { timeoutMs: 180_000 });
    if (r.code !== 0) {
      failures++;
      firstFailure ??= describeFailure(['hako', ...HAKO_RUN_ARGS], r);
      opts.progress(`  hako run ${opts.mode} #${i}: FAILED ${firstFailure}`);
      if (i === 0) return { start: notMeasured(firstFailure), boot: notMeasured(firstFailure) };
      continue;
    }
    const marks = parseMarks(r.stderr);
    const run = { marks, spawnEpochMs: r.startedAtMs, exitEpochMs: r.startedAtMs + r.ms };
    if (i >= opts.warmup) {
      samples.push(r.ms);
      all.push(run);
    }
    opts.progress(`  hako run ${opts.mode} #${i}${i < opts.warmup ? ' (warmup)' : ''}: ${r.ms.toFixed(0)} ms, ${marks.length} timing marks, VM from ${runVmSource(run) ?? '?'}`);
  }
  if (samples.length === 0 || failures > opts.reps / 2) {
    const why = `${failures} of ${opts.warmup + opts.reps} runs failed; first: ${firstFailure}`;
    return { start: notMeasured(why), boot: notMeasured(why) };
  }
  const vmSources = countSources(all.map(runVmSource));
  const start: Measured<Latency> = { ok: true, ms: summarize(samples), failures, vmSources, ...(firstFailure ? { firstFailure } : {}) };
  return { start, boot: bootPath(opts.mode, all, vmSources) };
}

/** bootPath breaks down the runs whose VM came from mode (a fallback has other marks). */
export function bootPath(mode: HakoMode, all: readonly RunMarks[], vmSources: Record<string, number>): Measured<BootPath> {
  const runs = all.filter((r) => runVmSource(r) === mode);
  if (runs.length === 0) {
    return notMeasured(all.some((r) => r.marks.length > 0)
      ? `no run's VM came from ${mode} (${Object.entries(vmSources).map(([k, n]) => `${k} ${n}`).join(', ')})`
      : 'no timing lines ({"msg":"timing","mark":…,"ms":…}) in hako\'s stderr');
  }
  const names = [...new Set(runs.flatMap((r) => r.marks.map((m) => m.name)))];
  const fields: Record<string, Record<string, Summary>> = {};
  for (const name of names) {
    const f = markFields(runs, name);
    if (Object.keys(f).length > 0) fields[name] = Object.fromEntries(Object.entries(f).map(([k, v]) => [k, summarize(v)]));
  }
  const source = `stderr JSON timing lines of \`hako ${HAKO_RUN_ARGS.join(' ')}\`${runs.length < all.length ? ` (the ${runs.length} of ${all.length} runs whose VM came from ${mode})` : ''}`;
  return {
    ok: true, mode, runs: runs.length, phases: bootPhases(runs), marks: names, fields, vmSources, source,
    agentSplit: mode === 'cold' ? agentSplit(runs) : [],
    ...(mode === 'cold' ? {} : { agentSplitNote: CLONE_SPLIT_NOTE }),
  };
}
