// Result shapes shared by the suites, the report and the chart: every figure is
// either measured (with its samples) or explicitly "not measured" with the reason.

import type { Summary } from './stats.js';
import type { HakoMode } from './hako-modes.js';
import type { VmSources } from './vm-source.js';

/** NotMeasured records why a figure is missing; reports print it instead of a number. */
export interface NotMeasured {
  ok: false;
  notMeasured: string;
}

/** Measured wraps a result that may be missing. */
export type Measured<T> = ({ ok: true } & T) | NotMeasured;

/** notMeasured builds a NotMeasured. */
export function notMeasured(why: string): NotMeasured {
  return { ok: false, notMeasured: why };
}

/** Latency is a summary in milliseconds plus the count of failed attempts. */
export interface Latency {
  ms: Summary;
  failures: number;
  /** firstFailure describes the first failed attempt, when any. */
  firstFailure?: string;
  /** phases breaks the timed runs down with the runtime's own timing lines (hako's shim, via containerd's log). */
  phases?: BootPhase[];
  phasesSource?: string;
  /** vmSources counts where hako's VMs came from in the timed runs (from their marks or state.json). */
  vmSources?: VmSources;
}

/** ProcessShare is one host process the runtime started, with its PSS. */
export interface ProcessShare {
  pid: number;
  name: string;
  pssKiB: number;
  /** pssAnonKiB is the anonymous part (for QEMU: mostly guest RAM the guest touched, plus TCG's code buffer). */
  pssAnonKiB: number;
  pssFileKiB: number;
}

/** Memory is the PSS of every host process the runtime started for n idle containers. */
export interface Memory {
  n: number;
  settleMs: number;
  totalPssKiB: number;
  perContainerKiB: number;
  /** byName sums PSS by process name (e.g. qemu-system-x86_64, containerd-shim-runc-v2). */
  byName: Record<string, number>;
  processes: ProcessShare[];
  startMs: Summary;
  /** guestPhases are hako's guest-side boot phases from each sandbox's console (cold boots only: a clone's agent started in the template). */
  guestPhases?: Record<string, Summary>;
  vmSources?: VmSources;
  /** poolOverhead is the warm pool's own PSS (the daemon and its idle warm VMs), not in perContainerKiB. */
  poolOverhead?: PoolOverhead;
}

/** PoolOverhead is the PSS of the pool daemon and what it holds that no sandbox owns (its idle warm VMs). */
export interface PoolOverhead {
  pssKiB: number;
  byName: Record<string, number>;
  processes: ProcessShare[];
  /** warmVms is how many idle warm VMs (QEMUs no sandbox owns) were counted. */
  warmVms: number;
}

/** Rpc is the agent's no-op RPC (Check) round trip, timed sequentially in one sandbox. */
export interface Rpc {
  vmSource: string;
  /** createMs is how long Sandbox.create took (in-process, no CLI). */
  createMs: number;
  warmup: number;
  ms: Summary;
  targetMs: number;
  meetsTarget: boolean;
}

/** Density is how many idle containers started before a limit was hit. */
export interface Density {
  count: number;
  stoppedBecause: string;
  startMs: number[];
  memAvailableMiB: number[];
  elapsedMs: number;
  perContainerPssKiB?: number;
}

/** Io is sequential write/read throughput through the container's rootfs. */
export interface Io {
  sizeMiB: number;
  writeMiBps: Summary;
  readMiBps: Summary;
  /** readDirectMiBps is O_DIRECT reads (bypassing a guest page cache), when the filesystem allows it. */
  readDirectMiBps?: Summary;
  notes: string[];
}

/** BootPhase is one step of hako's boot path and its duration. */
export interface BootPhase {
  phase: string;
  ms: Summary;
}

/** BootPath is the breakdown of `hako run` from hako's own timing log lines. */
export interface BootPath {
  runs: number;
  phases: BootPhase[];
  /** marks are the raw mark names seen (for checking the mapping). */
  marks: string[];
  /** fields summarises numeric fields logged with a mark (mark → field → summary), e.g. the guest's uptime at agent start. */
  fields: Record<string, Record<string, Summary>>;
  /** agentSplit breaks qmp-ready → agent-ready down with the guest's clock (cold boots only; empty otherwise). */
  agentSplit: BootPhase[];
  /** agentSplitNote says why there is no agentSplit (a clone's guest uptime at agent start is the template's). */
  agentSplitNote?: string;
  mode: HakoMode;
  vmSources: VmSources;
  source: string;
}

/** Network is TCP between the host and one container on ctr's CNI bridge, timed on the host side. */
export interface Network {
  /** address is the container's IPv4 address; the host talks to it over the bridge, no NAT. */
  address: string;
  /** addressWaitMs is how long after the task ran its eth0 address took to show (at least one `ctr task exec`). */
  addressWaitMs: number;
  /** streamMiB is the size of one stream in one repetition. */
  streamMiB: number;
  /** toHostMiBps (container → host) and fromHostMiBps (host → container) are keyed by concurrent streams ("1", "2"): aggregate MiB/s. */
  toHostMiBps: Record<string, Summary>;
  fromHostMiBps: Record<string, Summary>;
  /** echoBytes is the size of one echo message. */
  echoBytes: number;
  /** rttMs are sequential echo round trips on one connection (after warm-up); rttP90Ms is their 90th percentile. */
  rttMs: Summary;
  rttP90Ms: number;
  /** connectMs is the TCP handshake of fresh connections; firstEchoMs adds the first echo (in the exec form the server forks and execs cat per connection). */
  connectMs: Summary;
  firstEchoMs: Summary;
  /** scripts is the form of the container's programs (bench/lib/net-scripts.ts): exec (dd on the socket) or copy (nc copies). */
  scripts: 'exec' | 'copy';
  vmSources?: VmSources;
  notes: string[];
}

/** NetStart is one runtime's start latency with networking and without, runs interleaved. */
export interface NetStart {
  network: Latency;
  none: Latency;
  /** networkHow and noneHow are the two invocations. */
  networkHow: string;
  noneHow: string;
  /** phases break the `hako run` starts down with hako's timing lines (network and none). */
  phases?: { network: BootPhase[]; none: BootPhase[] };
}
