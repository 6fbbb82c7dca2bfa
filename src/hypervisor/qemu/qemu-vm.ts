// QemuVm: one running QEMU process and its QMP connection. It notices the process exit,
// explains why it ended, and stops it in order: QMP quit, then SIGTERM, then SIGKILL.

import type { ChildProcess } from 'node:child_process';
import { Code, errorf } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import { waitSettled } from '../deadline.js';
import type { CallOptions, QmpAccess, StopOptions, Vm, VmEvent, VmEvents, VmExit, VmExitReason, VmRunState } from '../vm.js';
import { removeStaleFiles } from './leftover.js';
import type { ConsoleReader } from './console.js';
import type { QmpClient } from './qmp.js';
import { qemuRuntimeFiles, readLogTail, type QemuRuntimeFiles } from './runtime-files.js';

/** ProcessExit is what Node reports when a child ends. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const CRASH_SIGNALS = new Set<string>(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGSYS']);

/** explainExit turns a process exit, the last QMP SHUTDOWN event and the stop step in progress into a VmExit. Pure. */
export function explainExit(
  exit: ProcessExit,
  shutdown: { guest?: unknown; reason?: unknown } | undefined,
  stopStep: VmExit['stoppedBy'] | undefined,
  logTail: string,
): VmExit {
  const how = exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const withTail = (s: string): string => (logTail.length > 0 ? `${s}: ${logTail}` : s);
  let reason: VmExitReason;
  let detail: string;
  if (stopStep !== undefined) {
    reason = 'stop';
    detail = `qemu stopped by ${stopStep === 'quit' ? 'QMP quit' : stopStep.toUpperCase()} (${how})`;
  } else if (shutdown !== undefined && (exit.signal === null || exit.signal === 'SIGTERM')) {
    const why = typeof shutdown.reason === 'string' ? shutdown.reason : 'unknown';
    if (why === 'guest-shutdown') reason = 'guest-shutdown';
    else if (why === 'guest-reset' || why === 'guest-panic') reason = 'guest-reset';
    else if (shutdown.guest === true) reason = 'guest-shutdown';
    else reason = 'host-quit';
    detail = `qemu shut down (${why}) and ${how}`;
  } else if (exit.signal !== null) {
    reason = CRASH_SIGNALS.has(exit.signal) ? 'crashed' : 'killed';
    detail = reason === 'crashed' ? withTail(`qemu ${how}`) : `qemu ${how}`;
  } else if (exit.code !== 0) {
    reason = 'crashed';
    detail = withTail(`qemu ${how}`);
  } else {
    reason = 'host-quit';
    detail = `qemu ${how} without a shutdown event`;
  }
  const out: VmExit = { code: exit.code, signal: exit.signal, reason, detail };
  if (stopStep !== undefined) out.stoppedBy = stopStep;
  return out;
}

/** QemuVmInit is what the driver hands a new QemuVm. */
export interface QemuVmInit {
  id: string;
  child: ChildProcess;
  qmp: QmpClient;
  /** console copies the guest's serial console into its log; the VM closes it when QEMU ends. */
  console?: ConsoleReader;
  processExit: Promise<ProcessExit>;
  runtimeDir: string;
  log: Logger;
  startupMs: number;
}

/** QemuVm is a running QEMU controlled over QMP; it has the VmEvents and QmpAccess abilities. */
export class QemuVm implements Vm, VmEvents, QmpAccess {
  readonly id: string;
  readonly pid: number;
  readonly exited: Promise<VmExit>;
  /** startupMs is how long start() took from spawn to a ready QMP connection. */
  readonly startupMs: number;
  private exitInfo: VmExit | undefined;
  private lastShutdown: { guest?: unknown; reason?: unknown } | undefined;
  private stopStep: VmExit['stoppedBy'] | undefined;
  private stopping: Promise<VmExit> | undefined;
  private readonly processExit: Promise<ProcessExit>;

  private readonly child: ChildProcess;
  private readonly qmpClient: QmpClient;
  private readonly consoleReader: ConsoleReader | undefined;
  private readonly runtimeDir: string;
  private readonly files: QemuRuntimeFiles;
  private readonly log: Logger;

  /** The driver builds a QemuVm once QMP is ready; processExit must settle when the child ends. */
  constructor(init: QemuVmInit) {
    this.id = init.id;
    this.child = init.child;
    this.pid = init.child.pid!;
    this.qmpClient = init.qmp;
    this.consoleReader = init.console;
    this.processExit = init.processExit;
    this.runtimeDir = init.runtimeDir;
    this.files = qemuRuntimeFiles(init.runtimeDir);
    this.log = init.log;
    this.startupMs = init.startupMs;
    this.qmpClient.onEvent((ev) => {
      if (ev.event === 'SHUTDOWN') this.lastShutdown = ev.data;
      if (ev.event === 'SHUTDOWN' || ev.event === 'STOP' || ev.event === 'RESUME' || ev.event === 'GUEST_PANICKED') {
        this.log.info('qemu event', { event: ev.event, data: ev.data });
      }
    });
    this.exited = this.processExit.then((e) => this.onProcessExit(e));
  }

  private async onProcessExit(e: ProcessExit): Promise<VmExit> {
    // A SHUTDOWN event may still sit unread in the socket when the exit is noticed; QEMU closes
    // the socket as it exits, so wait (briefly) for the close to have read everything.
    await waitSettled(this.qmpClient.closed, 500);
    this.qmpClient.close();
    // Likewise the console's last lines (a panic) may still be in flight: let them reach the log.
    if (this.consoleReader !== undefined) {
      await waitSettled(this.consoleReader.ended, 500);
      await this.consoleReader.close();
    }
    const tail = await readLogTail(this.files.logFile);
    const info = explainExit(e, this.lastShutdown, this.stopStep, tail);
    // After SIGKILL QEMU cannot remove its own pidfile and sockets.
    await removeStaleFiles(this.runtimeDir).catch(() => {});
    this.exitInfo = info;
    const level = info.reason === 'crashed' || info.reason === 'killed' ? 'warn' : 'info';
    this.log[level]('qemu exited', { pid: this.pid, code: info.code, signal: info.signal, reason: info.reason, detail: info.detail });
    return info;
  }

  /** exit returns how the VM ended, or undefined while it runs. */
  exit(): VmExit | undefined {
    return this.exitInfo;
  }

  /** stop ends QEMU: QMP quit (timeoutMs), then SIGTERM (termTimeoutMs), then SIGKILL (killTimeoutMs). Concurrent calls share one stop. */
  stop(opts: StopOptions = {}): Promise<VmExit> {
    if (this.exitInfo !== undefined) return Promise.resolve(this.exitInfo);
    if (this.stopping === undefined) {
      this.stopping = this.doStop(opts).catch((err: unknown) => {
        this.stopping = undefined;
        throw err;
      });
    }
    return this.stopping;
  }

  private async doStop(opts: StopOptions): Promise<VmExit> {
    const { signal } = opts;
    const gone = this.processExit;
    const ended = async (ms: number): Promise<boolean> => {
      const abort = new Promise<void>((resolve) => {
        if (signal === undefined) return;
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await waitSettled(Promise.race([gone, abort]), ms);
      return waitSettled(gone, 0);
    };
    if (await waitSettled(gone, 0)) return this.exited;

    if (signal?.aborted !== true && !this.qmpClient.isClosed) {
      this.stopStep = 'quit';
      const timeoutMs = opts.timeoutMs ?? 3000;
      // QEMU may close the connection before the reply arrives; the exit is what counts.
      this.qmpClient.execute('quit', undefined, { timeoutMs }).catch(() => {});
      if (await ended(timeoutMs)) return this.exited;
      this.log.warn('qemu did not quit in time, sending SIGTERM', { pid: this.pid, timeoutMs });
    }
    if (signal?.aborted !== true) {
      this.stopStep = 'sigterm';
      this.child.kill('SIGTERM');
      if (await ended(opts.termTimeoutMs ?? 2000)) return this.exited;
      this.log.warn('qemu ignored SIGTERM, sending SIGKILL', { pid: this.pid });
    }
    this.stopStep = 'sigkill';
    this.child.kill('SIGKILL');
    const killMs = opts.killTimeoutMs ?? 5000;
    if (await waitSettled(gone, killMs)) return this.exited;
    // We give up on the process; stop copying its console at least.
    await this.consoleReader?.close();
    throw errorf(Code.DEADLINE_EXCEEDED, `qemu pid ${this.pid} still running ${killMs} ms after SIGKILL`);
  }

  /** pause stops the vCPUs (QMP `stop`). */
  async pause(opts: CallOptions = {}): Promise<void> {
    await this.qmp('stop', undefined, opts);
  }

  /** resume restarts the vCPUs (QMP `cont`). */
  async resume(opts: CallOptions = {}): Promise<void> {
    await this.qmp('cont', undefined, opts);
  }

  /** state asks QEMU for its run state (QMP `query-status`). */
  async state(opts: CallOptions = {}): Promise<VmRunState> {
    const r = await this.qmp<{ running?: unknown; status?: unknown }>('query-status', undefined, opts);
    if (typeof r?.running !== 'boolean' || typeof r.status !== 'string') {
      throw errorf(Code.INTERNAL, `QMP query-status returned an unexpected value: ${JSON.stringify(r)}`);
    }
    return { running: r.running, status: r.status };
  }

  /** qmp runs a raw QMP command; it fails with FAILED_PRECONDITION once the VM has exited. */
  qmp<T = unknown>(command: string, args?: Record<string, unknown>, opts: CallOptions = {}): Promise<T> {
    if (this.exitInfo !== undefined || this.qmpClient.isClosed) {
      return Promise.reject(errorf(Code.FAILED_PRECONDITION, `vm ${this.id}: QMP ${command}: qemu has exited`));
    }
    return this.qmpClient.execute<T>(command, args, opts);
  }

  /** onEvent forwards QMP events as VmEvents until the returned function is called. */
  onEvent(listener: (ev: VmEvent) => void): () => void {
    return this.qmpClient.onEvent((ev) => listener({ name: ev.event, data: ev.data, timestampMs: ev.timestampMs }));
  }
}
