// The whole result of one benchmark run, as written to bench/results/<date>-<mode>.json.

import type { Machine } from './machine.js';
import type { HakoMode, HakoRunRow, RowKey } from './hako-modes.js';
import type { ModeSetup } from './mode-session.js';
import type { BootPath, Density, Io, Latency, Measured, Memory, NetStart, Network, Rpc } from './types.js';

/** Mode is the size of a run: smoke (test harness), quick (minutes) or full. */
export type Mode = 'smoke' | 'quick' | 'full';

/** SuiteName names one benchmark. */
export type SuiteName = 'start' | 'exec' | 'memory' | 'density' | 'io' | 'boot' | 'rpc' | 'network';

/** SUITES is every suite in run order. */
export const SUITES: readonly SuiteName[] = ['start', 'boot', 'exec', 'memory', 'rpc', 'io', 'network', 'density'];

/** FORMAT names this shape of the JSON (2: hako measured per mode, rows such as "hako-pool"). */
export const FORMAT = 'hako-bench/2';

/** StartKey is a start-latency row: a containerd row or the standalone `hako run` in one mode. */
export type StartKey = RowKey | HakoRunRow;

/** Results is one run's complete output. */
export interface Results {
  format: typeof FORMAT;
  mode: Mode;
  startedAt: string;
  finishedAt: string;
  durationS: number;
  machine: Machine;
  config: unknown;
  image: string;
  invocations: Record<string, string>;
  /** hakoModes are the modes measured (--hako-modes), in table order. */
  hakoModes: HakoMode[];
  /** modeSetup records how each mode was set up, per checkout (drop-in, template build, pool). */
  modeSetup: ModeSetup[];
  start: Partial<Record<StartKey, Measured<Latency>>>;
  exec: Partial<Record<RowKey, Measured<Latency>>>;
  memory: Partial<Record<RowKey, Measured<Memory>>>;
  /** io and density measure hako in template mode only (row hako-template). */
  io: Partial<Record<RowKey, Measured<Io>>>;
  density: Partial<Record<RowKey, Measured<Density>>>;
  /** network is TCP throughput and round trips over ctr's CNI bridge (hako per mode, as network.hakoModes in the config says). */
  network: Partial<Record<RowKey, Measured<Network>>>;
  /** netStart is start latency with networking and without: `ctr run --rm [--cni]` and `hako run [--network none]`. */
  netStart: Partial<Record<StartKey, Measured<NetStart>>>;
  /** bootPath breaks `hako run` down per mode from its timing lines. */
  bootPath: Partial<Record<HakoMode, Measured<BootPath>>>;
  rpc: Partial<Record<HakoMode, Measured<Rpc>>>;
  /** notes are run-wide remarks (leftovers swept, checkouts used). */
  notes: string[];
  /** skipped names the suites this run did not do (--only). */
  skipped: SuiteName[];
  leftoversSwept: string[];
}
