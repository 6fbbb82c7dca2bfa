// Sizes of the three benchmark run modes (smoke, quick, full). hako boots a VM per container under
// TCG on a shared 2-core machine, so its counts are kept smaller and every loop is time-bounded.

import type { HakoMode } from './lib/hako-modes.js';
import type { Mode } from './lib/results.js';
import type { RuntimeName } from './lib/runtimes.js';

/** RPC_TARGET_MS is the round trip hako aims at for a no-op agent call (Check). */
export const RPC_TARGET_MS = 5;

/** ModeConfig is every count and bound one run uses (recorded in the JSON). */
export interface ModeConfig {
  /** warmup is the number of untimed first runs per runtime (the first boot warms the host's page cache). */
  warmup: Record<RuntimeName, number>;
  /** reps is the number of timed start and exec runs per runtime (for hako: per hako mode). */
  reps: Record<RuntimeName, number>;
  /** memoryN is the number of idle pods the memory suite starts (for hako: per hako mode). */
  memoryN: Record<RuntimeName, number>;
  /** settleMs is how long idle containers sit before PSS is read (a guest needs longer to go idle). */
  settleMs: Record<RuntimeName, number>;
  memoryDeadlineMs: number;
  ioMiB: number;
  ioReps: number;
  ioRuntimes: RuntimeName[];
  densityRuntimes: RuntimeName[];
  density: { maxCount: number; maxMs: number; minFreeMiB: number };
  /** poolSize is P in `hako factory serve --pool P` for the pool mode. */
  poolSize: number;
  /** poolFullTimeoutMs bounds each wait for a full pool (before each timed start in pool mode). */
  poolFullTimeoutMs: number;
  /** initTimeoutMs bounds `hako factory init` (a template build boots a VM and runs a container). */
  initTimeoutMs: number;
  /** rpc is the agent Check round trip: untimed warm-up calls, then timed sequential calls. */
  rpc: { warmup: number; calls: number };
  /** network sizes the network suite (bench/suites/network.ts). */
  network: NetworkConfig;
}

/** NetworkConfig sizes the network suite: TCP streams, echo round trips and fresh connections. */
export interface NetworkConfig {
  /** streamMiB is the size of one stream per repetition: TCG makes hako's tens of MiB/s, runc's hundreds. */
  streamMiB: Record<RuntimeName, number>;
  /** reps is the number of timed repetitions of each stream test (--reps overrides it). */
  reps: number;
  /** streams are the concurrent stream counts measured (two connections into one container). */
  streams: number[];
  echoBytes: number;
  echoWarmup: number;
  echoMessages: number;
  /** connects is the number of fresh connections timed (handshake, first echo). */
  connects: number;
  /** hakoModes are the hako modes the suite measures (the others are reported as not measured). */
  hakoModes: HakoMode[];
}

const FACTORY = { poolFullTimeoutMs: 3 * 60_000, initTimeoutMs: 10 * 60_000, rpc: { warmup: 5, calls: 50 } };

/** modeConfig returns the sizes for mode. */
export function modeConfig(mode: Mode): ModeConfig {
  switch (mode) {
    case 'smoke':
      return {
        warmup: { runc: 0, runsc: 0, hako: 0 },
        reps: { runc: 1, runsc: 1, hako: 1 },
        memoryN: { runc: 1, runsc: 1, hako: 1 },
        settleMs: { runc: 200, runsc: 200, hako: 1000 },
        memoryDeadlineMs: 3 * 60_000,
        ioMiB: 8,
        ioReps: 1,
        ioRuntimes: ['runc', 'runsc', 'hako'],
        densityRuntimes: ['hako'],
        density: { maxCount: 1, maxMs: 3 * 60_000, minFreeMiB: 2048 },
        // One warm VM is enough to check the pool path; it refills in a few seconds.
        poolSize: 1,
        ...FACTORY,
        network: { streamMiB: { runc: 16, runsc: 4, hako: 4 }, reps: 1, streams: [1, 2], echoBytes: 64, echoWarmup: 2, echoMessages: 10, connects: 2, hakoModes: ['template'] },
      };
    case 'quick':
      return {
        warmup: { runc: 1, runsc: 1, hako: 0 },
        reps: { runc: 5, runsc: 5, hako: 2 },
        memoryN: { runc: 5, runsc: 5, hako: 3 },
        settleMs: { runc: 2000, runsc: 3000, hako: 10_000 },
        memoryDeadlineMs: 4 * 60_000,
        ioMiB: 256,
        ioReps: 1,
        ioRuntimes: ['runc', 'runsc', 'hako'],
        densityRuntimes: ['hako'],
        density: { maxCount: 3, maxMs: 150_000, minFreeMiB: 2048 },
        poolSize: 2,
        ...FACTORY,
        network: { streamMiB: { runc: 128, runsc: 16, hako: 32 }, reps: 3, streams: [1, 2], echoBytes: 64, echoWarmup: 5, echoMessages: 50, connects: 5, hakoModes: ['cold', 'template', 'pool'] },
      };
    case 'full':
      return {
        warmup: { runc: 1, runsc: 1, hako: 1 },
        // A cold hako start costs 10–35 s under TCG on this shared 2-core machine (a clone a few s): 8 timed runs per mode.
        reps: { runc: 20, runsc: 20, hako: 8 },
        // 10 idle pods per hako mode, so a template's shared pages are divided over many clones.
        memoryN: { runc: 20, runsc: 20, hako: 10 },
        settleMs: { runc: 3000, runsc: 5000, hako: 15_000 },
        memoryDeadlineMs: 8 * 60_000,
        ioMiB: 256,
        ioReps: 3,
        ioRuntimes: ['runc', 'runsc', 'hako'],
        densityRuntimes: ['hako'],
        density: { maxCount: 20, maxMs: 6 * 60_000, minFreeMiB: 2048 },
        poolSize: 2,
        ...FACTORY,
        // A hako stream of 96 MiB takes a few seconds under TCG, runc's 256 MiB well under one; runsc's
        // copy form (bench/lib/net-scripts.ts) moves a few MiB/s, so 32 MiB.
        network: { streamMiB: { runc: 256, runsc: 32, hako: 96 }, reps: 5, streams: [1, 2], echoBytes: 64, echoWarmup: 10, echoMessages: 200, connects: 10, hakoModes: ['cold', 'template', 'pool'] },
      };
  }
}
