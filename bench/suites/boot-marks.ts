// Parses hako's structured timing log lines into named marks (ms since the run
// began) and turns a series of runs into per-phase durations.

import { summarize } from '../lib/stats.js';
import type { BootPhase } from '../lib/types.js';

/** Mark is one named point of the boot path, in ms since hako started the run. */
export interface Mark {
  name: string;
  ms: number;
}

/** parseMarks extracts timing marks from JSON log lines (other lines are ignored). */
export function parseMarks(stderr: string): Mark[] {
  const marks: Mark[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const name = [rec.mark, rec.phase, rec.event].find((v) => typeof v === 'string') as string | undefined;
    const ms = [rec.ms, rec.atMs, rec.sinceStartMs, rec.elapsedMs].find((v) => typeof v === 'number') as number | undefined;
    if (name !== undefined && ms !== undefined) marks.push({ name, ms });
  }
  return marks;
}

/** bootPhases turns each run's marks into consecutive phase durations (mark order of the first run), summarised over runs. */
export function bootPhases(runs: readonly Mark[][], wallMs: readonly number[]): BootPhase[] {
  const first = runs.find((r) => r.length > 0);
  if (first === undefined) return [];
  const order = [...first].sort((a, b) => a.ms - b.ms).map((m) => m.name);
  const phases: BootPhase[] = [];
  let prev: string | undefined;
  for (const name of order) {
    const samples: number[] = [];
    for (const run of runs) {
      const at = run.find((m) => m.name === name)?.ms;
      const from = prev === undefined ? 0 : run.find((m) => m.name === prev)?.ms;
      if (at !== undefined && from !== undefined) samples.push(at - from);
    }
    if (samples.length > 0) phases.push({ phase: prev === undefined ? `start → ${name}` : `${prev} → ${name}`, ms: summarize(samples) });
    prev = name;
  }
  if (prev !== undefined) {
    const tail: number[] = [];
    runs.forEach((run, i) => {
      const last = run.find((m) => m.name === prev)?.ms;
      if (last !== undefined && wallMs[i] !== undefined) tail.push(Math.max(0, wallMs[i]! - last));
    });
    if (tail.length > 0) phases.push({ phase: `${prev} → process exit (host wall clock, includes node startup)`, ms: summarize(tail) });
  }
  return phases;
}
