// Reads a container's cgroup v2 files (cpu.stat, memory.*, pids.*, io.stat) into the
// agent's StatsContainerResponse. Parsers are pure; "max" is reported as 2^64-1.

import type { Dirent } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { StatsContainerResponseSchema } from '../../protocols/generated/hako/agent_pb.js';

/** CGROUP_ROOT is the guest's cgroup2 mount. */
export const CGROUP_ROOT = '/sys/fs/cgroup';

/** U64_MAX stands for "max" (no limit). */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;

/**
 * cgroupDir is the agent-owned cgroup of a container, /sys/fs/cgroup/<id>. crun's own
 * cgroup is its child (CRUN_CGROUP_LEAF): crun removes that one when the container
 * exits, while this parent, whose memory.events and usage counters are hierarchical,
 * stays until RemoveContainer, so an OOM kill that ended the container is still seen.
 */
export function cgroupDir(containerId: string): string {
  return `${CGROUP_ROOT}/${containerId}`;
}

/** CRUN_CGROUP_LEAF names crun's cgroup under cgroupDir(id). */
export const CRUN_CGROUP_LEAF = 'ctr';

/** crunCgroupsPath is the spec's linux.cgroupsPath for a container. */
export function crunCgroupsPath(containerId: string): string {
  return `/${containerId}/${CRUN_CGROUP_LEAF}`;
}

/** parseFlatKeyed parses "key value" lines (cpu.stat, memory.stat, memory.events). */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v && /^\d+$/.test(v)) out.set(k, BigInt(v));
  }
  return out;
}

/** parseSingle parses a one-value file: a number, or "max". */
export function parseSingle(text: string): bigint | undefined {
  const t = text.trim();
  if (t === 'max') return U64_MAX;
  return /^\d+$/.test(t) ? BigInt(t) : undefined;
}

/** IoTotals sums io.stat over devices. */
export interface IoTotals { rbytes: bigint; wbytes: bigint; rios: bigint; wios: bigint }

/** parseIoStat sums "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.." lines. */
export function parseIoStat(text: string): IoTotals {
  const t: IoTotals = { rbytes: 0n, wbytes: 0n, rios: 0n, wios: 0n };
  for (const line of text.split('\n')) {
    for (const field of line.trim().split(/\s+/).slice(1)) {
      const [k, v] = field.split('=');
      if (v === undefined || !/^\d+$/.test(v)) continue;
      if (k === 'rbytes' || k === 'wbytes' || k === 'rios' || k === 'wios') t[k] += BigInt(v);
    }
  }
  return t;
}

async function readOr(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * readStats reads a container's figures: usage from dir (hierarchical counters), limits
 * from limitsDir (where crun applied them). Missing files (controller off) read as 0.
 */
export async function readStats(dir: string, limitsDir: string): Promise<MessageInitShape<typeof StatsContainerResponseSchema>> {
  const [cpu, memCur, memMax, swapCur, swapMax, memStat, memEvents, pidsCur, pidsMax, io] = await Promise.all(
    ['cpu.stat', 'memory.current', '*memory.max', 'memory.swap.current', '*memory.swap.max', 'memory.stat', 'memory.events', 'pids.current', '*pids.max', 'io.stat']
      .map((f) => (f.startsWith('*') ? readOr(`${limitsDir}/${f.slice(1)}`) : readOr(`${dir}/${f}`))),
  );
  const c = parseFlatKeyed(cpu!);
  const ms = parseFlatKeyed(memStat!);
  const me = parseFlatKeyed(memEvents!);
  const iot = parseIoStat(io!);
  return {
    cpuUsageUsec: c.get('usage_usec') ?? 0n,
    cpuUserUsec: c.get('user_usec') ?? 0n,
    cpuSystemUsec: c.get('system_usec') ?? 0n,
    cpuNrPeriods: c.get('nr_periods') ?? 0n,
    cpuNrThrottled: c.get('nr_throttled') ?? 0n,
    cpuThrottledUsec: c.get('throttled_usec') ?? 0n,
    memoryUsage: parseSingle(memCur!) ?? 0n,
    memoryUsageLimit: parseSingle(memMax!) ?? U64_MAX,
    memorySwapUsage: parseSingle(swapCur!) ?? 0n,
    memorySwapLimit: parseSingle(swapMax!) ?? 0n,
    pidsCurrent: parseSingle(pidsCur!) ?? 0n,
    pidsLimit: parseSingle(pidsMax!) ?? U64_MAX,
    memoryAnon: ms.get('anon') ?? 0n,
    memoryFile: ms.get('file') ?? 0n,
    memoryOomEvents: me.get('oom') ?? 0n,
    memoryOomKill: me.get('oom_kill') ?? 0n,
    ioRbytes: iot.rbytes,
    ioWbytes: iot.wbytes,
    ioRios: iot.rios,
    ioWios: iot.wios,
  };
}

/** readPids lists the pids in a cgroup and its descendants (bounded). */
export async function readPids(dir: string, limit = 65536): Promise<number[]> {
  const out: number[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    for (const p of (await readOr(`${d}/cgroup.procs`)).split('\n')) {
      const n = Number.parseInt(p, 10);
      if (n > 0 && out.length < limit) out.push(n);
    }
    if (depth > 16) return;
    let entries: Dirent[] = [];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) await walk(`${d}/${e.name}`, depth + 1);
  };
  await walk(dir, 0);
  return out;
}
