// The agent's containers: bundle creation from the host's spec, start via `crun run`, execs
// via `crun exec`, signals, pause/resume/update/stats and removal. Mutations of one container are serialized.

import { mkdir, realpath, rm, writeFile } from 'node:fs/promises';
import { Code, HakoError } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import { cgroupDir, CRUN_CGROUP_LEAF, readPids, readStats } from './cgroup-stats.js';
import { makeCgroup, removeCgroup } from './container-cgroup.js';
import { crun } from './crun.js';
import { GuestProcess, type Exit } from './guest-process.js';
import { validateContainerId, validateExecId } from './ids.js';
import type { OomWatcher } from './oom-watch.js';
import { isUnderShare, parseJsonObject, rewriteProcess, rewriteSpec, SHARE_ROOT } from './spec-rewrite.js';

/** BUNDLES_DIR holds one OCI bundle directory per container. */
export const BUNDLES_DIR = '/run/hako/bundles';

const MAX_CONTAINERS = 1024;
const MAX_EXECS = 1024;

/** ContainerState is where a container is in its life. */
export type ContainerState = 'created' | 'running' | 'paused' | 'stopped';

/** ContainerManagerOptions configure a ContainerManager. */
export interface ContainerManagerOptions {
  log: Logger;
  oom: OomWatcher;
  /** shareReady throws FAILED_PRECONDITION until CreateSandbox mounted the share. */
  shareReady: () => void;
  /** ptyHelper is hako-pty, which gives terminal processes a pty; undefined = none in the guest. */
  ptyHelper: string | undefined;
  bundlesDir?: string;
  shareRoot?: string;
}

interface Container {
  id: string;
  bundle: string;
  state: ContainerState;
  init: GuestProcess;
  execs: Map<string, GuestProcess>;
  /** queue serializes start/exec/pause/resume/update/remove. */
  queue: Promise<unknown>;
  removed: boolean;
}

/** ContainerManager owns every container of the sandbox. */
export class ContainerManager {
  private readonly containers = new Map<string, Container>();
  private readonly bundlesDir: string;
  private readonly shareRoot: string;

  constructor(private readonly opts: ContainerManagerOptions) {
    this.bundlesDir = opts.bundlesDir ?? BUNDLES_DIR;
    this.shareRoot = opts.shareRoot ?? SHARE_ROOT;
  }

  /** create checks and writes the bundle; the process starts with start(). */
  async create(req: { containerId: string; specJson: Uint8Array; stdin: boolean; terminal: boolean }): Promise<void> {
    const id = validateContainerId(req.containerId);
    this.opts.shareReady();
    if (this.containers.has(id)) throw new HakoError(Code.ALREADY_EXISTS, `container ${id} already exists`);
    if (this.containers.size >= MAX_CONTAINERS) throw new HakoError(Code.RESOURCE_EXHAUSTED, `more than ${MAX_CONTAINERS} containers`);
    const log = this.opts.log.child({ container: id });
    const terminal = req.terminal && this.ttyAvailable(log);
    const { spec, paths, dropped } = rewriteSpec(parseJsonObject(req.specJson, 'spec_json'), { containerId: id, terminal, shareRoot: this.shareRoot });
    if (dropped.length > 0) log.info('dropped host-only spec settings', { dropped });
    for (const p of paths) await this.checkSharePath(p);
    const bundle = `${this.bundlesDir}/${id}`;
    const c: Container = { id, bundle, state: 'created', init: new GuestProcess(id, '', req.stdin, terminal, log, req.terminal && !terminal), execs: new Map(), queue: Promise.resolve(), removed: false };
    // Reserve the id before the first await that could interleave with a second create.
    this.containers.set(id, c);
    try {
      await mkdir(bundle, { recursive: true, mode: 0o700 });
      await writeFile(`${bundle}/config.json`, JSON.stringify(spec), { mode: 0o600 });
      await makeCgroup(cgroupDir(id));
    } catch (err) {
      this.containers.delete(id);
      await rm(bundle, { recursive: true, force: true }).catch(() => {});
      throw HakoError.wrap(err, `creating container ${id}`);
    }
    log.info('container created', { bundle, terminal, stdin: req.stdin });
  }

  /** start runs the container's init process under `crun run` and returns its pid. */
  start(containerId: string): Promise<number> {
    return this.serialized(containerId, async (c) => {
      if (c.state !== 'created') throw new HakoError(Code.FAILED_PRECONDITION, `container ${c.id} is ${c.state}, not created`);
      await this.opts.oom.add(c.id, cgroupDir(c.id));
      const t0 = Date.now();
      let pid: number;
      try {
        pid = await c.init.start({
          crunArgs: ['run', '--bundle', c.bundle, '--pid-file', `${c.bundle}/init.pid`, c.id],
          pidFile: `${c.bundle}/init.pid`,
          logFile: `${c.bundle}/crun-init.log`,
          ptyHelper: c.init.terminal ? this.opts.ptyHelper : undefined,
        });
      } catch (err) {
        c.state = 'stopped';
        await crun(['delete', '-f', c.id]).catch(() => {});
        throw HakoError.wrap(err, `starting container ${c.id}`);
      }
      c.state = c.init.exit ? 'stopped' : 'running';
      void c.init.waitExit().then(() => { c.state = 'stopped'; });
      this.opts.log.info('container started', { container: c.id, pid, ms: Date.now() - t0 });
      return pid;
    });
  }

  /** exec starts an extra process in a running container under `crun exec`; returns its pid. */
  exec(req: { containerId: string; execId: string; processJson: Uint8Array; stdin: boolean; terminal: boolean }): Promise<number> {
    return this.serialized(req.containerId, async (c) => {
      const execId = validateExecId(req.execId);
      if (execId === '') throw new HakoError(Code.INVALID_ARGUMENT, 'exec id must not be empty');
      if (c.execs.has(execId)) throw new HakoError(Code.ALREADY_EXISTS, `exec ${execId} already exists in ${c.id}`);
      if (c.state !== 'running') throw new HakoError(Code.FAILED_PRECONDITION, `container ${c.id} is ${c.state}, not running`);
      const log = this.opts.log.child({ container: c.id, exec: execId });
      const terminal = req.terminal && this.ttyAvailable(log);
      const proc = rewriteProcess(parseJsonObject(req.processJson, 'process_json'), terminal, 'exec process');
      this.pruneExecs(c);
      const base = `${c.bundle}/exec-${execId}`;
      await writeFile(`${base}.json`, JSON.stringify(proc), { mode: 0o600 });
      const p = new GuestProcess(c.id, execId, req.stdin, terminal, log, req.terminal && !terminal);
      c.execs.set(execId, p);
      try {
        return await p.start({
          crunArgs: ['exec', '--process', `${base}.json`, '--pid-file', `${base}.pid`, c.id],
          pidFile: `${base}.pid`,
          logFile: `${base}.log`,
          ptyHelper: terminal ? this.opts.ptyHelper : undefined,
        });
      } catch (err) {
        c.execs.delete(execId);
        throw HakoError.wrap(err, `exec ${execId} in ${c.id}`);
      }
    });
  }

  /** process finds a container's process ('' = init); NOT_FOUND otherwise. */
  process(containerId: string, execId: string): GuestProcess {
    const c = this.get(containerId);
    if (validateExecId(execId) === '') return c.init;
    const p = c.execs.get(execId);
    if (!p) throw new HakoError(Code.NOT_FOUND, `no exec ${execId} in container ${c.id}`);
    return p;
  }

  /** signal delivers sig to one process, or with all to every process of the container. */
  async signal(containerId: string, execId: string, sig: number, all: boolean): Promise<void> {
    if (!Number.isInteger(sig) || sig < 1 || sig > 64) throw new HakoError(Code.INVALID_ARGUMENT, `invalid signal ${sig}`);
    const c = this.get(containerId);
    const p = this.process(containerId, execId);
    if (all && execId === '') {
      if (c.state === 'created' || c.state === 'stopped' || c.init.exit) throw new HakoError(Code.NOT_FOUND, `container ${c.id} is not running`);
      await crun(['kill', '--all', c.id, String(sig)], { what: `crun kill --all ${c.id}` });
      return;
    }
    p.kill(sig);
  }

  /** wait resolves when the process has exited. */
  wait(containerId: string, execId: string, signal?: AbortSignal): Promise<Exit> {
    return this.process(containerId, execId).waitExit(signal);
  }

  /** pids lists the guest pids in the container's cgroup. */
  async pids(containerId: string): Promise<number[]> {
    const c = this.get(containerId);
    return readPids(cgroupDir(c.id));
  }

  /** stats reads the container's cgroup figures. */
  async stats(containerId: string): ReturnType<typeof readStats> {
    const c = this.get(containerId);
    return readStats(cgroupDir(c.id), `${cgroupDir(c.id)}/${CRUN_CGROUP_LEAF}`);
  }

  /** pause freezes the container (crun pause). */
  pause(containerId: string): Promise<void> {
    return this.serialized(containerId, async (c) => {
      if (c.state !== 'running') throw new HakoError(Code.FAILED_PRECONDITION, `container ${c.id} is ${c.state}, not running`);
      await crun(['pause', c.id]);
      c.state = 'paused';
    });
  }

  /** resume thaws a paused container (crun resume). */
  resume(containerId: string): Promise<void> {
    return this.serialized(containerId, async (c) => {
      if (c.state !== 'paused') throw new HakoError(Code.FAILED_PRECONDITION, `container ${c.id} is ${c.state}, not paused`);
      await crun(['resume', c.id]);
      c.state = c.init.exit ? 'stopped' : 'running';
    });
  }

  /** update applies new LinuxResources (JSON) with crun update. */
  update(containerId: string, resourcesJson: Uint8Array): Promise<void> {
    return this.serialized(containerId, async (c) => {
      if (c.state !== 'running' && c.state !== 'paused') throw new HakoError(Code.FAILED_PRECONDITION, `container ${c.id} is ${c.state}`);
      const resources = parseJsonObject(resourcesJson, 'resources_json');
      const file = `${c.bundle}/resources.json`;
      await writeFile(file, JSON.stringify(resources), { mode: 0o600 });
      await crun(['update', `--resources=${file}`, c.id]);
    });
  }

  /** remove deletes the container; a live one needs force (then every process is killed first). */
  remove(containerId: string, force: boolean): Promise<void> {
    return this.serialized(containerId, async (c) => {
      const live = c.init.started && !c.init.exit;
      if (live && !force) throw new HakoError(Code.FAILED_PRECONDITION, `container ${c.id} is ${c.state}; stop it or remove with force`);
      if (live) {
        await crun(['kill', '--all', c.id, '9']).catch((err) => this.opts.log.warn('kill before remove failed', { container: c.id, err }));
        const gone = await Promise.race([c.init.waitExit().then(() => true), sleep(10_000).then(() => false)]);
        if (!gone) this.opts.log.warn('container did not exit within 10 s of SIGKILL', { container: c.id });
      }
      await crun(['delete', '-f', c.id]).catch((err) => {
        if (HakoError.from(err).code !== Code.NOT_FOUND) this.opts.log.debug('crun delete', { container: c.id, err });
      });
      await this.opts.oom.remove(c.id);
      c.removed = true;
      this.containers.delete(c.id);
      c.init.discard();
      for (const p of c.execs.values()) p.discard();
      await rm(c.bundle, { recursive: true, force: true });
      await removeCgroup(cgroupDir(c.id), this.opts.log);
      this.opts.log.info('container removed', { container: c.id });
    });
  }

  /** removeAll force-removes every container (DestroySandbox). */
  async removeAll(): Promise<void> {
    await Promise.allSettled([...this.containers.keys()].map((id) => this.remove(id, true)));
  }

  private get(containerId: string): Container {
    const c = this.containers.get(validateContainerId(containerId));
    if (!c) throw new HakoError(Code.NOT_FOUND, `container ${containerId} not found`);
    return c;
  }

  private serialized<T>(containerId: string, fn: (c: Container) => Promise<T>): Promise<T> {
    const c = this.get(containerId);
    const run = c.queue.then(() => {
      if (c.removed) throw new HakoError(Code.NOT_FOUND, `container ${c.id} not found`);
      return fn(c);
    });
    c.queue = run.catch(() => {});
    return run;
  }

  private ttyAvailable(log: Logger): boolean {
    if (this.opts.ptyHelper) return true;
    log.warn('a terminal was asked for, but the guest has no hako-pty to make a pty; using pipes');
    return false;
  }

  private pruneExecs(c: Container): void {
    if (c.execs.size < MAX_EXECS) return;
    for (const [id, p] of c.execs) {
      if (p.exit && p.stdout.done && p.stderr.done) c.execs.delete(id);
      if (c.execs.size < MAX_EXECS) return;
    }
    throw new HakoError(Code.RESOURCE_EXHAUSTED, `container ${c.id} has ${MAX_EXECS} live execs`);
  }

  private async checkSharePath(p: string): Promise<void> {
    let real: string;
    try {
      real = await realpath(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new HakoError(Code.NOT_FOUND, `${p} does not exist in the sandbox share`);
      throw HakoError.wrap(err, `checking ${p}`);
    }
    if (!isUnderShare(real, this.shareRoot)) throw new HakoError(Code.INVALID_ARGUMENT, `${p} resolves outside the sandbox share`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
