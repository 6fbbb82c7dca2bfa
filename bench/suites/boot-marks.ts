// Parses hako's structured timing log lines ({msg: "timing", mark, ms, time, ...})
// into named marks and turns a series of runs into per-phase durations.

import { summarize } from '../lib/stats.js';
import type { BootPhase } from '../lib/types.js';

/** Mark is one named point of the boot path: ms since the sandbox's creation began, and the line's epoch time. */
export interface Mark {
  name: string;
  ms: number;
  /** epochMs is the log line's own `time` field, when it has one. */
  epochMs?: number;
  /** fields holds the line's other numeric fields (e.g. the guest's uptime at agent start). */
  fields?: Record<string, number>;
  /** vmSource is where the VM came from (cold, template, pool), logged with agent-ready. */
  vmSource?: string;
}

/** RunMarks is one run's marks plus the host's spawn/exit epoch times around it. */
export interface RunMarks {
  marks: Mark[];
  spawnEpochMs: number;
  exitEpochMs: number;
}

const SKIP = new Set(['ms', 'time', 'level', 'msg', 'mark', 'pid']);

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
    if (typeof rec.mark !== 'string' || typeof rec.ms !== 'number') continue;
    const mark: Mark = { name: rec.mark, ms: rec.ms };
    const epoch = typeof rec.time === 'string' ? Date.parse(rec.time) : NaN;
    if (Number.isFinite(epoch)) mark.epochMs = epoch;
    // Only durations (…Ms) are worth summarising; pids and exit codes are not.
    const fields = Object.entries(rec).filter(([k, v]) => !SKIP.has(k) && /Ms$/.test(k) && typeof v === 'number') as Array<[string, number]>;
    if (fields.length > 0) mark.fields = Object.fromEntries(fields);
    if (typeof rec.vmSource === 'string') mark.vmSource = rec.vmSource.slice(0, 32);
    marks.push(mark);
  }
  return marks;
}

function sum(samples: number[], phase: string): BootPhase[] {
  return samples.length > 0 ? [{ phase, ms: summarize(samples) }] : [];
}

/**
 * bootPhases turns runs into consecutive phase durations in the mark order of the
 * first run: host process start → first mark (CLI startup, from epoch times), each
 * mark → the next, and the last mark → process exit.
 */
export function bootPhases(runs: readonly RunMarks[]): BootPhase[] {
  const first = runs.find((r) => r.marks.length > 0);
  if (first === undefined) return [];
  const order = [...new Set([...first.marks].sort((a, b) => a.ms - b.ms).map((m) => m.name))];
  const at = (run: RunMarks, name: string): Mark | undefined => run.marks.find((m) => m.name === name);
  const phases: BootPhase[] = [];
  // Time before the sandbox's clock started: node startup, module loading, argument parsing.
  phases.push(...sum(runs.flatMap((run) => {
    const m = at(run, order[0]!);
    return m?.epochMs !== undefined ? [Math.max(0, m.epochMs - m.ms - run.spawnEpochMs)] : [];
  }), `process start → sandbox clock starts (node + CLI startup)`));
  let prev: string | undefined;
  for (const name of order) {
    phases.push(...sum(runs.flatMap((run) => {
      const to = at(run, name)?.ms;
      const from = prev === undefined ? 0 : at(run, prev)?.ms;
      return to !== undefined && from !== undefined ? [to - from] : [];
    }), prev === undefined ? `sandbox clock starts → ${name}` : `${prev} → ${name}`));
    prev = name;
  }
  phases.push(...sum(runs.flatMap((run) => {
    const m = at(run, prev!);
    return m?.epochMs !== undefined ? [Math.max(0, run.exitEpochMs - m.epochMs)] : [];
  }), `${prev} → host process exit`));
  return phases;
}

/** markFields collects, over runs, each numeric field logged with mark name (e.g. guest uptime at agent start). */
export function markFields(runs: readonly RunMarks[], name: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const run of runs) {
    for (const [k, v] of Object.entries(run.marks.find((m) => m.name === name)?.fields ?? {})) (out[k] ??= []).push(v);
  }
  return out;
}

/** runVmSource returns where a run's VM came from, by its marks (undefined when none says). */
export function runVmSource(run: Pick<RunMarks, 'marks'>): string | undefined {
  return run.marks.find((m) => m.vmSource !== undefined)?.vmSource;
}

/**
 * agentSplit divides qmp-ready → agent-ready with the guest clock the agent reports:
 * guest uptime when the agent's main module began to run (kernel boot, init, node
 * loading the agent), and the rest (firmware and kernel load before the guest clock
 * runs, agent init, the first Check round trip). Approximate: two clocks.
 */
export function agentSplit(runs: readonly RunMarks[]): BootPhase[] {
  const guest: number[] = [];
  const rest: number[] = [];
  for (const run of runs) {
    const q = run.marks.find((m) => m.name === 'qmp-ready');
    const a = run.marks.find((m) => m.name === 'agent-ready');
    const atStart = a?.fields?.guestUptimeAtAgentStartMs;
    if (q === undefined || a === undefined || atStart === undefined) continue;
    guest.push(atStart);
    rest.push(Math.max(0, a.ms - q.ms - atStart));
  }
  return [
    ...sum(guest, 'guest kernel boot + init + node loading the agent, until its main runs (guest uptime at agent start)'),
    ...sum(rest, 'the rest: firmware/kernel load before the guest clock runs, agent init, first Check answered'),
  ];
}
