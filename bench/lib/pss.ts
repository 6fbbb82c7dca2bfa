// Memory accounting as Kata measures it: the proportional set size (PSS) of every
// host process a runtime started for its containers, read from /proc/<pid>/smaps_rollup.

import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { descendants, isShimFor, listProcs, type ProcInfo } from './ctr.js';
import type { ProcessShare } from './types.js';

/** HAKO_SANDBOXES is where hako keeps per-sandbox state (qemu.pid among it). */
export const HAKO_SANDBOXES = '/run/hako/sandboxes';

/** readPssKiB returns the PSS of pid in KiB, or undefined when it has exited. */
export async function readPssKiB(pid: number): Promise<number | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    const m = /^Pss:\s+(\d+) kB/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** hakoSandboxDirs lists the sandbox directories under /run/hako/sandboxes. */
export async function hakoSandboxDirs(): Promise<string[]> {
  return (await readdir(HAKO_SANDBOXES).catch(() => [] as string[])).sort();
}

async function hakoQemuPid(sandbox: string): Promise<number | undefined> {
  // state.json records qemuPid; a qemu.pid file may exist too. Either is enough.
  const state = await readFile(join(HAKO_SANDBOXES, sandbox, 'state.json'), 'utf8').catch(() => '');
  let pid = NaN;
  try {
    pid = Number((JSON.parse(state) as { qemuPid?: unknown }).qemuPid);
  } catch {
    // not written yet or torn
  }
  if (!(Number.isInteger(pid) && pid > 0)) {
    pid = Number((await readFile(join(HAKO_SANDBOXES, sandbox, 'qemu.pid'), 'utf8').catch(() => '')).trim());
  }
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function nameOf(p: ProcInfo): string {
  // A node process is named after its script (the hako shim), others after their binary.
  const exe = basename(p.exe || p.argv[0] || '?');
  if (exe === 'node' && p.argv[1] !== undefined) return `node ${basename(p.argv[1])}`;
  // A busybox applet (the container's own process) is named after its applet.
  if (exe === 'busybox' && p.argv[0] !== undefined) return basename(p.argv[0]);
  if (exe.startsWith('runsc') || basename(p.argv[0] ?? '').startsWith('runsc')) return basename(p.argv[0] ?? exe);
  return exe;
}

/**
 * runtimeProcesses finds the host processes serving the given containers: each
 * container's shim and everything below it, plus the QEMU of every hako sandbox
 * created since `sandboxesBefore` (in case QEMU is not the shim's child).
 */
export async function runtimeProcesses(ids: readonly string[], sandboxesBefore: readonly string[]): Promise<ProcInfo[]> {
  const procs = await listProcs();
  const picked = new Map<number, ProcInfo>();
  for (const id of ids) {
    for (const shim of procs.filter((p) => isShimFor(p.argv, id))) {
      for (const p of descendants(procs, shim.pid)) picked.set(p.pid, p);
    }
  }
  const before = new Set(sandboxesBefore);
  for (const sb of await hakoSandboxDirs()) {
    if (before.has(sb)) continue;
    const pid = await hakoQemuPid(sb);
    if (pid === undefined || picked.has(pid)) continue;
    for (const p of descendants(procs, pid)) picked.set(p.pid, p);
  }
  return [...picked.values()];
}

/** measurePss sums the PSS of processes; it returns per-process shares and a per-name total. */
export async function measurePss(procs: readonly ProcInfo[]): Promise<{ total: number; byName: Record<string, number>; shares: ProcessShare[] }> {
  const shares: ProcessShare[] = [];
  for (const p of procs) {
    const pss = await readPssKiB(p.pid);
    if (pss !== undefined) shares.push({ pid: p.pid, name: nameOf(p), pssKiB: pss });
  }
  const byName: Record<string, number> = {};
  for (const s of shares) byName[s.name] = (byName[s.name] ?? 0) + s.pssKiB;
  return { total: shares.reduce((a, s) => a + s.pssKiB, 0), byName, shares };
}

/** memAvailableMiB reads MemAvailable from /proc/meminfo. */
export async function memAvailableMiB(): Promise<number> {
  const text = await readFile('/proc/meminfo', 'utf8');
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(text);
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}
