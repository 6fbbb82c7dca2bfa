// Finding and killing a QEMU left behind by a process that died (a crashed shim, a killed `hako run`).
// The pidfile names the pid; the identity file (pid + start time), or else /proc/<pid>/cmdline, proves
// the pid is still that QEMU and not a reused pid.

import { lstat, open, readFile, rename, unlink } from 'node:fs/promises';
import { Code, errorf } from '../../errors/index.js';
import { nullLogger, type Logger } from '../../log/index.js';
import { sleep } from '../deadline.js';
import { qemuRuntimeFiles } from './runtime-files.js';

/** readPidFile returns the pid in a pidfile, or undefined when it is missing or malformed. */
export async function readPidFile(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^\s*(\d{1,10})\s*$/.exec(text);
  const pid = m === null ? NaN : Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
}

/** isQemuOf reports whether pid is alive and is the QEMU whose `-pidfile` is pidFile. */
export async function isQemuOf(pid: number, pidFile: string): Promise<boolean> {
  let raw: string;
  try {
    raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  const argv = raw.split('\0');
  const i = argv.indexOf('-pidfile');
  return i >= 0 && argv[i + 1] === pidFile && !(await isDead(pid));
}

/** startTimeOf returns a process's start time (clock ticks since boot, /proc/<pid>/stat field 22), or undefined. */
export async function startTimeOf(pid: number): Promise<string | undefined> {
  return (await statFields(pid))?.[19];
}

// statFields returns the fields of /proc/<pid>/stat after the command name (field 3, the state,
// first), or undefined when the process is gone. The name is parenthesised and may hold ") ".
async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * writeVmIdentity records pid and its start time in runtimeDir's identity file. Unlike QEMU's
 * `-pidfile` argument, which names the directory QEMU was started in, it stays true when the
 * directory is moved (a warm pool hands VM directories over by renaming them).
 */
export async function writeVmIdentity(runtimeDir: string, pid: number): Promise<void> {
  const startTime = await startTimeOf(pid);
  if (startTime === undefined) return;
  const file = qemuRuntimeFiles(runtimeDir).identityFile;
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${pid} ${startTime}\n`);
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/** isVmOf reports whether pid is alive and is the QEMU of runtimeDir (identity file, else cmdline). */
export async function isVmOf(pid: number, runtimeDir: string): Promise<boolean> {
  const files = qemuRuntimeFiles(runtimeDir);
  const text = await readFile(files.identityFile, 'utf8').catch(() => undefined);
  const m = text === undefined ? null : /^(\d+) (\d+)\s*$/.exec(text);
  if (m !== null && Number(m[1]) === pid) return (await startTimeOf(pid)) === m[2] && !(await isDead(pid));
  return isQemuOf(pid, files.pidFile);
}

/** isDead reports whether pid is gone or a zombie (exited, waiting to be reaped by its parent). */
export async function isDead(pid: number): Promise<boolean> {
  const state = (await statFields(pid))?.[0];
  return state === undefined || state === 'Z' || state === 'X';
}

/** waitDead polls until pid is dead or ms have passed; resolves whether it died. */
export async function waitDead(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await isDead(pid)) return true;
    if (Date.now() >= end) return false;
    await sleep(20);
  }
}

/** removeStaleFiles deletes the pidfile, QMP socket and console socket a dead QEMU left in runtimeDir. */
export async function removeStaleFiles(runtimeDir: string): Promise<void> {
  const files = qemuRuntimeFiles(runtimeDir);
  await unlink(files.pidFile).catch(() => {});
  await unlink(files.identityFile).catch(() => {});
  for (const sock of [files.qmpSocket, files.consoleSocket, files.migrationSocket]) {
    const st = await lstat(sock).catch(() => undefined);
    if (st?.isSocket()) await unlink(sock).catch(() => {});
  }
}

/** KillLeftoverOptions bounds killLeftoverVm. */
export interface KillLeftoverOptions {
  /** termTimeoutMs is how long QEMU gets after SIGTERM before SIGKILL (default 1000). */
  termTimeoutMs?: number;
  /** killTimeoutMs is how long to wait for the pid to vanish after SIGKILL (default 5000). */
  killTimeoutMs?: number;
  log?: Logger;
}

/**
 * killLeftoverVm finds the QEMU recorded in runtimeDir's pidfile and kills it (SIGTERM, then SIGKILL),
 * but only if it is still the QEMU of this runtimeDir (isVmOf). It then removes the stale
 * pidfile and QMP socket. Resolves with the pid it killed, or undefined when no such QEMU was running.
 * Rejects with DEADLINE_EXCEEDED only if the process survives SIGKILL.
 */
export async function killLeftoverVm(runtimeDir: string, opts: KillLeftoverOptions = {}): Promise<number | undefined> {
  const log = opts.log ?? nullLogger;
  const files = qemuRuntimeFiles(runtimeDir);
  const pid = await readPidFile(files.pidFile);
  if (pid === undefined || !(await isVmOf(pid, runtimeDir))) {
    await removeStaleFiles(runtimeDir);
    return undefined;
  }
  log.warn('killing leftover qemu', { pid, runtimeDir });
  signalPid(pid, 'SIGTERM');
  if (!(await waitDead(pid, opts.termTimeoutMs ?? 1000))) {
    signalPid(pid, 'SIGKILL');
    if (!(await waitDead(pid, opts.killTimeoutMs ?? 5000))) {
      throw errorf(Code.DEADLINE_EXCEEDED, `leftover qemu pid ${pid} survived SIGKILL`);
    }
  }
  await removeStaleFiles(runtimeDir);
  return pid;
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone (ESRCH): that is what we wanted.
  }
}
