// What every hako subcommand gets: the loaded configuration, a logger on stderr, and how to
// re-run this CLI (for the detached owner process).

import type { HakoConfig } from '../config/index.js';
import type { Logger, Level, Sink } from '../log/index.js';

/** CliContext is passed to every command. */
export interface CliContext {
  config: HakoConfig;
  log: Logger;
  /** level is the level asked for with --log-level, else the configured log.level (for log files). */
  level: Level;
  /** stderrLevel is what this CLI shows on stderr: --log-level, else error. */
  stderrLevel: Level;
  /** stderrSink writes finished JSON log lines to stderr (in words unless --log-level was given). */
  stderrSink: Sink;
  /** mainPath is this CLI's main.js (spawned again as `hako _serve`). */
  mainPath: string;
  /** globalArgs are the global flags to pass on to a child hako (--log-level). */
  globalArgs: string[];
}
