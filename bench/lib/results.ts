// The whole result of one benchmark run, as written to bench/results/<date>-<mode>.json.

import type { Machine } from './machine.js';
import type { RuntimeName } from './runtimes.js';
import type { BootPath, Density, Io, Latency, Measured, Memory } from './types.js';

/** Mode is the size of a run: smoke (test harness), quick (minutes) or full. */
export type Mode = 'smoke' | 'quick' | 'full';

/** SuiteName names one benchmark. */
export type SuiteName = 'start' | 'exec' | 'memory' | 'density' | 'io' | 'boot';

/** SUITES is every suite in run order. */
export const SUITES: readonly SuiteName[] = ['start', 'boot', 'exec', 'memory', 'io', 'density'];

/** StartKey is a start-latency row: a containerd runtime or the standalone `hako run`. */
export type StartKey = RuntimeName | 'hako-run';

/** Results is one run's complete output. */
export interface Results {
  format: 'hako-bench/1';
  mode: Mode;
  startedAt: string;
  finishedAt: string;
  durationS: number;
  machine: Machine;
  config: unknown;
  image: string;
  invocations: Record<string, string>;
  start: Partial<Record<StartKey, Measured<Latency>>>;
  exec: Partial<Record<RuntimeName, Measured<Latency>>>;
  memory: Partial<Record<RuntimeName, Measured<Memory>>>;
  io: Partial<Record<RuntimeName, Measured<Io>>>;
  density: Partial<Record<RuntimeName, Measured<Density>>>;
  bootPath?: Measured<BootPath>;
  /** skipped names the suites this run did not do (--only). */
  skipped: SuiteName[];
  leftoversSwept: string[];
}
