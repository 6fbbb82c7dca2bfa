// One process as the Task service tracks it (a container's init or an exec): its stdio,
// pid, status and exit, and the waiters that Wait may register before Start.

import type { HostIO, StdioPaths } from './stdio.js';
import type { ExitInfo, SandboxProcess } from './sandbox-port.js';

/** ProcessStatus is the shim's view of a process's life. */
export type ProcessStatus = 'created' | 'running' | 'stopped';

/** TaskProcess is the shim's record of one process. */
export class TaskProcess {
  status: ProcessStatus = 'created';
  pid = 0;
  exit: ExitInfo | undefined;
  /** startPublished becomes true once TaskStart/TaskExecStarted is queued; TaskExit must follow it. */
  startPublished = false;
  private readonly waiters: Array<(e: ExitInfo) => void> = [];

  constructor(
    readonly containerId: string,
    readonly execId: string,
    readonly stdio: StdioPaths,
    readonly proc: SandboxProcess,
    readonly io: HostIO,
  ) {}

  /** wait resolves with the exit, at once if the process has already exited. */
  wait(signal?: AbortSignal): Promise<ExitInfo> {
    if (this.exit) return Promise.resolve(this.exit);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(settle);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      const settle = (e: ExitInfo) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(e);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(settle);
    });
  }

  /** setExited records the exit once and releases every waiter. */
  setExited(e: ExitInfo): boolean {
    if (this.exit) return false;
    this.exit = e;
    this.status = 'stopped';
    for (const w of this.waiters.splice(0)) w(e);
    return true;
  }
}
