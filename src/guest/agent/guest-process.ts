// One container process (init or exec) as the agent sees it: the `crun run`/`crun exec` child
// that waits for it, its pid from --pid-file, its stdio buffers, its exit status and tty size.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readlink, stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { Code, HakoError } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import { crunGlobalArgs, parseCrunLog, runCommand, signalNumber } from './crun.js';
import { OUTPUT_COALESCE, OutputBuffer } from './output-buffer.js';
import { PIPE_PACE_MS, PipeGate } from './pipe-gate.js';
import { waitPidFile } from './pid-file.js';

/** Exit is how a process ended: exit code, or 128 + signal number. */
export interface Exit {
  status: number;
  exitedAt: Date;
}

/** LaunchSpec is what starts a process: the crun subcommand and the files crun writes. */
export interface LaunchSpec {
  /** crunArgs follow crun's global options, e.g. ['run', '--bundle', dir, '--pid-file', f, id]. */
  crunArgs: string[];
  pidFile: string;
  logFile: string;
  /** ptyHelper runs crun on a pty (hako-pty) for terminal processes; undefined = pipes. */
  ptyHelper?: string;
  /** pidTimeoutMs bounds the wait for crun's pid file. */
  pidTimeoutMs?: number;
}

const MAX_PENDING_STDIN = 1 << 20;
const MAX_STDIN_WRITE = 4 << 20;

/** GuestProcess exists from CreateContainer/ExecProcess on; start() spawns crun. */
export class GuestProcess {
  pid = 0;
  exit: Exit | undefined;
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  private child: ChildProcess | null = null;
  private outGate: PipeGate | null = null;
  private errGate: PipeGate | null = null;
  private stdinStream: Writable | null = null;
  private pendingStdin: Buffer[] = [];
  private pendingStdinBytes = 0;
  private stdinClosed = false;
  private readonly exitWaiters: Array<(e: Exit) => void> = [];
  private pendingSize: { rows: number; cols: number } | null = null;
  private readonly log: Logger;

  constructor(
    readonly containerId: string,
    readonly execId: string,
    readonly stdin: boolean,
    readonly terminal: boolean,
    log: Logger,
    /** ptyFallback: a terminal was asked for but the guest cannot make one (pipes instead). */
    private readonly ptyFallback = false,
  ) {
    this.log = log.child({ container: containerId, exec: execId || undefined });
    // With ptyFallback both pipes feed stdout, so a full stdout buffer pauses both.
    this.stdout = new OutputBuffer({
      coalesce: OUTPUT_COALESCE,
      pause: () => { this.outGate?.hold(); if (ptyFallback) this.errGate?.hold(); },
      resume: () => { this.outGate?.release(); if (ptyFallback) this.errGate?.release(); },
    });
    this.stderr = new OutputBuffer({ coalesce: OUTPUT_COALESCE, pause: () => this.errGate?.hold(), resume: () => this.errGate?.release() });
    if (terminal || ptyFallback) this.stderr.end(); // a terminal merges stderr into stdout
  }

  /** started reports whether start() was called. */
  get started(): boolean {
    return this.child !== null;
  }

  /** start spawns crun and resolves with the container process's pid once crun wrote it. */
  async start(spec: LaunchSpec): Promise<number> {
    if (this.child) throw new HakoError(Code.FAILED_PRECONDITION, 'process already started');
    const crunArgv = ['crun', ...crunGlobalArgs(spec.logFile), ...spec.crunArgs];
    let child: ChildProcess;
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', SHELL: '/bin/sh' };
    const stdio: ['pipe' | 'ignore', 'pipe', 'pipe'] = [this.stdin || spec.ptyHelper ? 'pipe' : 'ignore', 'pipe', 'pipe'];
    if (spec.ptyHelper) {
      // hako-pty gives crun a tty on fd 0 (crun's foreground terminal mode needs one and
      // relays it to the container's own pty); raw, so only the container's pty echoes.
      child = spawn(spec.ptyHelper, ['--raw', '--', ...crunArgv], { stdio, env });
    } else {
      child = spawn(crunArgv[0]!, crunArgv.slice(1), { stdio, env });
    }
    this.child = child;
    const exited = new Promise<Exit>((resolve) => {
      child.on('exit', (code, sig) => {
        const e = { status: code ?? 128 + signalNumber(sig), exitedAt: new Date() };
        resolve(e);
      });
    });
    const spawnError = new Promise<never>((_, reject) => child.on('error', (err) => reject(HakoError.wrap(err, 'spawning crun'))));
    spawnError.catch(() => {});
    this.wireOutput(child);
    this.wireStdin(child, !!spec.ptyHelper && !this.stdin);

    let pid: number;
    try {
      pid = await Promise.race([waitPidFile(spec.pidFile, { timeoutMs: spec.pidTimeoutMs ?? 60_000, exited }), spawnError]);
    } catch (err) {
      child.kill('SIGKILL');
      void exited.then((e) => this.setExit(e));
      throw err;
    }
    if (pid > 0) {
      this.pid = pid;
      void exited.then((e) => this.setExit(e));
      if (this.pendingSize) void this.resize(this.pendingSize.rows, this.pendingSize.cols).catch(() => {});
      return pid;
    }
    // crun exited without writing a pid: the process never ran.
    const e = await exited;
    const failure = parseCrunLog(await readFile(spec.logFile, 'utf8').catch(() => ''));
    if (failure?.execStatus !== undefined) {
      // As a shell would: report 127/126 as the exit status (crun's message is on stderr);
      // the pid is crun's own, so the host has a pid to match the exit against.
      this.pid = child.pid ?? 1;
      this.log.info('process could not be executed', { status: failure.execStatus, message: failure.message });
      this.setExit({ status: failure.execStatus, exitedAt: e.exitedAt });
      return this.pid;
    }
    this.setExit(e);
    throw new HakoError(Code.UNKNOWN, `crun ${spec.crunArgs[0]} failed (status ${e.status}): ${failure?.message ?? 'no message'}`);
  }

  /** waitExit resolves with the exit once the process ended. */
  waitExit(signal?: AbortSignal): Promise<Exit> {
    if (this.exit) return Promise.resolve(this.exit);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.exitWaiters.indexOf(done);
        if (i >= 0) this.exitWaiters.splice(i, 1);
        reject(signal!.reason ?? new HakoError(Code.CANCELLED, 'wait cancelled'));
      };
      const done = (e: Exit) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(e);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.exitWaiters.push(done);
    });
  }

  /** writeStdin writes data to the process (queued until it starts); resolves with the length once flushed. */
  async writeStdin(data: Uint8Array, signal?: AbortSignal): Promise<number> {
    if (!this.stdin) throw new HakoError(Code.FAILED_PRECONDITION, 'the process was created without stdin');
    if (this.stdinClosed) throw new HakoError(Code.FAILED_PRECONDITION, 'stdin is closed');
    if (data.length > MAX_STDIN_WRITE) throw new HakoError(Code.INVALID_ARGUMENT, `stdin chunk of ${data.length} bytes is too large`);
    if (data.length === 0) return 0;
    const buf = Buffer.from(data);
    if (!this.stdinStream) {
      if (this.pendingStdinBytes + buf.length > MAX_PENDING_STDIN) {
        throw new HakoError(Code.RESOURCE_EXHAUSTED, 'more than 1 MiB of stdin before the process started');
      }
      this.pendingStdin.push(buf);
      this.pendingStdinBytes += buf.length;
      return buf.length;
    }
    const stream = this.stdinStream;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal!.reason ?? new HakoError(Code.CANCELLED, 'write cancelled'));
      signal?.addEventListener('abort', onAbort, { once: true });
      stream.write(buf, (err) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(new HakoError(Code.FAILED_PRECONDITION, `stdin closed: ${err.message}`));
        else resolve();
      });
    });
    return buf.length;
  }

  /** closeStdin ends the process's stdin (after anything queued). */
  closeStdin(): void {
    if (this.stdinClosed) return;
    this.stdinClosed = true;
    this.stdinStream?.end();
  }

  /** kill sends a signal to the process; NOT_FOUND once it has exited. */
  kill(sig: number): void {
    if (this.exit || !this.child) throw new HakoError(Code.NOT_FOUND, `process ${this.execId || 'init'} of ${this.containerId} is not running`);
    try {
      process.kill(this.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') throw new HakoError(Code.NOT_FOUND, `process ${this.pid} is gone`);
      throw HakoError.wrap(err, `kill ${this.pid}`);
    }
  }

  /**
   * resize sets the window size of the process's pty (TIOCSWINSZ via busybox stty on
   * the slave), which delivers SIGWINCH to its foreground group. Before start it is remembered.
   */
  async resize(rows: number, cols: number): Promise<void> {
    if (!this.terminal) {
      if (this.ptyFallback) return; // nothing to resize; the host asked for a terminal it did not get
      throw new HakoError(Code.FAILED_PRECONDITION, 'the process has no terminal');
    }
    if (this.pid === 0) {
      this.pendingSize = { rows, cols };
      return;
    }
    // Like runc, a resize that races with the exit is not an error: there is no window left.
    if (this.exit) return;
    // A 0x0 size means the client has no window (its stdin is no terminal); stty cannot set 0.
    if (rows === 0 || cols === 0) return;
    let slave: string;
    try {
      slave = await this.ptySlave();
    } catch (err) {
      if (this.exit) return;
      throw err;
    }
    const r = await runCommand(['stty', '-F', slave, 'rows', String(rows), 'cols', String(cols)], { timeoutMs: 10_000 });
    if (r.status !== 0) throw new HakoError(Code.UNKNOWN, `stty: ${r.stderr.trim().slice(0, 500)}`);
  }

  /**
   * ptySlave finds the container's own pty among the process's fds 0-2: a pts from the
   * container's devpts, not the agent's (crun switches fds just after the pid appears).
   */
  private async ptySlave(): Promise<string> {
    const ours = (await stat('/dev/pts')).dev;
    for (let attempt = 0; attempt < 100; attempt++) {
      for (const fd of [0, 1, 2]) {
        const p = `/proc/${this.pid}/fd/${fd}`;
        try {
          if (!(await readlink(p)).startsWith('/dev/pts/')) continue;
          if ((await stat(p)).dev !== ours) return p;
        } catch {
          // fd closed or the process is gone
        }
      }
      if (this.exit) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new HakoError(Code.NOT_FOUND, `no container pty found for pid ${this.pid}`);
  }

  /** discard drops buffered output and forgets waiters' data (the container is being removed). */
  discard(): void {
    this.stdout.discard();
    this.stderr.discard();
  }

  private setExit(e: Exit): void {
    if (this.exit) return;
    this.exit = e;
    this.log.info('process exited', { pid: this.pid, status: e.status });
    for (const w of this.exitWaiters.splice(0)) w(e);
  }

  private wireOutput(child: ChildProcess): void {
    // Without a pty, a process that asked for one gets stderr merged into stdout, as a
    // terminal would, since the host reads only stdout then. stdout ends after both pipes.
    const merge = this.ptyFallback;
    let open = merge ? 2 : 1;
    const endStdout = () => {
      if (--open === 0) this.stdout.end();
    };
    const outGate = (this.outGate = new PipeGate(child.stdout!, PIPE_PACE_MS));
    const errGate = (this.errGate = new PipeGate(child.stderr!, PIPE_PACE_MS));
    child.stdout!.on('data', (c: Buffer) => {
      this.stdout.push(c);
      outGate.chunk();
    });
    child.stdout!.once('end', () => {
      outGate.close();
      endStdout();
    });
    child.stdout!.on('error', (err) => {
      this.log.warn('stdout pipe error', { err });
      child.stdout!.destroy();
      endStdout();
    });
    child.stderr!.on('data', (c: Buffer) => {
      errGate.chunk();
      if (this.terminal) this.log.warn('pty wrapper stderr', { text: c.toString('utf8').slice(0, 1000) });
      else if (merge) this.stdout.push(c);
      else this.stderr.push(c);
    });
    const endStderr = () => {
      errGate.close();
      if (merge) endStdout();
      else this.stderr.end();
    };
    child.stderr!.once('end', endStderr);
    child.stderr!.on('error', () => {
      child.stderr!.destroy();
      endStderr();
    });
  }

  private wireStdin(child: ChildProcess, keepOpenUnused: boolean): void {
    const s = child.stdin;
    if (!s) return;
    // EPIPE after the process exits must not become an uncaught exception.
    s.on('error', (err) => this.log.debug('stdin pipe error', { err }));
    if (keepOpenUnused) return; // a tty without host stdin: keep the pty's input open but silent
    this.stdinStream = s;
    for (const b of this.pendingStdin) s.write(b);
    this.pendingStdin = [];
    this.pendingStdinBytes = 0;
    if (this.stdinClosed) s.end();
  }
}
