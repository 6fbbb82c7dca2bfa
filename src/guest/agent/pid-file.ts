// Waiting for crun's --pid-file: inotify on its directory says when it is written, a slow poll
// backs that up. Polling fast instead cost the 1-vCPU TCG guest ~0.2 s of crun's time per start.

import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Code, HakoError } from '../../errors/index.js';

/** PID_FILE_POLL_MS is the backup poll; inotify normally answers first. */
export const PID_FILE_POLL_MS = 100;

/** WaitPidFileOptions bound waitPidFile. */
export interface WaitPidFileOptions {
  timeoutMs: number;
  /** exited settles when crun has exited: then the file is read once more and 0 means "no pid". */
  exited: Promise<unknown>;
  signal?: AbortSignal;
  /** pollMs replaces PID_FILE_POLL_MS (tests). */
  pollMs?: number;
}

/**
 * waitPidFile resolves with the pid crun wrote to path, or 0 when crun exited without writing
 * one. It rejects with DEADLINE_EXCEEDED after timeoutMs and with the signal's reason on abort.
 * An empty or partial file (crun creates it, then writes) is read again on the next event.
 */
export async function waitPidFile(path: string, opts: WaitPidFileOptions): Promise<number> {
  opts.signal?.throwIfAborted();
  const name = basename(path);
  let kicked = false;
  let wake: (() => void) | null = null;
  const kick = (): void => {
    kicked = true;
    const w = wake;
    wake = null;
    w?.();
  };
  let done = false;
  void opts.exited.then(() => {
    done = true;
    kick();
  });
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file === name) kick();
    });
    watcher.on('error', () => {}); // the poll still runs
  } catch {
    // no inotify: the poll alone finds the file
  }
  const onAbort = (): void => kick();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const deadline = Date.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? PID_FILE_POLL_MS;
  try {
    for (;;) {
      // Sample "exited" before reading: a fast process may exit right after crun wrote the file.
      const wasDone = done;
      kicked = false;
      const pid = await readPid(path);
      if (pid > 0) return pid;
      if (wasDone) return 0;
      opts.signal?.throwIfAborted();
      const left = deadline - Date.now();
      if (left <= 0) throw new HakoError(Code.DEADLINE_EXCEEDED, `crun wrote no pid file within ${opts.timeoutMs} ms`);
      if (kicked) continue; // an event came while reading
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          wake = null;
          resolve();
        }, Math.min(pollMs, left));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    watcher?.close();
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** readPid returns the positive pid in a pid file, or 0 when it is missing, empty or not a pid yet. */
export async function readPid(path: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return 0;
  }
  const t = text.trim();
  if (!/^\d{1,10}$/.test(t)) return 0;
  const pid = Number(t);
  return pid > 0 && pid <= 0x3fffffff ? pid : 0;
}
