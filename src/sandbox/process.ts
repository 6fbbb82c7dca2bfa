// Process: one process of a container in the guest (the init process, exec id '', or an exec):
// its stdio streams, start, resize and wait, where wait resolves only after output is drained.

import type { Readable, Writable } from 'node:stream';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { AgentClient } from '../agent-client/index.js';
import { OutputPump, stdinWritable } from './stdio.js';

/** ExitInfo is how a process ended. */
export interface ExitInfo {
  /** exitStatus is the exit code, or 128 + N when signal N killed it. */
  exitStatus: number;
  exitedAt: Date;
}

/** ProcessHost is what a Process needs from its container and sandbox. */
export interface ProcessHost {
  /** api is the agent (or, for `hako exec`, the owner's control socket speaking the same API). */
  api: AgentClient;
  containerId: string;
  log: Logger;
  /** failure is the reason the sandbox is unusable, if it is. */
  failure(): HakoError | undefined;
  /** onExit is told when the process has exited and its output is drained. */
  onExit(p: Process, info: ExitInfo): void;
}

/** ProcessOptions creates a Process. */
export interface ProcessOptions {
  execId: string;
  stdin: boolean;
  terminal: boolean;
  /** starter runs the process in the guest and returns its pid. */
  starter: () => Promise<number>;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  // Nobody may ever wait for it: an unobserved rejection must not crash the owner.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Process is one process in a container; created by Container, started by start(). */
export class Process {
  readonly execId: string;
  readonly terminal: boolean;
  /** pid is the process id in the guest, 0 until started. */
  pid = 0;
  /** exited is set once the process has exited and its output is drained. */
  exited: ExitInfo | undefined;
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  readonly stderr: Readable | null;

  private readonly out: OutputPump;
  private readonly err: OutputPump | null;
  private readonly started = deferred<number>();
  private readonly done = deferred<ExitInfo>();
  private startCalled: Promise<number> | undefined;
  private rawExit: ExitInfo | undefined;
  private readonly log: Logger;

  constructor(private readonly host: ProcessHost, private readonly opts: ProcessOptions) {
    this.execId = opts.execId;
    this.terminal = opts.terminal;
    this.log = host.log.child({ exec: opts.execId || undefined });
    const cid = host.containerId;
    const eid = opts.execId;
    this.out = new OutputPump('stdout', (maxLen) => host.api.readStdout(cid, eid, maxLen), this.log);
    this.stdout = this.out.stream;
    // With a terminal, the pty merges stderr into stdout.
    this.err = opts.terminal ? null : new OutputPump('stderr', (maxLen) => host.api.readStderr(cid, eid, maxLen), this.log);
    this.stderr = this.err?.stream ?? null;
    this.stdin = opts.stdin
      ? stdinWritable(`${host.containerId}/${opts.execId || 'init'} stdin`, {
          ready: () => this.started.promise.then(() => {}),
          write: (data) => host.api.writeStdin(cid, eid, data),
          close: () => host.api.closeStdin(cid, eid),
          gone: () => this.rawExit !== undefined || host.failure() !== undefined,
        }, this.log)
      : null;
  }

  /** start runs the process (for the init process, Container.start does the same) and returns its pid. */
  start(): Promise<number> {
    this.startCalled ??= this.doStart();
    return this.startCalled;
  }

  private async doStart(): Promise<number> {
    const failure = this.host.failure();
    if (failure) throw failure;
    let pid: number;
    try {
      pid = await this.opts.starter();
    } catch (err) {
      const e = HakoError.from(err);
      this.started.reject(e);
      this.done.reject(e);
      this.out.stop();
      this.err?.stop();
      throw e;
    }
    if (!Number.isInteger(pid) || pid <= 0) throw errorf(Code.INTERNAL, `agent reported pid ${pid}`);
    this.pid = pid;
    this.started.resolve(pid);
    this.out.start();
    this.err?.start();
    void this.watch();
    return pid;
  }

  private async watch(): Promise<void> {
    let info: ExitInfo;
    try {
      // AgentClient validates the status range and the timestamp.
      info = await this.host.api.waitProcess(this.host.containerId, this.execId);
    } catch (err) {
      // A lost connection is the VM or the owner going away: the sandbox learns why (QEMU's exit)
      // a moment later and fails every process with that reason; give it that moment.
      if (HakoError.from(err).code === Code.UNAVAILABLE) {
        for (let i = 0; i < 40 && !this.host.failure(); i++) await new Promise((r) => setTimeout(r, 50));
      }
      this.fail(this.host.failure() ?? HakoError.wrap(err, `waiting for process ${this.execId || 'init'}`));
      return;
    }
    this.rawExit = info;
    await Promise.all([this.out.drained, this.err?.drained]);
    this.exited = info;
    this.host.onExit(this, info);
    this.done.resolve(info);
  }

  /** fail ends the streams and rejects wait(); used when the VM or the agent is gone. */
  fail(err: HakoError): void {
    if (this.exited) return;
    this.out.stop();
    this.err?.stop();
    // The exit is already known: stopping the pumps lets watch() finish with it.
    if (this.rawExit) return;
    this.started.reject(err);
    this.done.reject(err);
  }

  /** hasExited reports whether the guest reported the exit (output may still be draining). */
  get hasExited(): boolean {
    return this.rawExit !== undefined;
  }

  /** wait resolves once the process exited and its stdout/stderr are drained; may be called before start. */
  wait(): Promise<ExitInfo> {
    return this.done.promise;
  }

  /** resize sets the terminal size of a terminal process. */
  async resize(rows: number, cols: number): Promise<void> {
    if (!this.terminal) throw errorf(Code.FAILED_PRECONDITION, `process ${this.execId || 'init'} has no terminal`);
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || rows > 65535 || cols > 65535) {
      throw errorf(Code.INVALID_ARGUMENT, `bad terminal size ${rows}x${cols}`);
    }
    await this.started.promise;
    await this.host.api.ttyWinResize(this.host.containerId, this.execId, rows, cols);
  }
}
