// A cross-process exclusive lock on a file, so two `hako image build` runs never
// compile into the same kernel build tree or build the same asset twice at once.

import { spawn } from 'node:child_process';
import { Code, HakoError, errorf } from '../errors/index.js';

/** Lock is a held lock; release() lets the next waiter in. */
export interface Lock {
  release(): Promise<void>;
}

/**
 * acquireLock takes an exclusive flock(2) on path, waiting up to timeoutMs.
 *
 * Node has no flock, so a small `flock -x path cat` child holds it: the child
 * prints a marker once it owns the lock and keeps it until its stdin closes. If
 * this process dies for any reason the pipe closes, cat exits and the kernel
 * drops the lock, so there are no stale lock files to clean up.
 */
export function acquireLock(
  path: string,
  opts: { signal?: AbortSignal; timeoutMs: number; onWait?: () => void },
): Promise<Lock> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['-x', path, 'sh', '-c', 'echo locked; exec cat'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let settled = false;
    let stderr = '';
    const exited = new Promise<void>((done) => child.on('close', () => done()));
    const fail = (err: HakoError): void => {
      if (settled) return;
      settled = true;
      cleanup();
      child.kill('SIGKILL');
      reject(err);
    };
    const waitNote = setTimeout(() => opts.onWait?.(), 500);
    const timer = setTimeout(
      () => fail(errorf(Code.DEADLINE_EXCEEDED, `timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for lock ${path}`)),
      opts.timeoutMs,
    );
    const onAbort = (): void => fail(errorf(Code.CANCELLED, `cancelled while waiting for lock ${path}`, opts.signal?.reason));
    const cleanup = (): void => {
      clearTimeout(timer);
      clearTimeout(waitNote);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    if (opts.signal?.aborted) {
      onAbort();
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdin.on('error', () => {});
    child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-2000); });
    child.stdout.on('data', (c: Buffer) => {
      if (settled || !c.toString().includes('locked')) return;
      settled = true;
      cleanup();
      resolve({
        release: async () => {
          child.stdin.end();
          const deadline = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(deadline);
        },
      });
    });
    child.on('error', (err) => fail(HakoError.wrap(err, 'cannot run flock (util-linux)')));
    child.on('close', (code) => fail(errorf(Code.INTERNAL, `flock ${path} exited with ${code}: ${stderr.trim()}`)));
  });
}

/** withLock runs fn while holding the lock at path and always releases it. */
export async function withLock<T>(
  path: string,
  opts: { signal?: AbortSignal; timeoutMs: number; onWait?: () => void },
  fn: () => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(path, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
