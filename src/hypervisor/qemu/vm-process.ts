// The QEMU process behind a QemuVm: our own child (started here), or one adopted from another
// process (a warm pool hands VMs over), whose end can only be noticed by watching /proc.

import type { ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { isDead, isVmOf } from './leftover.js';

/** ProcessExit is what Node reports when a child ends; both null when the status is unknown (not our child). */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** VmProcess is the OS process of a VM, whoever started it. */
export interface VmProcess {
  readonly pid: number;
  /** exit settles (never rejects) once the process is gone. */
  readonly exit: Promise<ProcessExit>;
  /** kill signals the process if it is still the QEMU it was (a reused pid is left alone). */
  kill(sig: NodeJS.Signals): void;
  /** detach stops holding the process: it keeps running and this object stops reporting on it. */
  detach(): void;
}

/** childVmProcess wraps a QEMU we spawned; processExit must settle on the child's 'exit'. */
export function childVmProcess(child: ChildProcess, processExit: Promise<ProcessExit>): VmProcess {
  return {
    pid: child.pid!,
    exit: processExit,
    kill: (sig) => void child.kill(sig),
    // The child's handle must not keep the process that handed the VM over alive.
    detach: () => child.unref(),
  };
}

/** ADOPTED_POLL_MS is how often an adopted QEMU's liveness is checked in /proc. */
export const ADOPTED_POLL_MS = 100;

/**
 * adoptedVmProcess watches a QEMU that another process started: its exit is noticed by polling
 * /proc/<pid> (the exit status is not ours to read), and signals go only to the pid while it is
 * still the QEMU of runtimeDir (isVmOf), so a recycled pid is never hit.
 */
export function adoptedVmProcess(pid: number, runtimeDir: string, pollMs = ADOPTED_POLL_MS): VmProcess {
  let timer: NodeJS.Timeout | undefined;
  let detached = false;
  const exit = new Promise<ProcessExit>((resolve) => {
    const poll = async (): Promise<void> => {
      if (detached) return;
      if (await isDead(pid)) {
        resolve({ code: null, signal: null });
        return;
      }
      timer = setTimeout(() => void poll(), pollMs);
      timer.unref();
    };
    void poll();
  });
  return {
    pid,
    exit,
    kill: (sig) => {
      void isVmOf(pid, runtimeDir).then((same) => {
        if (!same) return;
        try {
          process.kill(pid, sig);
        } catch {
          // Already gone.
        }
      });
    },
    detach: () => {
      detached = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

/**
 * setVmPriority sets the nice value of every thread of pid (Linux nice is per thread, and QEMU
 * starts its vCPU, RCU and worker threads early). Threads that vanish meanwhile are skipped.
 */
export async function setVmPriority(pid: number, nice: number): Promise<void> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [String(pid)]);
  for (const t of tids) {
    const tid = Number(t);
    if (!Number.isInteger(tid) || tid <= 0) continue;
    try {
      setPriority(tid, nice);
    } catch {
      // The thread ended, or we may not raise its priority (not root): nothing to do.
    }
  }
}
