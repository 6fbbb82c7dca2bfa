// Machine facts recorded next to every result: CPU, memory, kernel, versions of the
// peers and of QEMU, and which accelerator hako chooses here and why.

import { readFile } from 'node:fs/promises';
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { runCmd } from './proc.js';
import { probeAccel } from '../../src/hypervisor/accel.js';
import { repoRoot } from './root.js';
import { memAvailableMiB } from './pss.js';

/** Machine describes the host a result was measured on. */
export interface Machine {
  hostname: string;
  cores: number;
  cpuModel: string;
  memoryMiB: number;
  memAvailableMiB: number;
  loadavg: number[];
  kernel: string;
  os: string;
  node: string;
  versions: Record<string, string>;
  accelerator: { accel: string; reason: string } | { accel: 'unknown'; reason: string };
  hakoCommit: string;
}

async function firstLine(argv: string[]): Promise<string> {
  try {
    const r = await runCmd(argv, { timeoutMs: 15_000 });
    const line = (r.stdout || r.stderr).split('\n').find((l) => l.trim() !== '');
    return r.code === 0 && line ? line.trim() : `unavailable (${argv[0]} exit ${r.code})`;
  } catch {
    return `unavailable (${argv[0]} not installed)`;
  }
}

async function accelerator(): Promise<Machine['accelerator']> {
  try {
    const c = await probeAccel('auto');
    return { accel: c.accel.kind + ('thread' in c.accel && c.accel.thread ? ` (thread=${c.accel.thread})` : ''), reason: c.reason };
  } catch (err) {
    return { accel: 'unknown', reason: `probe failed: ${(err as Error).message}` };
  }
}

/** machineFacts gathers the Machine record. */
export async function machineFacts(): Promise<Machine> {
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? 'unknown';
  const [containerd, runc, runsc, qemu, crun, commit] = await Promise.all([
    firstLine(['containerd', '--version']),
    firstLine(['runc', '--version']),
    firstLine(['runsc', '--version']),
    firstLine(['qemu-system-x86_64', '--version']),
    firstLine(['crun', '--version']),
    firstLine(['git', '-C', repoRoot(), 'rev-parse', '--short', 'HEAD']),
  ]);
  const c = cpus();
  return {
    hostname: hostname(),
    cores: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    memAvailableMiB: await memAvailableMiB(),
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    kernel: release(),
    os: pretty,
    node: process.version,
    versions: { containerd, runc, runsc, qemu, crun },
    accelerator: await accelerator(),
    hakoCommit: commit,
  };
}
