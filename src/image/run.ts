// Runs the external tools the asset builders need (tar, make, mke2fs, umoci, ldd)
// with a timeout, an AbortSignal, bounded captured output and optional line callbacks.

import { spawn } from 'node:child_process';
import { Code, HakoError, errorf } from '../errors/index.js';

/** RunOptions controls one child process run. */
export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** timeoutMs kills the child (SIGKILL after SIGTERM grace) when it runs longer. */
  timeoutMs: number;
  /** onLine receives each stdout/stderr line as it arrives (without the newline). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** input is written to the child's stdin, which is then closed. */
  input?: string;
  /**
   * processGroup runs the child in its own process group and signals the whole
   * group on timeout/abort, so `make -j` does not leave compilers running.
   */
  processGroup?: boolean;
}

/** RunResult is what a finished, successful child produced (tails, bounded). */
export interface RunResult {
  stdout: string;
  stderr: string;
}

// Keep at most this much of each stream: enough for ldd/dpkg answers and for an
// error tail, without holding a whole kernel build log in memory.
const KEEP_BYTES = 256 * 1024;

/** run executes argv[0] with argv[1..] (no shell) and rejects unless it exits 0. */
export function run(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(errorf(Code.INVALID_ARGUMENT, 'run: empty argv'));
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(HakoError.from(opts.signal.reason ?? new Error('aborted'), Code.CANCELLED));
      return;
    }
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: opts.processGroup === true,
    });
    const signalChild = (sig: NodeJS.Signals): void => {
      try {
        if (opts.processGroup === true && child.pid !== undefined) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // already gone
      }
    };
    const out = { stdout: '', stderr: '' };
    const partial = { stdout: '', stderr: '' };
    let killedFor: HakoError | undefined;

    const kill = (why: HakoError): void => {
      if (killedFor !== undefined) return;
      killedFor = why;
      signalChild('SIGTERM');
      setTimeout(() => signalChild('SIGKILL'), 5000).unref();
    };
    const timer = setTimeout(
      () => kill(errorf(Code.DEADLINE_EXCEEDED, `${cmd} did not finish within ${Math.round(opts.timeoutMs / 1000)} s`)),
      opts.timeoutMs,
    );
    const onAbort = (): void => kill(errorf(Code.CANCELLED, `${cmd} cancelled`, opts.signal?.reason));
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      out[stream] = (out[stream] + text).slice(-KEEP_BYTES);
      if (opts.onLine === undefined) return;
      const lines = (partial[stream] + text).split('\n');
      partial[stream] = (lines.pop() ?? '').slice(-KEEP_BYTES);
      for (const line of lines) opts.onLine(line, stream);
    };
    child.stdout?.on('data', collect('stdout'));
    child.stderr?.on('data', collect('stderr'));
    if (opts.input !== undefined && child.stdin !== null) {
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }

    child.on('error', (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(HakoError.wrap(err, `cannot run ${cmd}`));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (opts.onLine !== undefined) {
        if (partial.stdout !== '') opts.onLine(partial.stdout, 'stdout');
        if (partial.stderr !== '') opts.onLine(partial.stderr, 'stderr');
      }
      if (killedFor !== undefined) {
        reject(killedFor);
        return;
      }
      if (code === 0) {
        resolve(out);
        return;
      }
      const tail = (out.stderr.trim() || out.stdout.trim()).split('\n').slice(-15).join('\n');
      const how = sig !== null ? `was killed by ${sig}` : `exited with ${code}`;
      reject(errorf(Code.INTERNAL, `${[cmd, ...args].join(' ')} ${how}${tail ? `:\n${tail}` : ''}`));
    });
  });
}
