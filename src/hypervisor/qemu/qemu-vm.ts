// QemuVm: one running QEMU process and its QMP connection. It notices the process exit,
// explains why it ended, stops it in order (QMP quit, SIGTERM, SIGKILL), saves and loads its state.

import { Code, errorf } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import { waitSettled } from '../deadline.js';
import type { CallOptions, HotNic, NicHotplug, QmpAccess, StopOptions, Vm, VmEvent, VmEvents, VmExit, VmExitReason, VmHandOff, VmRunState, VmStateSave } from '../vm.js';
import { removeStaleFiles } from './leftover.js';
import type { ConsoleReader } from './console.js';
import { loadState, saveState, type SavedState } from './migration.js';
import { plugNic, unplugNic } from './nic-hotplug.js';
import type { QmpClient } from './qmp.js';
import { qemuRuntimeFiles, readLogTail, type QemuRuntimeFiles } from './runtime-files.js';
import type { ProcessExit, VmProcess } from './vm-process.js';

export type { ProcessExit } from './vm-process.js';

const CRASH_SIGNALS = new Set<string>(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGSYS']);

/** explainExit turns a process exit, the last QMP SHUTDOWN event and the stop step in progress into a VmExit. Pure. */
export function explainExit(
  exit: ProcessExit,
  shutdown: { guest?: unknown; reason?: unknown } | undefined,
  stopStep: VmExit['stoppedBy'] | undefined,
  logTail: string,
): VmExit {
  const unknown = exit.code === null && exit.signal === null;
  const how = unknown ? 'ended (exit status unknown: not our child)' : exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
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
  } else if (unknown) {
    // An adopted QEMU that went without a SHUTDOWN event was killed or crashed; we cannot tell which.
    reason = 'killed';
    detail = withTail(`qemu ${how}, without a shutdown event`);
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
  proc: VmProcess;
  qmp: QmpClient;
  /** console copies the guest's serial console into its log; the VM closes it when QEMU ends. */
  console?: ConsoleReader;
  runtimeDir: string;
  log: Logger;
  startupMs: number;
}

/** QemuVm is a running QEMU controlled over QMP; it has the VmEvents, QmpAccess, VmStateSave and VmHandOff abilities. */
export class QemuVm implements Vm, VmEvents, QmpAccess, VmStateSave, VmHandOff, NicHotplug {
  readonly id: string;
  readonly pid: number;
  readonly exited: Promise<VmExit>;
  /** startupMs is how long start() took from spawn to a ready QMP connection. */
  readonly startupMs: number;
  private exitInfo: VmExit | undefined;
  private lastShutdown: { guest?: unknown; reason?: unknown } | undefined;
  private stopStep: VmExit['stoppedBy'] | undefined;
  private stopping: Promise<VmExit> | undefined;
  private released = false;
  private readonly processExit: Promise<ProcessExit>;

  private readonly proc: VmProcess;
  private readonly qmpClient: QmpClient;
  private readonly consoleReader: ConsoleReader | undefined;
  private readonly runtimeDir: string;
  private readonly files: QemuRuntimeFiles;
  private readonly log: Logger;

  /** The driver builds a QemuVm once QMP is ready; processExit must settle when the child ends. */
  constructor(init: QemuVmInit) {
    this.id = init.id;
    this.proc = init.proc;
    this.pid = init.proc.pid;
    this.qmpClient = init.qmp;
    this.consoleReader = init.console;
    this.processExit = init.proc.exit;
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
    this.exitInfo = info;
    // A released VM belongs to another process now, and its files may live elsewhere.
    if (this.released) return info;
    // After SIGKILL QEMU cannot remove its own pidfile and sockets.
    await removeStaleFiles(this.runtimeDir).catch(() => {});
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
      this.proc.kill('SIGTERM');
      if (await ended(opts.termTimeoutMs ?? 2000)) return this.exited;
      this.log.warn('qemu ignored SIGTERM, sending SIGKILL', { pid: this.pid });
    }
    this.stopStep = 'sigkill';
    this.proc.kill('SIGKILL');
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

  /** qmp runs a raw QMP command; it fails with FAILED_PRECONDITION once the VM has exited or was released. */
  qmp<T = unknown>(command: string, args?: Record<string, unknown>, opts: CallOptions = {}): Promise<T> {
    if (this.exitInfo !== undefined || this.qmpClient.isClosed) {
      const why = this.released ? 'the VM was handed over' : 'qemu has exited';
      return Promise.reject(errorf(Code.FAILED_PRECONDITION, `vm ${this.id}: QMP ${command}: ${why}`));
    }
    return this.qmpClient.execute<T>(command, args, opts);
  }

  /** plugNic creates a tap and hot-plugs a virtio-net NIC on it (netdev_add, device_add). */
  plugNic(nic: HotNic, opts: CallOptions = {}): Promise<void> {
    this.live('plug a NIC');
    return plugNic(this.qmpClient, nic, opts);
  }

  /** unplugNic removes a hot-plugged NIC and its tap. */
  unplugNic(ifname: string, opts: CallOptions = {}): Promise<void> {
    this.live('unplug a NIC');
    return unplugNic(this.qmpClient, ifname, opts);
  }

  /** saveState pauses the VM and writes its device state to path (RAM on a shared file backend is not copied). */
  saveState(path: string, opts: CallOptions = {}): Promise<SavedState> {
    this.live('save state');
    return saveState(this.qmpClient, this.files.migrationSocket, path, { ...opts, log: this.log });
  }

  /** loadState restores a VM started with `incoming` from a saved state; it resolves once the guest runs. */
  loadState(data: Uint8Array, opts: CallOptions = {}): Promise<void> {
    this.live('load state');
    return loadState(this.qmpClient, this.files.migrationSocket, data, { ...opts, log: this.log });
  }

  /**
   * release lets go of a running VM so that another process can adopt it (QemuHypervisor.adopt):
   * QMP and the console copy are closed, the process is no longer watched or cleaned up. Idempotent.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.live('release');
    this.released = true;
    this.qmpClient.close();
    await this.consoleReader?.close();
    this.proc.detach();
  }

  private live(what: string): void {
    if (this.exitInfo !== undefined || this.qmpClient.isClosed) {
      throw errorf(Code.FAILED_PRECONDITION, `vm ${this.id}: cannot ${what}: ${this.released ? 'the VM was handed over' : 'qemu has exited'}`);
    }
  }

  /** onEvent forwards QMP events as VmEvents until the returned function is called. */
  onEvent(listener: (ev: VmEvent) => void): () => void {
    return this.qmpClient.onEvent((ev) => listener({ name: ev.event, data: ev.data, timestampMs: ev.timestampMs }));
  }
}
