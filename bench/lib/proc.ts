// Runs a command with a hard deadline and measures its wall time.
// Used for every ctr/hako invocation the benchmarks time.

import { spawn } from 'node:child_process';

/** CmdResult is what one finished command produced. */
export interface CmdResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** ms is the wall time from spawn to exit, in milliseconds. */
  ms: number;
  /** startedAtMs is the epoch time of the spawn (to line up with timestamps the command logs). */
  startedAtMs: number;
  timedOut: boolean;
}

/** CmdOptions configures runCmd. */
export interface CmdOptions {
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  input?: string;
  signal?: AbortSignal;
  /** maxBytes bounds captured output per stream (the rest is dropped). */
  maxBytes?: number;
}

/** runCmd spawns argv, waits for exit (killing it with SIGKILL at the deadline) and returns its output and wall time. */
export function runCmd(argv: readonly string[], opts: CmdOptions): Promise<CmdResult> {
  const max = opts.maxBytes ?? 1 << 20;
  return new Promise((resolve, reject) => {
    const startedAtMs = Date.now();
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0]!, argv.slice(1), {
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { if (stdout.length < max) stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < max) stderr += d; });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    const kill = (): void => { child.kill('SIGKILL'); };
    const timer = setTimeout(() => { timedOut = true; kill(); }, opts.timeoutMs);
    const onAbort = (): void => kill();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.on('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ code, signal, stdout, stderr, ms, startedAtMs, timedOut });
    });
  });
}

/** describeFailure turns a failed CmdResult into one short line for reports. */
export function describeFailure(argv: readonly string[], r: CmdResult): string {
  const why = r.timedOut ? 'timed out' : r.code !== null ? `exit ${r.code}` : `signal ${r.signal}`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 300);
  return `\`${argv.join(' ')}\` ${why}${tail ? `: ${tail}` : ''}`;
}

/** sleep waits ms milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
