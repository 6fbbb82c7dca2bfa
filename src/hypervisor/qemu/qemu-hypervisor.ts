// QemuHypervisor: starts qemu-system-x86_64 from a VmDescription, detached from our stdio with its
// output in the runtime dir's log, and hands back a QemuVm once QMP answers. Failures leave nothing running.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, lstat, mkdir, open, unlink } from 'node:fs/promises';
import { Code, HakoError, errorf } from '../../errors/index.js';
import { nullLogger, type Logger } from '../../log/index.js';
import { abortError, sleep, waitSettled } from '../deadline.js';
import type { VmDescription } from '../types.js';
import type { Hypervisor, StartOptions } from '../vm.js';
import { buildQemuArgs } from './cmdline.js';
import { ConsoleReader } from './console.js';
import { isVmOf, readPidFile, removeStaleFiles, writeVmIdentity } from './leftover.js';
import { QmpClient } from './qmp.js';
import { QemuVm, type ProcessExit } from './qemu-vm.js';
import { LOG_HEADER_PREFIX, qemuRuntimeFiles, readLogTail, type QemuRuntimeFiles } from './runtime-files.js';
import { adoptedVmProcess, childVmProcess, setVmPriority } from './vm-process.js';

/** AdoptOptions bounds QemuHypervisor.adopt. */
export interface AdoptOptions {
  signal?: AbortSignal;
  /** timeoutMs bounds the QMP connection and the console attach (default 5000). */
  timeoutMs?: number;
  /** consoleLog is where to keep copying the guest's serial console (appended to). */
  consoleLog?: string;
  /** nice sets the adopted VM's niceness (a warm pool refills at low priority; its users run at 0). */
  nice?: number;
}

/** QemuHypervisorOptions configures the QEMU driver. */
export interface QemuHypervisorOptions {
  /** binary is the QEMU executable (default `qemu-system-x86_64`, found on PATH). */
  binary?: string;
  log?: Logger;
}

/** DEFAULT_START_TIMEOUT_MS bounds start() when the caller gives no timeout. */
export const DEFAULT_START_TIMEOUT_MS = 10_000;

/** QemuHypervisor is the QEMU driver of the Hypervisor interface. */
export class QemuHypervisor implements Hypervisor {
  readonly name = 'qemu';
  private readonly binary: string;
  private readonly log: Logger;

  constructor(opts: QemuHypervisorOptions = {}) {
    this.binary = opts.binary ?? 'qemu-system-x86_64';
    this.log = opts.log ?? nullLogger;
  }

  /**
   * start launches QEMU for desc and resolves once QMP is negotiated. It refuses (ALREADY_EXISTS)
   * when a QEMU of the same runtimeDir still runs (see killLeftoverVm). On any failure, including
   * an abort or timeout, the process is killed and its files removed before the promise rejects.
   */
  async start(desc: VmDescription, opts: StartOptions = {}): Promise<QemuVm> {
    const args = buildQemuArgs(desc);
    const what = `start vm ${desc.id}`;
    const log = this.log.child({ subsystem: 'qemu', vm: desc.id });
    const files = qemuRuntimeFiles(desc.runtimeDir);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    if (opts.signal?.aborted) throw abortError(opts.signal, what);

    await mkdir(desc.runtimeDir, { recursive: true, mode: 0o700 });
    const old = await readPidFile(files.pidFile);
    if (old !== undefined && (await isVmOf(old, desc.runtimeDir))) {
      throw errorf(Code.ALREADY_EXISTS, `${what}: qemu pid ${old} still runs in ${desc.runtimeDir} (killLeftoverVm ends it)`);
    }
    await removeStaleFiles(desc.runtimeDir);

    // QEMU's stdout/stderr go straight to the log file, so QEMU never depends on our pipes or lifetime.
    const logFh = await open(files.logFile, 'w', 0o600);
    let child: ChildProcess;
    let spawned: Promise<Error | undefined>;
    let processExit: Promise<ProcessExit>;
    try {
      await logFh.write(`${LOG_HEADER_PREFIX}${this.binary} ${args.join(' ')}\n`);
      // detached: its own session, so a terminal's Ctrl-C reaches us (who stop it in order), not QEMU.
      child = spawn(this.binary, args, { stdio: ['ignore', logFh.fd, logFh.fd], detached: true });
      // Listen before any await: 'spawn' and 'error' are emitted on the next tick.
      spawned = new Promise<Error | undefined>((resolve) => {
        child.once('spawn', () => resolve(undefined));
        child.once('error', (err) => resolve(err));
      });
      processExit = new Promise<ProcessExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      // Later 'error' events (a failed kill) must not become uncaught exceptions.
      child.on('error', (err) => log.debug('qemu child error', { err }));
    } finally {
      await logFh.close();
    }
    const started = Date.now();
    if (opts.nice !== undefined && child.pid !== undefined) void setVmPriority(child.pid, opts.nice);

    let qmp: QmpClient | undefined;
    let consoleReader: ConsoleReader | undefined;
    try {
      const spawnError = await spawned;
      if (spawnError !== undefined) throw HakoError.wrap(spawnError, `cannot run ${this.binary}`);
      log.debug('qemu spawned', { pid: child.pid });
      await writeVmIdentity(desc.runtimeDir, child.pid!);
      qmp = await connectWhenReady(files.qmpSocket, processExit, deadline, opts.signal, log);
      // QEMU creates every chardev socket before it serves QMP, so the console socket is there now;
      // the guest has barely started, and what it wrote before we connect is dropped (wait=off).
      const serial = desc.devices.find((d) => d.kind === 'serial-console');
      if (serial !== undefined) {
        consoleReader = await ConsoleReader.attach(files.consoleSocket, serial.logPath, {
          signal: opts.signal,
          timeoutMs: Math.max(1, deadline - Date.now()),
          log,
        });
      }
      await restrictSockets(files, desc);
      // Threads QEMU started before the first renice get theirs now.
      if (opts.nice !== undefined) await setVmPriority(child.pid!, opts.nice);
      const startupMs = Date.now() - started;
      log.info('qemu ready', { pid: child.pid, startupMs });
      return new QemuVm({ id: desc.id, proc: childVmProcess(child, processExit), qmp, console: consoleReader, runtimeDir: desc.runtimeDir, log, startupMs });
    } catch (err) {
      qmp?.close();
      await consoleReader?.close();
      // A QMP failure may be QEMU dying: give its exit a moment to arrive, unless we gave up waiting.
      const gaveUp = err instanceof HakoError && (err.code === Code.CANCELLED || err.code === Code.DEADLINE_EXCEEDED);
      const exitedOnItsOwn = await waitSettled(processExit, gaveUp ? 0 : 100);
      await cleanupFailedStart(child, processExit, desc, log);
      const tail = await readLogTail(files.logFile);
      if (exitedOnItsOwn) {
        const e = await processExit;
        const how = e.signal !== null ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
        throw errorf(Code.UNKNOWN, `${what}: qemu ${how} during start${tail ? `: ${tail}` : ''}`, err);
      }
      const e = HakoError.from(err);
      const logNote = tail && e.code !== Code.CANCELLED ? ` (qemu log: ${tail})` : '';
      throw new HakoError(e.code, `${what}: ${e.message}${logNote}`, { cause: e });
    }
  }

  /**
   * adopt takes control of a QEMU that another process started and released (a warm pool VM):
   * the pid comes from runtimeDir's pidfile and must still be that QEMU; QMP is connected anew.
   * Nothing is killed on failure: the caller decides (killLeftoverVm ends it).
   */
  async adopt(id: string, runtimeDir: string, opts: AdoptOptions = {}): Promise<QemuVm> {
    const files = qemuRuntimeFiles(runtimeDir);
    const log = this.log.child({ subsystem: 'qemu', vm: id });
    const what = `adopt vm ${id}`;
    const timeoutMs = opts.timeoutMs ?? 5000;
    const started = Date.now();
    const pid = await readPidFile(files.pidFile);
    if (pid === undefined || !(await isVmOf(pid, runtimeDir))) {
      throw errorf(Code.NOT_FOUND, `${what}: no running qemu in ${runtimeDir}`);
    }
    let qmp: QmpClient | undefined;
    let consoleReader: ConsoleReader | undefined;
    try {
      // First: a VM made at low priority answers QMP slowly on a busy host until it is reniced.
      if (opts.nice !== undefined) await setVmPriority(pid, opts.nice);
      qmp = await QmpClient.connect(files.qmpSocket, { signal: opts.signal, timeoutMs, log });
      if (opts.consoleLog !== undefined) {
        consoleReader = await ConsoleReader.attach(files.consoleSocket, opts.consoleLog, {
          signal: opts.signal, timeoutMs: Math.max(1, started + timeoutMs - Date.now()), log, append: true,
        });
      }
    } catch (err) {
      qmp?.close();
      await consoleReader?.close();
      throw HakoError.wrap(err, what);
    }
    const startupMs = Date.now() - started;
    log.info('qemu adopted', { pid, startupMs });
    return new QemuVm({ id, proc: adoptedVmProcess(pid, runtimeDir), qmp, console: consoleReader, runtimeDir, log, startupMs });
  }
}

// restrictSockets makes QEMU's listening sockets 0600. QEMU creates them under its umask; the
// runtime dir's own mode (0700) is the real protection, this narrows what a looser parent exposes.
async function restrictSockets(files: QemuRuntimeFiles, desc: VmDescription): Promise<void> {
  const paths = [
    files.qmpSocket,
    ...desc.devices.flatMap((d) => (d.kind === 'virtio-serial-port' ? [d.socketPath] : d.kind === 'serial-console' ? [files.consoleSocket] : [])),
  ];
  await Promise.all(paths.map((p) => chmod(p, 0o600).catch(() => {})));
}

// cleanupFailedStart kills a half-started QEMU and removes what it created; it has its own deadline.
async function cleanupFailedStart(child: ChildProcess, processExit: Promise<ProcessExit>, desc: VmDescription, log: Logger): Promise<void> {
  if (child.pid !== undefined && !(await waitSettled(processExit, 0))) {
    child.kill('SIGKILL');
    if (!(await waitSettled(processExit, 5000))) log.error('qemu survived SIGKILL after a failed start', { pid: child.pid });
  }
  await removeStaleFiles(desc.runtimeDir).catch(() => {});
  for (const dev of desc.devices) {
    if (dev.kind !== 'virtio-serial-port') continue;
    const st = await lstat(dev.socketPath).catch(() => undefined);
    if (st?.isSocket()) await unlink(dev.socketPath).catch(() => {});
  }
}

// connectWhenReady retries connecting to the QMP socket until QEMU has created it, QEMU exits,
// the deadline passes or signal aborts. QEMU creates the socket early, before the machine runs.
async function connectWhenReady(
  path: string,
  processExit: Promise<ProcessExit>,
  deadline: number,
  signal: AbortSignal | undefined,
  log: Logger,
): Promise<QmpClient> {
  let exited = false;
  void processExit.then(() => (exited = true));
  for (let attempt = 1, delay = 5; ; attempt++) {
    if (exited) throw errorf(Code.UNAVAILABLE, 'qemu exited before QMP was ready');
    if (signal?.aborted) throw abortError(signal, 'waiting for QMP');
    const left = deadline - Date.now();
    if (left <= 0) throw errorf(Code.DEADLINE_EXCEEDED, 'QMP not ready: timed out');
    try {
      return await QmpClient.connect(path, { signal, timeoutMs: left, log });
    } catch (err) {
      const errno = causeErrno(err);
      // ENOENT: QEMU has not created the socket yet; ECONNREFUSED: created but not listening yet.
      if (errno !== 'ENOENT' && errno !== 'ECONNREFUSED') throw err;
      if (attempt % 100 === 0) log.debug('still waiting for the QMP socket', { attempt });
    }
    await Promise.race([sleep(Math.min(delay, Math.max(1, deadline - Date.now())), signal).catch(() => {}), processExit]);
    delay = Math.min(delay * 2, 50);
  }
}

function causeErrno(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e !== undefined && e !== null && i < 8; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
