// Progress reporting for the long asset builds: phase changes, elapsed time and
// a periodic heartbeat line, sent both to the logger and to an optional callback.

import type { Logger } from '../log/index.js';

/** AssetName names the three built assets. */
export type AssetName = 'kernel' | 'root' | 'busybox';

/** ProgressEvent is one progress report: a new phase, or a heartbeat within one. */
export interface ProgressEvent {
  asset: AssetName;
  /** phase is a short stable name: "extract", "configure", "compile", "install", ... */
  phase: string;
  /** elapsedMs counts from the start of this asset's build. */
  elapsedMs: number;
  /** message is a human-readable line ("compiling: 812 files, last kernel/fork.o"). */
  message: string;
}

/** ProgressFn receives progress events; it must not throw. */
export type ProgressFn = (event: ProgressEvent) => void;

/** Progress tracks one asset's build and forwards its events. */
export class Progress {
  private readonly started = Date.now();
  private phaseName = 'start';
  private phaseStarted = Date.now();

  constructor(
    private readonly asset: AssetName,
    private readonly log: Logger,
    private readonly onProgress?: ProgressFn,
  ) {}

  /** phase starts a new named phase and reports it. */
  phase(name: string, message: string): void {
    const now = Date.now();
    if (this.phaseName !== 'start') {
      this.log.debug('phase done', { asset: this.asset, phase: this.phaseName, ms: now - this.phaseStarted });
    }
    this.phaseName = name;
    this.phaseStarted = now;
    this.emit(message);
  }

  /** note reports a line within the current phase (used for heartbeats). */
  note(message: string): void {
    this.emit(message);
  }

  /** warn reports a problem the build works around (logged at warn level). */
  warn(message: string): void {
    this.emit(message, 'warn');
  }

  /** elapsedMs is the time since this asset's build started. */
  elapsedMs(): number {
    return Date.now() - this.started;
  }

  private emit(message: string, level: 'info' | 'warn' = 'info'): void {
    const event: ProgressEvent = { asset: this.asset, phase: this.phaseName, elapsedMs: this.elapsedMs(), message };
    this.log[level](message, { asset: this.asset, phase: this.phaseName, elapsedMs: event.elapsedMs });
    try {
      this.onProgress?.(event);
    } catch {
      // A broken progress callback must not break the build.
    }
  }
}

/** formatElapsed renders milliseconds as "4m05s" or "12.3s". */
export function formatElapsed(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
