// Running the host's mount tools (mount, umount, mknod, mkfifo) with a deadline:
// Node has no mount(2), so storage drives util-linux the way an operator would.

import { execFile } from 'node:child_process';
import { Code, HakoError, errorf } from '../errors/index.js';

/** ExecOptions bounds one tool run. */
export interface ExecOptions {
  /** timeoutMs kills the tool after this long (default 10 s: a mount never needs more). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** input is written to the tool's stdin (then closed); without it stdin is empty. */
  input?: string;
}

/** execTool runs argv without a shell and resolves with stdout; it rejects with the tool's stderr. */
export function execTool(argv: readonly string[], opts: ExecOptions = {}): Promise<string> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(errorf(Code.INVALID_ARGUMENT, 'execTool: empty argv'));
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, signal: opts.signal, env: { ...process.env, LC_ALL: 'C' } },
      (err, stdout, stderr) => {
        if (!err) {
          resolve(stdout);
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        if (e.name === 'AbortError') {
          reject(new HakoError(Code.CANCELLED, `${argv.join(' ')}: cancelled`, { cause: err }));
        } else if (e.killed) {
          reject(new HakoError(Code.DEADLINE_EXCEEDED, `${argv.join(' ')}: no result within ${timeoutMs} ms`, { cause: err }));
        } else if (e.code === 'ENOENT') {
          reject(new HakoError(Code.FAILED_PRECONDITION, `${cmd} is not installed`, { cause: err }));
        } else {
          const why = stderr.trim().split('\n').slice(-3).join('; ') || e.message;
          reject(new HakoError(Code.INTERNAL, `${argv.join(' ')}: ${why}`, { cause: err }));
        }
      },
    );
    child.stdin?.on('error', () => {}); // a tool that exits early closes its stdin: its exit status tells why
    child.stdin?.end(opts.input ?? '');
  });
}
