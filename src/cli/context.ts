// What every hako subcommand gets: the loaded configuration, a logger on stderr, and how to
// re-run this CLI (for the detached owner process).

import type { HakoConfig } from '../config/index.js';
import type { Logger, Level } from '../log/index.js';

/** CliContext is passed to every command. */
export interface CliContext {
  config: HakoConfig;
  log: Logger;
  level: Level;
  /** mainPath is this CLI's main.js (spawned again as `hako _serve`). */
  mainPath: string;
  /** globalArgs are the global flags to pass on to a child hako (--log-level). */
  globalArgs: string[];
}
