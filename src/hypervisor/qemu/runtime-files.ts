// The files the QEMU driver keeps in a VM's runtime directory, and reading QEMU's own log.
// The pidfile and the QMP socket live here so a later process can find a leftover VM.

import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** QemuRuntimeFiles are the paths the driver uses inside a VM's runtime directory. */
export interface QemuRuntimeFiles {
  /** qmpSocket is the QMP control socket; QEMU listens on it. */
  qmpSocket: string;
  /** consoleSocket serves the guest's serial console; the driver copies it into the console log. */
  consoleSocket: string;
  /** pidFile is written by QEMU (`-pidfile`) and read by killLeftoverVm. */
  pidFile: string;
  /** logFile receives QEMU's stdout and stderr. */
  logFile: string;
  /** migrationSocket carries a saved state out of QEMU or into it (VM templates). */
  migrationSocket: string;
  /** identityFile names the QEMU process by pid and start time, valid after the directory moves. */
  identityFile: string;
}

/** qemuRuntimeFiles names the driver's files for runtimeDir. */
export function qemuRuntimeFiles(runtimeDir: string): QemuRuntimeFiles {
  return {
    qmpSocket: join(runtimeDir, 'qmp.sock'),
    consoleSocket: join(runtimeDir, 'console.sock'),
    pidFile: join(runtimeDir, 'qemu.pid'),
    logFile: join(runtimeDir, 'qemu.log'),
    migrationSocket: join(runtimeDir, 'migrate.sock'),
    identityFile: join(runtimeDir, 'qemu.id'),
  };
}

/** LOG_HEADER_PREFIX starts the lines the driver itself writes into the QEMU log. */
export const LOG_HEADER_PREFIX = '# hako: ';

/**
 * readLogTail returns QEMU's last non-empty lines (at most maxLines, from the last maxBytes) of a log
 * file joined by newlines, skipping the driver's own header lines; '' if unreadable.
 */
export async function readLogTail(path: string, maxLines = 5, maxBytes = 4096): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
    const { size } = await fh.stat();
    const from = Math.max(size - maxBytes, 0);
    const len = Math.max(0, size - from);
    const buf = Buffer.alloc(len);
    if (len > 0) await fh.read(buf, 0, len, from);
    const lines = buf
      .toString('utf8')
      .split('\n')
      .map((l) => l.trimEnd())
      .filter((l) => l.length > 0 && !l.startsWith(LOG_HEADER_PREFIX));
    // The first line may be cut in the middle when the file is longer than maxBytes.
    if (from > 0 && lines.length > 0) lines.shift();
    return lines.slice(-maxLines).join('\n');
  } catch {
    return '';
  } finally {
    await fh?.close().catch(() => {});
  }
}
