// crun in the guest: the short-lived commands (kill, delete, pause, update, version) run to
// completion with a timeout; `run` and `exec` are started by process-launch.ts as children.

import { spawn } from 'node:child_process';
import { Code, HakoError } from '../../errors/index.js';

/** CRUN_ROOT is crun's state directory in the guest (tmpfs). */
export const CRUN_ROOT = '/run/crun';

/** crunGlobalArgs are the options every crun command gets: its root and the cgroupfs manager (no systemd in the guest). */
export function crunGlobalArgs(logFile?: string): string[] {
  const args = ['--root', CRUN_ROOT, '--cgroup-manager=cgroupfs'];
  if (logFile !== undefined) args.push(`--log=file:${logFile}`, '--log-format=json');
  return args;
}

/** CommandResult is what a finished command printed and how it ended. */
export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

const MAX_CAPTURE = 64 * 1024;

/**
 * runCommand runs argv to completion (no shell), capturing at most 64 KiB of each
 * stream; it kills the command at the timeout and rejects with DEADLINE_EXCEEDED.
 */
export function runCommand(argv: string[], opts: { timeoutMs?: number; signal?: AbortSignal; input?: string } = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let failed: HakoError | null = null;
    child.stdout!.on('data', (c: Buffer) => { if (stdout.length < MAX_CAPTURE) stdout += c.toString('utf8'); });
    child.stderr!.on('data', (c: Buffer) => { if (stderr.length < MAX_CAPTURE) stderr += c.toString('utf8'); });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
    const kill = (err: HakoError) => {
      failed = err;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(new HakoError(Code.DEADLINE_EXCEEDED, `${argv.slice(0, 6).join(' ')}: no result within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = () => kill(new HakoError(Code.CANCELLED, `${argv.slice(0, 6).join(' ')}: cancelled`));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(HakoError.wrap(err, `spawning ${argv[0]}`));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (failed) return reject(failed);
      resolve({ status: code ?? 128 + signalNumber(sig), stdout, stderr });
    });
  });
}

/** crun runs one crun command and throws a HakoError carrying crun's message when it fails. */
export async function crun(args: string[], opts: { timeoutMs?: number; what?: string } = {}): Promise<CommandResult> {
  const r = await runCommand(['crun', ...crunGlobalArgs(), ...args], { timeoutMs: opts.timeoutMs ?? 30_000 });
  if (r.status !== 0) {
    const msg = (r.stderr.trim() || r.stdout.trim() || `exit status ${r.status}`).slice(0, 2000);
    throw new HakoError(classifyCrunError(msg), `${opts.what ?? `crun ${args[0]}`}: ${msg}`);
  }
  return r;
}

/** classifyCrunError maps crun's message to a status code (NOT_FOUND for unknown containers). */
export function classifyCrunError(msg: string): Code {
  if (/container .* does not exist|opening file `[^`]*\/status`: No such file or directory|cannot find container/i.test(msg)) return Code.NOT_FOUND;
  if (/is not running|container not running|not paused|already paused/i.test(msg)) return Code.FAILED_PRECONDITION;
  return Code.UNKNOWN;
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10,
  SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGSTKFLT: 16, SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19,
  SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28,
  SIGIO: 29, SIGPWR: 30, SIGSYS: 31,
};

/** signalNumber converts Node's signal name to its Linux number (0 when unknown). */
export function signalNumber(sig: NodeJS.Signals | string | null): number {
  if (sig === null) return 0;
  return SIGNALS[sig] ?? 0;
}

/** CrunFailure is crun's own error for a process that never ran, with the status a shell would report. */
export interface CrunFailure {
  message: string;
  /** status is 127 (command not found), 126 (not executable) or undefined for other failures. */
  execStatus: number | undefined;
}

/**
 * parseCrunLog reads crun's JSON log (--log-format=json) and returns its last error,
 * classified: a missing executable is 127 and an unexecutable one 126, like a shell.
 */
export function parseCrunLog(text: string): CrunFailure | null {
  let last: string | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const rec = JSON.parse(line) as { msg?: unknown; level?: unknown };
      if (rec.level === 'error' && typeof rec.msg === 'string') last = rec.msg;
    } catch {
      if (line.length > 0) last = line;
    }
  }
  if (last === null) return null;
  const message = last.slice(0, 2000);
  if (/executable file .* not found|exec(ute)? .*: No such file or directory/i.test(message)) return { message, execStatus: 127 };
  if (/open executable|exec container process .*(Permission denied|Exec format error|Operation not permitted)|Permission denied.*exec/i.test(message)) {
    return { message, execStatus: 126 };
  }
  return { message, execStatus: undefined };
}
