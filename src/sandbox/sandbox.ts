// Sandbox: one VM with its agent, share and containers. create() boots it (any failure cleans
// up everything), containers are created through it, and stop() removes every trace.

import { mkdir } from 'node:fs/promises';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { HakoConfig } from '../config/index.js';
import type { Vm } from '../hypervisor/index.js';
import { ensureAssets } from '../image/index.js';
import { mountContainerRootfs, validId, type ContainerRootfs, type Share } from '../storage/index.js';
import type { AgentClient, GuestDetailsInfo } from '../agent-client/index.js';
import { AGENT_PORT_NAME, personalizeGuest, provisionVm, type ProvisionedVm, type VmSource } from '../factory/index.js';
import { sandboxRecipe } from './recipe.js';
import { cleanupSandbox } from './cleanup.js';
import { Container } from './container.js';
import type { CreateContainerOptions, SandboxCreateOptions } from './sandbox-options.js';
import { preparePodNetwork, type SandboxNetwork } from './network.js';
import { cleanupNetwork } from './network-cleanup.js';
import { sandboxPaths, sandboxesDir, validSandboxId, type SandboxPaths } from './paths.js';
import type { OciSpec } from './spec.js';
import { shareSpec } from './container-spec.js';
import { hostnameOf, writeEtcFiles } from './etc-files.js';
import { writeState, type SandboxState } from './state.js';
import { Timings } from './timings.js';
import { warmUpInputs } from './warm-up-inputs.js';

export { AGENT_PORT_NAME };

// How often the owner checks that the agent still answers; a hung VM fails waits promptly.
const HEARTBEAT_MS = 5000;
// Cleanup gets its own deadline, never the caller's (maybe aborted) signal.
const CLEANUP_QUIT_MS = 3000;

/** Sandbox is a running VM with its agent; one owner (process) drives it. */
export class Sandbox {
  readonly id: string;
  readonly dir: string;
  readonly paths: SandboxPaths;
  readonly timings: Timings;
  private readonly containersById = new Map<string, Container>();
  private readonly overlays = new Map<string, ContainerRootfs>();
  private readonly reserved = new Set<string>();
  private readonly exitListeners: Array<(err: HakoError) => void> = [];
  private failed: HakoError | undefined;
  private stopping: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private checking = false;
  private saving: Promise<void> = Promise.resolve();
  private readonly oomListeners: Array<(containerId: string) => void> = [];
  private readonly background = new AbortController();
  /** vmSource says where the VM came from: a cold boot, a template clone or the warm pool. */
  readonly vmSource: VmSource;

  private constructor(
    private readonly config: HakoConfig,
    private readonly log: Logger,
    readonly vm: Vm,
    private readonly agent: AgentClient,
    /** guestDetails is what the agent reported at boot (kernel release, uptime, versions). */
    readonly guestDetails: GuestDetailsInfo,
    private readonly share: Share,
    private readonly state: SandboxState,
    timings: Timings,
    vmSource: VmSource,
    private readonly net: SandboxNetwork | undefined,
    private readonly etcPaths: Awaited<ReturnType<typeof writeEtcFiles>>,
    /** networkReady settles when the pod network is joined; a container start waits for it. */
    private readonly networkReady: Promise<void>,
  ) {
    networkReady.catch((err: unknown) => {
      if (!this.stopping) this.fail(HakoError.wrap(err, `sandbox ${state.id}: joining the pod network`));
    });
    this.vmSource = vmSource;
    this.id = state.id;
    this.paths = sandboxPaths(config.runtime.stateDir, state.id);
    this.dir = this.paths.dir;
    this.timings = timings;
    void vm.exited.then((exit) => {
      if (!this.stopping) this.fail(errorf(Code.UNAVAILABLE, `sandbox ${this.id}: the VM exited unexpectedly: ${exit.detail}`));
    });
    agent.onClose((err) => {
      if (this.stopping || this.failed) return;
      // When QEMU dies its socket closes first: give the exit a moment so the error says why.
      const grace = new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000).unref());
      void Promise.race([vm.exited, grace]).then((exit) => {
        if (this.stopping) return;
        this.fail(errorf(Code.UNAVAILABLE, exit
          ? `sandbox ${this.id}: the VM exited unexpectedly: ${exit.detail}`
          : `sandbox ${this.id}: lost the guest agent: ${err.message}`));
      });
    });
    this.heartbeat = setInterval(() => void this.check(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** api is the agent client, for calls the Sandbox does not wrap (network setup, OOM events). */
  get api(): AgentClient {
    return this.agent;
  }

  /**
   * hostPid is a host process in the pod's network namespace (the namespace holder), which the
   * shim reports as the task pid; undefined for a sandbox without a network.
   */
  get hostPid(): number | undefined {
    return this.net?.hostPid;
  }

  /** syncNetwork makes the VM's interfaces match the pod namespace now (CNI may just have run). */
  async syncNetwork(signal?: AbortSignal): Promise<void> {
    await this.net?.sync(signal);
  }

  /** failure is why the sandbox is unusable (VM or agent gone), if it is. */
  get failure(): HakoError | undefined {
    return this.failed;
  }

  /**
   * create builds missing assets, boots QEMU, connects the agent and creates the sandbox in the
   * guest. Any failure (or an abort of signal) removes everything before the promise rejects.
   */
  static async create(opts: SandboxCreateOptions): Promise<Sandbox> {
    const id = validSandboxId(opts.id);
    const { config } = opts;
    const log = opts.log.child({ sandbox: id });
    const timings = new Timings(log);
    const paths = sandboxPaths(config.runtime.stateDir, id);
    const assets = opts.assets ?? (await ensureAssets({ log, cacheDir: config.runtime.cacheDir, accel: config.hypervisor.accel, qemuBinary: config.hypervisor.path, signal: opts.signal }));
    timings.mark('assets-ready');
    opts.signal?.throwIfAborted();
    await mkdir(sandboxesDir(config.runtime.stateDir), { recursive: true, mode: 0o711 });
    try {
      await mkdir(paths.dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw errorf(Code.ALREADY_EXISTS, `sandbox ${id} already exists (hako rm ${id} removes it)`);
      throw HakoError.wrap(err, `creating ${paths.dir}`);
    }
    const state: SandboxState = {
      version: 1, id, status: 'creating', created: timings.startedAt.toISOString(), ownerPid: process.pid,
      qemuPid: 0, containers: [], annotations: { ...opts.annotations },
    };
    let prov: ProvisionedVm | undefined;
    let net: SandboxNetwork | undefined;
    let attached: Promise<void> | undefined;
    let preparedNet: ReturnType<typeof preparePodNetwork> | undefined;
    try {
      await writeState(paths.state, state);
      // The pod network is prepared while the VM comes up (a clone needs it only after).
      const prepared = (preparedNet = preparePodNetwork({ ...opts, id, config, dir: paths.dir, log, mark: (m, f) => timings.mark(m, f) }));
      prepared.catch(() => {}); // awaited below
      const recipe = await sandboxRecipe(config, assets, opts, log);
      prov = await provisionVm({
        id, recipe, vmDir: paths.vm, log, signal: opts.signal, bootTimeoutMs: config.agent.bootTimeoutMs,
        mark: (name, fields) => timings.mark(name, fields),
        warmUp: () => warmUpInputs(config, assets, log, opts.signal),
        coldNics: async () => (await prepared)?.coldNics ?? [],
      });
      const pod = await prepared;
      net = pod?.net;
      const coldNics = pod?.coldNics ?? [];
      const network = pod?.network;
      state.hostPid = net?.hostPid;
      state.qemuPid = prov.vm.pid;
      state.annotations['hako.vm-source'] = prov.source;
      await writeState(paths.state, state);
      const a = prov.agent;
      const readyMs = timings.now();
      // A restored guest still has the template's entropy and clock: both are replaced, and the
      // sandbox gets its identity, before any container runs.
      // The pod network is plugged meanwhile, and until the first container starts: the NIC
      // probe in the guest overlaps the rest of the start and the container's create.
      const hostname = opts.hostname ?? hostnameOf(id);
      attached = net?.attach(prov.vm, a, { coldPlugged: prov.source === 'cold' ? coldNics : [], watch: network?.watch === true, signal: opts.signal })
        .then(() => void timings.mark('network-attached'));
      attached?.catch(() => {}); // the Sandbox fails on it, or the catch below cleans up
      const [d] = await Promise.all([
        a.getGuestDetails({ signal: opts.signal }),
        personalizeGuest(a, { sandboxId: id, hostname, restored: prov.restored }, opts.signal),
      ]);
      timings.markAt('agent-ready', readyMs, {
        vmSource: prov.source,
        guestUptimeAtAgentStartMs: d.uptimeAtAgentStartMs,
        guestUptimeMs: d.uptimeMs,
        kernelRelease: d.kernelRelease,
        agentVersion: d.agentVersion,
      });
      const etc = await writeEtcFiles(paths.dir, { ...opts.etc, hostname }, net?.podAddresses() ?? []);
      state.status = 'ready';
      await writeState(paths.state, state);
      const sb = new Sandbox(config, log, prov.vm, a, d, prov.share, state, timings, prov.source, net, etc, attached ?? Promise.resolve());
      timings.mark('sandbox-ready');
      return sb;
    } catch (err) {
      prov?.agent.close();
      const e = opts.signal?.aborted ? errorf(Code.CANCELLED, 'cancelled', err) : HakoError.from(err);
      log[e.code === Code.CANCELLED ? 'info' : 'warn']('sandbox start failed, cleaning up', { err: e });
      if (prov) await prov.vm.stop({ signal: AbortSignal.abort() }).catch(() => {});
      await attached?.catch(() => {});
      net ??= await preparedNet?.then((p) => p?.net, () => undefined);
      await net?.close().catch((cerr: unknown) => log.error('removing the pod network after a failed start', { err: cerr }));
      await cleanupSandbox(id, { stateDir: config.runtime.stateDir, log }).catch((cerr: unknown) =>
        log.error('cleanup after a failed start failed', { err: cerr }),
      );
      throw HakoError.wrap(e, `starting sandbox ${id}`);
    }
  }

  /** onExit calls cb once if the VM or its agent dies unexpectedly (at once if it already has). */
  onExit(cb: (err: HakoError) => void): void {
    if (this.failed) queueMicrotask(() => cb(this.failed!));
    else this.exitListeners.push(cb);
  }

  /**
   * onOOM calls cb with the container id each time the guest's OOM killer kills a container
   * process (a GetOOMEvent long poll runs while anyone listens).
   */
  onOOM(cb: (containerId: string) => void): void {
    this.oomListeners.push(cb);
    if (this.oomListeners.length === 1) void this.watchOom();
  }

  private async watchOom(): Promise<void> {
    while (!this.failed && !this.stopping) {
      try {
        const id = await this.agent.getOOMEvent({ signal: this.background.signal });
        this.log.warn('container OOM-killed', { container: id });
        for (const cb of this.oomListeners) cb(id);
      } catch (err) {
        if (this.failed || this.stopping || this.background.signal.aborted) return;
        this.log.debug('GetOOMEvent failed; retrying', { err });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private fail(err: HakoError): void {
    if (this.failed) return;
    this.failed = err;
    this.background.abort(err);
    this.log.warn('sandbox failed', { err });
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const c of this.containersById.values()) for (const p of c.processes()) p.fail(err);
    this.agent.close();
    // A VM whose agent is gone or hung is useless: make sure it does not linger.
    if (!this.vm.exit()) void this.vm.stop({ signal: AbortSignal.abort() }).catch(() => {});
    this.state.status = 'failed';
    this.state.error = err.message;
    void this.persist();
    for (const cb of this.exitListeners.splice(0)) {
      try {
        cb(err);
      } catch (cbErr) {
        this.log.error('onExit listener threw', { err: cbErr });
      }
    }
  }

  private async check(): Promise<void> {
    if (this.checking || this.failed || this.stopping) return;
    this.checking = true;
    try {
      await this.agent.check({ timeoutMs: this.config.agent.timeoutMs });
    } catch (err) {
      if (!this.failed && !this.stopping) {
        const e = HakoError.from(err);
        const code = e.code === Code.DEADLINE_EXCEEDED ? Code.DEADLINE_EXCEEDED : Code.UNAVAILABLE;
        this.fail(new HakoError(code, `sandbox ${this.id}: the guest agent did not answer a health check within ${this.config.agent.timeoutMs} ms (${e.message})`, { cause: e }));
      }
    } finally {
      this.checking = false;
    }
  }

  private usable(): void {
    if (this.failed) throw this.failed;
    if (this.stopping) throw errorf(Code.FAILED_PRECONDITION, `sandbox ${this.id} is stopping`);
  }

  /** mountImageRootfs mounts a writable overlay over an unpacked image for container cid; delete() removes it. */
  async mountImageRootfs(cid: string, lower: string): Promise<string> {
    this.usable();
    validId(cid);
    if (this.overlays.has(cid)) throw errorf(Code.ALREADY_EXISTS, `container ${cid} already has a rootfs`);
    const rootfs = await mountContainerRootfs(this.dir, cid, lower, this.log);
    this.overlays.set(cid, rootfs);
    return rootfs.path;
  }

  /** createContainer shares rootfs and bind sources with the guest and creates the container there. */
  async createContainer(opts: CreateContainerOptions): Promise<Container> {
    this.usable();
    const cid = validId(opts.id);
    if (this.containersById.has(cid)) throw errorf(Code.ALREADY_EXISTS, `container ${cid} already exists in sandbox ${this.id}`);
    const log = this.log.child({ container: cid });
    const spec = structuredClone(opts.spec) as OciSpec;
    if (this.reserved.has(cid)) throw errorf(Code.ALREADY_EXISTS, `container ${cid} is being created in sandbox ${this.id}`);
    this.reserved.add(cid);
    try {
      const mounts = await shareSpec(this.share, cid, spec, opts.rootfs, this.etcPaths);
      spec.process = { ...spec.process, terminal: opts.terminal };
      const specJson = new TextEncoder().encode(JSON.stringify(spec));
      await this.agent.createContainer({ containerId: cid, spec: specJson, stdin: opts.stdin, terminal: opts.terminal }, { signal: opts.signal });
      const overlay = this.overlays.get(cid);
      if (overlay) mounts.push(overlay.path);
      const c = new Container(this.containerHost(log), { id: cid, stdin: opts.stdin, terminal: opts.terminal, mounts });
      this.containersById.set(cid, c);
      this.timings.mark('container-created', { container: cid });
      await this.persist();
      return c;
    } catch (err) {
      await this.share.removeContainer(cid).catch((e: unknown) => log.error('unsharing after a failed create', { err: e }));
      throw HakoError.wrap(err, `creating container ${cid}`);
    } finally {
      this.reserved.delete(cid);
    }
  }

  private containerHost(log: Logger) {
    return {
      api: this.agent,
      log,
      failure: () => this.failed,
      changed: (c: Container) => {
        if (c.status === 'running') this.timings.mark('container-started', { container: c.id, pid: c.pid });
        if (c.status === 'stopped' && c.init.exited) {
          this.timings.mark('container-exited', { container: c.id, exitStatus: c.init.exited.exitStatus });
        }
        return this.persist();
      },
      removed: async (c: Container) => {
        this.containersById.delete(c.id);
        await this.share.removeContainer(c.id);
        const overlay = this.overlays.get(c.id);
        this.overlays.delete(c.id);
        await overlay?.remove();
        await this.persist();
      },
      beforeStart: async () => {
        await this.networkReady;
        await this.net?.catchUp();
      },
    };
  }

  /** container returns a container by id, or undefined. */
  container(id: string): Container | undefined {
    return this.containersById.get(id);
  }

  /** containers lists the sandbox's containers. */
  containers(): Container[] {
    return [...this.containersById.values()];
  }

  private persist(): Promise<void> {
    if (this.state.status === 'stopped') return this.saving;
    this.state.containers = this.containers().map((c) => ({
      id: c.id,
      status: c.status,
      pid: c.pid,
      mounts: c.mounts,
      ...(c.init.exited ? { exitStatus: c.init.exited.exitStatus, exitedAt: c.init.exited.exitedAt.toISOString() } : {}),
    }));
    const snapshot = structuredClone(this.state);
    this.saving = this.saving
      .then(() => (this.stopping && snapshot.status !== 'stopping' ? undefined : writeState(this.paths.state, snapshot)))
      .catch((err: unknown) => this.log.debug('state.json not written', { err }));
    return this.saving;
  }

  /**
   * stop quits QEMU (QMP quit, then SIGTERM, SIGKILL), fails the waits of processes still
   * running (UNAVAILABLE), unmounts everything and removes the sandbox directory. It works
   * after a VM failure too, and is idempotent.
   */
  stop(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.stopping ??= this.doStop(opts.signal);
    return this.stopping;
  }

  private async doStop(signal?: AbortSignal): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const stopped = errorf(Code.UNAVAILABLE, `sandbox ${this.id} was stopped`);
    this.background.abort(stopped);
    this.state.status = 'stopping';
    void this.persist();
    // The whole VM goes away, so removing containers one by one in the guest buys nothing:
    // 9p writes are already on the host (no guest cache). Quit QEMU, then clean the host side.
    for (const c of this.containers()) c.release(this.failed ?? stopped);
    this.agent.close();
    // The pod network comes down while QEMU quits: neither waits for the other.
    const network = this.net
      ? this.net.close().then(() => cleanupNetwork(this.dir, this.log)).then((problems) => {
        if (problems.length > 0) this.log.warn('removing the pod network', { problems });
      }).catch((err: unknown) => this.log.warn('removing the pod network', { err }))
      : Promise.resolve();
    await this.vm.stop({ signal, timeoutMs: CLEANUP_QUIT_MS }).catch((err: unknown) => this.log.warn('stopping qemu', { err }));
    await network;
    await this.saving;
    this.state.status = 'stopped';
    this.containersById.clear();
    this.overlays.clear();
    await cleanupSandbox(this.id, { stateDir: this.config.runtime.stateDir, log: this.log });
    this.timings.mark('cleaned-up');
  }
}
