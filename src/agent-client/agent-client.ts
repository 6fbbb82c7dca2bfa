// AgentClient: the host's typed client for hako-agent over ttRPC (virtio-serial via QEMU's
// chardev socket). Every call has a timeout or is a cancellable long poll; every reply is validated.

import type { Duplex } from 'node:stream';
import { Code, HakoError } from '../errors/index.js';
import { nullLogger, type Logger } from '../log/index.js';
import { Agent } from '../protocols/generated/hako/agent_pb.js';
import { Client, createClient, type ServiceClient } from '../ttrpc/index.js';
import { dialWithRetry } from './connect.js';
import {
  checkInterfaces, checkRoutes, checkUpdatedInterface, interfaceRequest, neighborsRequest, routesRequest,
  type GuestInterface, type GuestNeighbor, type GuestRoute,
} from './network.js';
import {
  checkBigRange, checkContainerId, checkExitStatus, checkPid, checkPids, checkRead, checkString, checkTimestamp,
  checkWriteLen, encodeJson, invalidReply, MAX_READ_LEN,
} from './validate.js';

/** DEFAULT_CALL_TIMEOUT_MS bounds ordinary agent calls (TCG guests are slow; crun run takes ~0.5 s). */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/** AgentCallOptions tune one call. Long polls have no timeout unless timeoutMs is given. */
export interface AgentCallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** AgentClientOptions configure an AgentClient. */
export interface AgentClientOptions {
  log?: Logger;
  /** callTimeoutMs replaces DEFAULT_CALL_TIMEOUT_MS for non-polling calls. */
  callTimeoutMs?: number;
}

/** GuestDetailsInfo is GetGuestDetails, checked and in plain numbers. */
export interface GuestDetailsInfo {
  agentVersion: string;
  kernelRelease: string;
  uptimeAtAgentStartMs: number;
  uptimeMs: number;
  memTotalKib: number;
  onlineCpus: number;
  crunVersion: string;
}

/** ContainerStats are the cgroup v2 figures of one container (uint64 as bigint; "max" = 2^64-1). */
export interface ContainerStats {
  cpuUsageUsec: bigint; cpuUserUsec: bigint; cpuSystemUsec: bigint;
  cpuNrPeriods: bigint; cpuNrThrottled: bigint; cpuThrottledUsec: bigint;
  memoryUsage: bigint; memoryUsageLimit: bigint; memorySwapUsage: bigint; memorySwapLimit: bigint;
  memoryAnon: bigint; memoryFile: bigint; memoryOomEvents: bigint; memoryOomKill: bigint;
  pidsCurrent: bigint; pidsLimit: bigint;
  ioRbytes: bigint; ioWbytes: bigint; ioRios: bigint; ioWios: bigint;
}

/** ProcessExit is WaitProcess's answer. */
export interface ProcessExit {
  exitStatus: number;
  exitedAt: Date;
}

/** AgentClient calls hako-agent on one connection. */
export class AgentClient {
  private readonly client: Client;
  private readonly agent: ServiceClient<typeof Agent>;
  private readonly log: Logger;
  private readonly callTimeoutMs: number;

  /** constructor wraps an already connected stream (tests pass any Duplex). */
  constructor(stream: Duplex, opts: AgentClientOptions = {}) {
    this.log = opts.log ?? nullLogger;
    this.callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.client = new Client(stream, { log: this.log, defaultTimeoutMs: 0 });
    this.agent = createClient(Agent, this.client);
  }

  /**
   * connect dials `<sandbox dir>/agent.sock` (QEMU's chardev server), retrying while
   * the socket is missing or refusing until timeoutMs (default 30 s) has passed.
   */
  static async connect(socketPath: string, opts: AgentClientOptions & { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<AgentClient> {
    const sock = await dialWithRetry(socketPath, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 30_000 });
    return new AgentClient(sock, opts);
  }

  /** closed reports whether the channel is gone (every call then fails UNAVAILABLE). */
  get closed(): boolean {
    return this.client.closed;
  }

  /** onClose calls fn once when the channel closes (the VM died, or close() was called). */
  onClose(fn: (err: HakoError) => void): void {
    this.client.onClose(fn);
  }

  /** close drops the connection; pending calls fail with UNAVAILABLE. */
  close(): void {
    this.client.close();
  }

  /**
   * waitReady calls Check until the agent answers. QEMU accepts the connection before
   * the guest opens its port, so early requests just wait; each attempt is bounded by
   * attemptTimeoutMs (default 1 s) and the whole wait by timeoutMs (default 60 s).
   * firstAttemptMs starts with shorter attempts that double up to attemptTimeoutMs: for an
   * agent that already runs (a restored VM), whose port may drop a request that arrives
   * while it reopens the device after the previous host left. A closed channel fails at
   * once with UNAVAILABLE.
   */
  async waitReady(opts: { signal?: AbortSignal; timeoutMs?: number; attemptTimeoutMs?: number; firstAttemptMs?: number } = {}): Promise<{ agentVersion: string; attempts: number; ms: number }> {
    const start = Date.now();
    const deadline = start + (opts.timeoutMs ?? 60_000);
    const maxAttempt = opts.attemptTimeoutMs ?? 1_000;
    let attemptMs = Math.min(opts.firstAttemptMs ?? maxAttempt, maxAttempt);
    let attempts = 0;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new HakoError(Code.DEADLINE_EXCEEDED, `agent did not answer Check within ${opts.timeoutMs ?? 60_000} ms (${attempts} attempts)`);
      attempts++;
      try {
        const { agentVersion } = await this.check({ signal: opts.signal, timeoutMs: Math.min(attemptMs, left) });
        return { agentVersion, attempts, ms: Date.now() - start };
      } catch (err) {
        if (HakoError.from(err).code !== Code.DEADLINE_EXCEEDED) throw err;
      }
      attemptMs = Math.min(attemptMs * 2, maxAttempt);
    }
  }

  /** check asks the agent for its version. */
  async check(opts?: AgentCallOptions): Promise<{ agentVersion: string }> {
    const r = await this.call('Check', () => this.agent.check({}, this.opts(opts)));
    return { agentVersion: checkString('Check', 'agent_version', r.agentVersion, 64) };
  }

  /** getGuestDetails returns kernel, uptime, memory, CPUs and crun version of the guest. */
  async getGuestDetails(opts?: AgentCallOptions): Promise<GuestDetailsInfo> {
    const m = 'GetGuestDetails';
    const r = await this.call(m, () => this.agent.getGuestDetails({}, this.opts(opts)));
    const tenYearsMs = 10 * 365 * 86_400_000;
    const d: GuestDetailsInfo = {
      agentVersion: checkString(m, 'agent_version', r.agentVersion, 64),
      kernelRelease: checkString(m, 'kernel_release', r.kernelRelease, 256),
      uptimeAtAgentStartMs: checkBigRange(m, 'uptime_at_agent_start_ms', r.uptimeAtAgentStartMs, tenYearsMs),
      uptimeMs: checkBigRange(m, 'uptime_ms', r.uptimeMs, tenYearsMs),
      memTotalKib: checkBigRange(m, 'mem_total_kib', r.memTotalKib, 2 ** 40),
      onlineCpus: r.onlineCpus,
      crunVersion: checkString(m, 'crun_version', r.crunVersion, 256),
    };
    if (d.onlineCpus < 1 || d.onlineCpus > 4096) throw invalidReply(m, `online_cpus ${d.onlineCpus} is out of range`);
    if (d.uptimeAtAgentStartMs > d.uptimeMs) throw invalidReply(m, 'the agent started after now');
    return d;
  }

  /** setGuestDateTime sets the guest clock (after a snapshot restore). */
  async setGuestDateTime(date: Date, opts?: AgentCallOptions): Promise<void> {
    const ms = date.getTime();
    await this.call('SetGuestDateTime', () =>
      this.agent.setGuestDateTime({ sec: BigInt(Math.floor(ms / 1000)), usec: BigInt((ms % 1000) * 1000) }, this.opts(opts)));
  }

  /** createSandbox mounts the 9p share (tag) in the guest and sets hostname and DNS. */
  async createSandbox(req: { sandboxId: string; shareTag: string; hostname?: string; dns?: string[] }, opts?: AgentCallOptions): Promise<void> {
    await this.call('CreateSandbox', () => this.agent.createSandbox({
      sandboxId: req.sandboxId, shareTag: req.shareTag, hostname: req.hostname ?? '', dns: req.dns ?? [],
    }, this.opts(opts)));
  }

  /** destroySandbox force-removes every container and unmounts the share. */
  async destroySandbox(opts?: AgentCallOptions): Promise<void> {
    await this.call('DestroySandbox', () => this.agent.destroySandbox({}, this.opts(opts, 2)));
  }

  /** reseedRandomDev mixes host randomness into the guest pool. */
  async reseedRandomDev(data: Uint8Array, opts?: AgentCallOptions): Promise<void> {
    await this.call('ReseedRandomDev', () => this.agent.reseedRandomDev({ data }, this.opts(opts)));
  }

  /**
   * createContainer writes the container's bundle in the guest. spec is the OCI spec
   * (object or JSON bytes) whose root.path and bind sources are relative to the share.
   */
  async createContainer(req: { containerId: string; spec: object | Uint8Array; stdin: boolean; terminal: boolean }, opts?: AgentCallOptions): Promise<void> {
    const specJson = encodeJson('spec', req.spec);
    await this.call('CreateContainer', () => this.agent.createContainer({
      containerId: req.containerId, specJson, stdin: req.stdin, terminal: req.terminal,
    }, this.opts(opts)));
  }

  /** startContainer starts the init process and returns its guest pid. */
  async startContainer(containerId: string, opts?: AgentCallOptions): Promise<number> {
    const r = await this.call('StartContainer', () => this.agent.startContainer({ containerId }, this.opts(opts)));
    return checkPid('StartContainer', r.pid);
  }

  /** removeContainer deletes a container; force kills what still runs. */
  async removeContainer(containerId: string, force: boolean, opts?: AgentCallOptions): Promise<void> {
    await this.call('RemoveContainer', () => this.agent.removeContainer({ containerId, force }, this.opts(opts, 2)));
  }

  /** execProcess starts an OCI Process (object or JSON bytes) in a running container; returns its pid. */
  async execProcess(req: { containerId: string; execId: string; process: object | Uint8Array; stdin: boolean; terminal: boolean }, opts?: AgentCallOptions): Promise<number> {
    const processJson = encodeJson('process', req.process);
    const r = await this.call('ExecProcess', () => this.agent.execProcess({
      containerId: req.containerId, execId: req.execId, processJson, stdin: req.stdin, terminal: req.terminal,
    }, this.opts(opts)));
    return checkPid('ExecProcess', r.pid);
  }

  /** signalProcess sends signal to a process ('' = init); all signals every process of the container. */
  async signalProcess(req: { containerId: string; execId?: string; signal: number; all?: boolean }, opts?: AgentCallOptions): Promise<void> {
    if (!Number.isInteger(req.signal) || req.signal < 1 || req.signal > 64) throw new HakoError(Code.INVALID_ARGUMENT, `invalid signal ${req.signal}`);
    await this.call('SignalProcess', () => this.agent.signalProcess({
      containerId: req.containerId, execId: req.execId ?? '', signal: req.signal, all: req.all ?? false,
    }, this.opts(opts)));
  }

  /** waitProcess long-polls until the process exits (no timeout unless given; cancel with signal). */
  async waitProcess(containerId: string, execId: string, opts?: AgentCallOptions): Promise<ProcessExit> {
    const m = 'WaitProcess';
    const r = await this.call(m, () => this.agent.waitProcess({ containerId, execId }, this.pollOpts(opts)));
    return { exitStatus: checkExitStatus(m, r.exitStatus), exitedAt: checkTimestamp(m, 'exited_at', r.exitedAt) };
  }

  /** listProcesses returns the guest pids in the container. */
  async listProcesses(containerId: string, opts?: AgentCallOptions): Promise<number[]> {
    const r = await this.call('ListProcesses', () => this.agent.listProcesses({ containerId }, this.opts(opts)));
    return checkPids('ListProcesses', r.pids);
  }

  /** updateContainer applies OCI LinuxResources (object or JSON bytes). */
  async updateContainer(containerId: string, resources: object | Uint8Array, opts?: AgentCallOptions): Promise<void> {
    const resourcesJson = encodeJson('resources', resources);
    await this.call('UpdateContainer', () => this.agent.updateContainer({ containerId, resourcesJson }, this.opts(opts)));
  }

  /** statsContainer reads the container's cgroup figures. */
  async statsContainer(containerId: string, opts?: AgentCallOptions): Promise<ContainerStats> {
    const { $typeName: _t, ...stats } = await this.call('StatsContainer', () => this.agent.statsContainer({ containerId }, this.opts(opts)));
    return stats;
  }

  /** pauseContainer freezes the container. */
  async pauseContainer(containerId: string, opts?: AgentCallOptions): Promise<void> {
    await this.call('PauseContainer', () => this.agent.pauseContainer({ containerId }, this.opts(opts)));
  }

  /** resumeContainer thaws the container. */
  async resumeContainer(containerId: string, opts?: AgentCallOptions): Promise<void> {
    await this.call('ResumeContainer', () => this.agent.resumeContainer({ containerId }, this.opts(opts)));
  }

  /** getOOMEvent long-polls for the next container whose process the OOM killer killed. */
  async getOOMEvent(opts?: AgentCallOptions): Promise<string> {
    const r = await this.call('GetOOMEvent', () => this.agent.getOOMEvent({}, this.pollOpts(opts)));
    return checkContainerId('GetOOMEvent', r.containerId);
  }

  /** writeStdin writes to a process's stdin; resolves once the guest flushed it (can wait: cancel with signal). */
  async writeStdin(containerId: string, execId: string, data: Uint8Array, opts?: AgentCallOptions): Promise<number> {
    const r = await this.call('WriteStdin', () => this.agent.writeStdin({ containerId, execId, data }, this.pollOpts(opts)));
    return checkWriteLen('WriteStdin', r.len, data.length);
  }

  /** readStdout long-polls for up to maxLen (at most 1 MiB) bytes of stdout, or eof once it is drained. */
  readStdout(containerId: string, execId: string, maxLen: number, opts?: AgentCallOptions): Promise<{ data: Uint8Array; eof: boolean }> {
    return this.readStream('ReadStdout', containerId, execId, maxLen, opts);
  }

  /** readStderr is readStdout for stderr (a terminal process's stderr is at eof at once). */
  readStderr(containerId: string, execId: string, maxLen: number, opts?: AgentCallOptions): Promise<{ data: Uint8Array; eof: boolean }> {
    return this.readStream('ReadStderr', containerId, execId, maxLen, opts);
  }

  /** closeStdin closes a process's stdin after what was written. */
  async closeStdin(containerId: string, execId: string, opts?: AgentCallOptions): Promise<void> {
    await this.call('CloseStdin', () => this.agent.closeStdin({ containerId, execId }, this.opts(opts)));
  }

  /** ttyWinResize sets the window size of a terminal process. */
  async ttyWinResize(containerId: string, execId: string, rows: number, cols: number, opts?: AgentCallOptions): Promise<void> {
    for (const v of [rows, cols]) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new HakoError(Code.INVALID_ARGUMENT, `invalid window size ${rows}x${cols}`);
    }
    await this.call('TtyWinResize', () => this.agent.ttyWinResize({ containerId, execId, rows, cols }, this.opts(opts)));
  }

  /**
   * updateInterface configures the guest NIC whose MAC is i.hwAddr (waiting up to 10 s for it to
   * appear): name, MTU (0: as is), exactly i.addresses, link up. It answers the NIC as read back.
   */
  async updateInterface(i: GuestInterface, opts?: AgentCallOptions): Promise<GuestInterface> {
    const m = 'UpdateInterface';
    const r = await this.call(m, () => this.agent.updateInterface({ interface: interfaceRequest(i) }, this.opts(opts)));
    return checkUpdatedInterface(m, i, r);
  }

  /**
   * updateRoutes replaces the main-table routes of the devices named and of every interface
   * updateInterface configured (the kernel's link routes stay); it answers listRoutes.
   */
  async updateRoutes(routes: GuestRoute[], opts?: AgentCallOptions): Promise<GuestRoute[]> {
    const r = await this.call('UpdateRoutes', () => this.agent.updateRoutes({ routes: { routes: routesRequest(routes) } }, this.opts(opts)));
    return checkRoutes('UpdateRoutes', r.routes);
  }

  /** listInterfaces answers every guest link with its addresses (not the kernel's own IPv6 link-local ones). */
  async listInterfaces(opts?: AgentCallOptions): Promise<GuestInterface[]> {
    const r = await this.call('ListInterfaces', () => this.agent.listInterfaces({}, this.opts(opts)));
    return checkInterfaces('ListInterfaces', r.interfaces);
  }

  /** listRoutes answers the guest's main-table IPv4 and IPv6 unicast routes. */
  async listRoutes(opts?: AgentCallOptions): Promise<GuestRoute[]> {
    const r = await this.call('ListRoutes', () => this.agent.listRoutes({}, this.opts(opts)));
    return checkRoutes('ListRoutes', r.routes);
  }

  /** addArpNeighbors adds or replaces permanent neighbour entries (after updateInterface: a link going down drops them). */
  async addArpNeighbors(neighbors: GuestNeighbor[], opts?: AgentCallOptions): Promise<void> {
    await this.call('AddARPNeighbors', () => this.agent.addARPNeighbors({ neighbors: neighborsRequest(neighbors) }, this.opts(opts)));
  }

  private async readStream(m: 'ReadStdout' | 'ReadStderr', containerId: string, execId: string, maxLen: number, opts?: AgentCallOptions): Promise<{ data: Uint8Array; eof: boolean }> {
    if (!Number.isInteger(maxLen) || maxLen < 1) throw new HakoError(Code.INVALID_ARGUMENT, `invalid max_len ${maxLen}`);
    const len = Math.min(maxLen, MAX_READ_LEN);
    const req = { containerId, execId, maxLen: len };
    const r = await this.call(m, () => (m === 'ReadStdout' ? this.agent.readStdout(req, this.pollOpts(opts)) : this.agent.readStderr(req, this.pollOpts(opts))));
    return checkRead(m, r.data, r.eof, len);
  }

  private opts(o: AgentCallOptions | undefined, factor = 1): { signal?: AbortSignal; timeoutMs: number } {
    return { signal: o?.signal, timeoutMs: o?.timeoutMs ?? this.callTimeoutMs * factor };
  }

  private pollOpts(o: AgentCallOptions | undefined): { signal?: AbortSignal; timeoutMs: number } {
    return { signal: o?.signal, timeoutMs: o?.timeoutMs ?? 0 };
  }

  private async call<T>(method: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = HakoError.from(err);
      // The ttRPC layer already names the method; prefix "agent" so callers know the side.
      throw new HakoError(e.code, e.message.startsWith('hako.agent.v1.Agent/') ? `agent ${e.message.slice('hako.agent.v1.Agent/'.length)}` : `agent ${method}: ${e.message}`, { cause: e });
    }
  }
}
