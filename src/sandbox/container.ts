// Container: one container in a sandbox's VM. It owns its processes (init and execs), its share
// entries and status; every agent call carries the configured timeout.

import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { AgentClient, ContainerStats } from '../agent-client/index.js';
import { Process, type ExitInfo } from './process.js';
import type { OciProcess } from './spec.js';
import type { ContainerStatus } from './state.js';

/** ContainerHost is what a Container needs from its sandbox. */
export interface ContainerHost {
  api: AgentClient;
  log: Logger;
  failure(): HakoError | undefined;
  /** changed persists the container's new state (resolves once state.json is written). */
  changed(c: Container): Promise<void>;
  /** removed is told after delete() so the sandbox forgets the container and its mounts. */
  removed(c: Container): Promise<void>;
  /** beforeStart runs before the init process starts (the pod network catches up with CNI). */
  beforeStart(): Promise<void>;
}

/** ExecOptions creates an exec process. */
export interface ExecOptions {
  execId: string;
  process: OciProcess;
  stdin: boolean;
  terminal: boolean;
}

const EXEC_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Container is a container created in the guest. */
export class Container {
  readonly id: string;
  status: ContainerStatus = 'created';
  /** init is the container's main process (exec id ''). */
  readonly init: Process;
  /** mounts are the host mount points made for it (for state.json). */
  readonly mounts: string[];
  private readonly execs = new Map<string, Process>();
  private deleted = false;

  constructor(private readonly host: ContainerHost, init: { id: string; stdin: boolean; terminal: boolean; mounts: string[] }) {
    this.id = init.id;
    this.mounts = init.mounts;
    this.init = new Process(this.processHost(), {
      execId: '',
      stdin: init.stdin,
      terminal: init.terminal,
      starter: async () => {
        await host.beforeStart();
        return host.api.startContainer(this.id);
      },
    });
  }

  private processHost() {
    return {
      api: this.host.api,
      containerId: this.id,
      log: this.host.log,
      failure: () => this.host.failure(),
      onExit: (p: Process, info: ExitInfo) => this.onProcessExit(p, info),
    };
  }

  private onProcessExit(p: Process, info: ExitInfo): void {
    if (p === this.init) {
      this.status = 'stopped';
      this.host.log.info('container exited', { exitStatus: info.exitStatus });
    }
    void this.host.changed(this);
  }

  /** pid is the init process's guest pid (0 before start). */
  get pid(): number {
    return this.init.pid;
  }

  /** start starts the init process and returns its guest pid. */
  async start(): Promise<number> {
    if (this.status !== 'created') throw errorf(Code.FAILED_PRECONDITION, `container ${this.id} is ${this.status}, not created`);
    const pid = await this.init.start();
    if (this.status === 'created') this.status = 'running';
    await this.host.changed(this);
    return pid;
  }

  /** exec registers a new process (not started: call process.start()). ALREADY_EXISTS for a used id. */
  async exec(opts: ExecOptions): Promise<Process> {
    this.usable();
    if (!EXEC_ID.test(opts.execId)) throw errorf(Code.INVALID_ARGUMENT, `exec id ${JSON.stringify(opts.execId)} must match ${EXEC_ID.source}`);
    if (this.execs.has(opts.execId)) throw errorf(Code.ALREADY_EXISTS, `exec ${opts.execId} already exists in container ${this.id}`);
    if (this.status !== 'running') throw errorf(Code.FAILED_PRECONDITION, `container ${this.id} is ${this.status}, not running`);
    const process = { ...opts.process, terminal: opts.terminal };
    const p = new Process(this.processHost(), {
      execId: opts.execId,
      stdin: opts.stdin,
      terminal: opts.terminal,
      starter: () => this.host.api.execProcess({ containerId: this.id, execId: opts.execId, process, stdin: opts.stdin, terminal: opts.terminal }),
    });
    this.execs.set(opts.execId, p);
    return p;
  }

  /** process returns a process by exec id ('' is init). */
  process(execId: string): Process | undefined {
    return execId === '' ? this.init : this.execs.get(execId);
  }

  /** processes lists init and every exec. */
  processes(): Process[] {
    return [this.init, ...this.execs.values()];
  }

  /** kill signals a process (init by default, or all of the container's). NOT_FOUND once it has exited. */
  async kill(signal: number, opts: { execId?: string; all?: boolean } = {}): Promise<void> {
    this.usable();
    const execId = opts.execId ?? '';
    const p = this.process(execId);
    if (!p) throw errorf(Code.NOT_FOUND, `container ${this.id} has no process ${JSON.stringify(execId)}`);
    if (!Number.isInteger(signal) || signal < 1 || signal > 64) throw errorf(Code.INVALID_ARGUMENT, `bad signal ${signal}`);
    if (p.pid === 0 && !opts.all) throw errorf(Code.FAILED_PRECONDITION, `process ${execId || 'init'} of ${this.id} is not started`);
    if (p.hasExited && !opts.all) throw errorf(Code.NOT_FOUND, `process ${execId || 'init'} of ${this.id} has exited`);
    await this.host.api.signalProcess({ containerId: this.id, execId, signal, all: opts.all ?? false });
  }

  /** pause freezes every process of the container. */
  async pause(): Promise<void> {
    this.usable();
    if (this.status !== 'running') throw errorf(Code.FAILED_PRECONDITION, `container ${this.id} is ${this.status}, not running`);
    await this.host.api.pauseContainer(this.id);
    this.status = 'paused';
    await this.host.changed(this);
  }

  /** resume thaws a paused container. */
  async resume(): Promise<void> {
    this.usable();
    if (this.status !== 'paused') throw errorf(Code.FAILED_PRECONDITION, `container ${this.id} is ${this.status}, not paused`);
    await this.host.api.resumeContainer(this.id);
    this.status = this.init.hasExited ? 'stopped' : 'running';
    await this.host.changed(this);
  }

  /** update applies OCI LinuxResources (JSON) to the container's cgroup. */
  async update(resourcesJson: string | Uint8Array | object): Promise<void> {
    this.usable();
    const bytes = typeof resourcesJson === 'string' ? new TextEncoder().encode(resourcesJson) : resourcesJson;
    await this.host.api.updateContainer(this.id, bytes);
  }

  /** stats returns the container's cgroup v2 figures from the guest. */
  async stats(): Promise<ContainerStats> {
    this.usable();
    return this.host.api.statsContainer(this.id);
  }

  /** pids lists the guest pids of the container's processes. */
  async pids(): Promise<number[]> {
    this.usable();
    return this.host.api.listProcesses(this.id);
  }

  /**
   * delete removes the container from the guest and its entries from the share. A running
   * container needs force (its processes are killed). After a VM failure it only cleans the host.
   */
  async delete(opts: { force?: boolean } = {}): Promise<void> {
    if (this.deleted) return;
    const running = this.status === 'running' || this.status === 'paused';
    if (running && !opts.force && !this.host.failure()) {
      throw errorf(Code.FAILED_PRECONDITION, `container ${this.id} is ${this.status}: stop it first or delete with force`);
    }
    let guestErr: unknown;
    if (!this.host.failure()) {
      try {
        await this.host.api.removeContainer(this.id, opts.force ?? false);
      } catch (err) {
        guestErr = err;
      }
    }
    if (guestErr && !opts.force) throw HakoError.wrap(guestErr, `removing container ${this.id}`);
    if (guestErr) this.host.log.warn('guest did not remove the container; cleaning the host side anyway', { err: guestErr });
    this.deleted = true;
    const err = this.host.failure() ?? errorf(Code.NOT_FOUND, `container ${this.id} was deleted`);
    for (const p of this.processes()) p.fail(err);
    this.status = 'stopped';
    await this.host.removed(this);
  }

  /** release forgets the container on the host side only (the sandbox is stopping): waits fail with err. */
  release(err: HakoError): void {
    if (this.deleted) return;
    this.deleted = true;
    for (const p of this.processes()) p.fail(err);
    if (this.status !== 'stopped') this.status = 'stopped';
  }

  /** isDeleted reports whether delete() has run. */
  get isDeleted(): boolean {
    return this.deleted;
  }

  private usable(): void {
    const f = this.host.failure();
    if (f) throw f;
    if (this.deleted) throw errorf(Code.NOT_FOUND, `container ${this.id} was deleted`);
  }
}
