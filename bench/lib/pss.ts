// Memory accounting as Kata measures it: the proportional set size (PSS) of every
// host process a runtime started for its containers, read from /proc/<pid>/smaps_rollup.

import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { descendants, isShimFor, listProcs, type ProcInfo } from './ctr.js';
import type { ProcessShare } from './types.js';

/** HAKO_SANDBOXES is where hako keeps per-sandbox state (state.json; the VM's files are in <id>/vm/). */
export const HAKO_SANDBOXES = '/run/hako/sandboxes';

/** PssKiB is a process's PSS and its anonymous/file-backed parts, in KiB. */
export interface PssKiB {
  pss: number;
  anon: number;
  file: number;
}

/** readPssKiB returns the PSS of pid in KiB (with its Pss_Anon/Pss_File parts), or undefined when it has exited. */
export async function readPssKiB(pid: number): Promise<PssKiB | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string): number | undefined => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const pss = field('Pss');
    return pss === undefined ? undefined : { pss, anon: field('Pss_Anon') ?? 0, file: field('Pss_File') ?? 0 };
  } catch {
    return undefined;
  }
}

/** hakoSandboxDirs lists the sandbox directories under /run/hako/sandboxes. */
export async function hakoSandboxDirs(): Promise<string[]> {
  return (await readdir(HAKO_SANDBOXES).catch(() => [] as string[])).sort();
}

interface SandboxState {
  qemuPid?: unknown;
  ownerPid?: unknown;
  containers?: Array<{ id?: unknown }>;
}

async function readSandboxState(sandbox: string): Promise<SandboxState | undefined> {
  try {
    return JSON.parse(await readFile(join(HAKO_SANDBOXES, sandbox, 'state.json'), 'utf8')) as SandboxState;
  } catch {
    return undefined; // not written yet, torn, or gone
  }
}

const asPid = (v: unknown): number | undefined => (Number.isInteger(v) && (v as number) > 0 ? (v as number) : undefined);

function nameOf(p: ProcInfo): string {
  // A node process is named after its script (the hako shim), others after their binary.
  const exe = basename(p.exe || p.argv[0] || '?');
  // Its script is the first argument that is not a node flag (owners run with --max-semi-space-size).
  const script = p.argv.slice(1).find((a) => !a.startsWith('-'));
  if (exe === 'node' && script !== undefined) return `node ${script.split('/').slice(-3).join('/')}`;
  // A busybox applet (the container's own process) is named after its applet.
  if (exe === 'busybox' && p.argv[0] !== undefined) return basename(p.argv[0]);
  if (exe.startsWith('runsc') || basename(p.argv[0] ?? '').startsWith('runsc')) return basename(p.argv[0] ?? exe);
  return exe;
}

/**
 * runtimeProcesses finds the host processes serving the given containers: each
 * container's shim and everything below it, plus the QEMU and owner process of each
 * hako sandbox that holds one of the containers (in case they are not the shim's children).
 */
export async function runtimeProcesses(ids: readonly string[], sandboxesBefore: readonly string[]): Promise<ProcInfo[]> {
  const procs = await listProcs();
  const picked = new Map<number, ProcInfo>();
  for (const id of ids) {
    for (const shim of procs.filter((p) => isShimFor(p.argv, id))) {
      for (const p of descendants(procs, shim.pid)) picked.set(p.pid, p);
    }
  }
  // Other people's sandboxes come and go on a shared machine: take only a sandbox named
  // after one of our containers or holding one, and created since sandboxesBefore.
  const before = new Set(sandboxesBefore);
  const ours = new Set(ids);
  for (const sb of await hakoSandboxDirs()) {
    if (before.has(sb)) continue;
    const state = await readSandboxState(sb);
    if (state === undefined) continue;
    const holds = ours.has(sb) || (state.containers ?? []).some((c) => typeof c.id === 'string' && ours.has(c.id));
    if (!holds) continue;
    for (const pid of [asPid(state.qemuPid), asPid(state.ownerPid)]) {
      if (pid === undefined || picked.has(pid)) continue;
      for (const p of descendants(procs, pid)) picked.set(p.pid, p);
    }
  }
  return [...picked.values()];
}

/** sandboxQemuPids returns the QEMU pid of every hako sandbox on the machine (anyone's). */
export async function sandboxQemuPids(): Promise<Set<number>> {
  const out = new Set<number>();
  for (const sb of await hakoSandboxDirs()) {
    const pid = asPid((await readSandboxState(sb))?.qemuPid);
    if (pid !== undefined) out.add(pid);
  }
  return out;
}

/**
 * poolOverheadProcesses finds what the warm pool itself holds: the daemon and everything below
 * it except the QEMUs it handed to sandboxes (those are counted with their pods). What is left
 * is the daemon, its helpers and its idle warm VMs.
 */
export async function poolOverheadProcesses(daemonPid: number): Promise<{ procs: ProcInfo[]; warmVms: number }> {
  const procs = await listProcs();
  const owned = await sandboxQemuPids();
  const tree = descendants(procs, daemonPid);
  const handedOut = new Set<number>();
  for (const p of tree) {
    if (owned.has(p.pid)) for (const d of descendants(procs, p.pid)) handedOut.add(d.pid);
  }
  const kept = tree.filter((p) => !handedOut.has(p.pid));
  return { procs: kept, warmVms: kept.filter((p) => basename(p.exe).startsWith('qemu-system')).length };
}

/** measurePss sums the PSS of processes; it returns per-process shares and a per-name total. */
export async function measurePss(procs: readonly ProcInfo[]): Promise<{ total: number; byName: Record<string, number>; shares: ProcessShare[] }> {
  const shares: ProcessShare[] = [];
  for (const p of procs) {
    const pss = await readPssKiB(p.pid);
    if (pss !== undefined) shares.push({ pid: p.pid, name: nameOf(p), pssKiB: pss.pss, pssAnonKiB: pss.anon, pssFileKiB: pss.file });
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
