// `hako run --rm busybox -- true` timed from the host, and hako's boot path broken
// down from the structured timing lines hako logs on stderr during the same runs.

import { runCmd, describeFailure } from '../lib/proc.js';
import { hakoCli } from '../lib/runtimes.js';
import { summarize, type Summary } from '../lib/stats.js';
import { notMeasured, type BootPath, type Latency, type Measured } from '../lib/types.js';
import { agentSplit, bootPhases, markFields, parseMarks, type RunMarks } from './boot-marks.js';

/** HakoRunOptions sets how many runs to time and to discard first. */
export interface HakoRunOptions {
  reps: number;
  warmup: number;
  progress: (line: string) => void;
}

/** HAKO_RUN_ARGS are the CLI arguments after the CLI itself (hako prints its timing lines at info). */
export const HAKO_RUN_ARGS = ['--log-level', 'info', 'run', '--rm', 'busybox', '--', 'true'];

/** measureHakoRun returns the start latency of `hako run --rm` and the boot-path breakdown of those runs. */
export async function measureHakoRun(opts: HakoRunOptions): Promise<{ start: Measured<Latency>; boot: Measured<BootPath> }> {
  const cli = await hakoCli();
  if ('why' in cli) return { start: notMeasured(cli.why), boot: notMeasured(cli.why) };
  const argv = [...cli.argv, ...HAKO_RUN_ARGS];
  const samples: number[] = [];
  const runs: RunMarks[] = [];
  const names = new Set<string>();
  let failures = 0;
  let firstFailure: string | undefined;
  for (let i = 0; i < opts.warmup + opts.reps; i++) {
    const r = await runCmd(argv, { timeoutMs: 180_000 });
    if (r.code !== 0) {
      failures++;
      firstFailure ??= describeFailure(['hako', ...HAKO_RUN_ARGS], r);
      opts.progress(`  hako run #${i}: FAILED ${firstFailure}`);
      if (i === 0) return { start: notMeasured(firstFailure), boot: notMeasured(firstFailure) };
      continue;
    }
    const marks = parseMarks(r.stderr);
    for (const m of marks) names.add(m.name);
    if (i >= opts.warmup) {
      samples.push(r.ms);
      runs.push({ marks, spawnEpochMs: r.startedAtMs, exitEpochMs: r.startedAtMs + r.ms });
    }
    opts.progress(`  hako run #${i}${i < opts.warmup ? ' (warmup)' : ''}: ${r.ms.toFixed(0)} ms, ${marks.length} timing marks`);
  }
  if (samples.length === 0 || failures > opts.reps / 2) {
    const why = `${failures} of ${opts.warmup + opts.reps} runs failed; first: ${firstFailure}`;
    return { start: notMeasured(why), boot: notMeasured(why) };
  }
  const start: Measured<Latency> = { ok: true, ms: summarize(samples), failures, ...(firstFailure ? { firstFailure } : {}) };
  const phases = bootPhases(runs);
  const fields: Record<string, Record<string, Summary>> = {};
  for (const name of names) {
    const f = markFields(runs, name);
    if (Object.keys(f).length > 0) fields[name] = Object.fromEntries(Object.entries(f).map(([k, v]) => [k, summarize(v)]));
  }
  const boot: Measured<BootPath> = phases.length === 0
    ? notMeasured(`no timing lines ({"msg":"timing","mark":…,"ms":…}) in hako's stderr`)
    : { ok: true, runs: runs.length, phases, marks: [...names], fields, agentSplit: agentSplit(runs), source: `stderr JSON timing lines of \`hako ${HAKO_RUN_ARGS.join(' ')}\`` };
  return { start, boot };
}
