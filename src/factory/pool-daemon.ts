// The warm pool (`hako factory serve`): N VMs restored from the template, each warmed by one
// container in its own QEMU, refilled one at a time at low priority and handed out over a socket.

import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { hasHandOff, type Vm } from '../hypervisor/index.js';
import { QemuHypervisor } from '../hypervisor/qemu/index.js';
import type { AgentClient } from '../agent-client/index.js';
import { acquireLock, type Lock } from '../image/lock.js';
import { Share } from '../storage/index.js';
import { templateKey, type TemplateKey } from './key.js';
import { encodeLine, MAX_POOL_LINE, parseRequest, type PoolStatus, type TakeReply, type TakeRequest } from './pool-protocol.js';
import { factoryDir, poolSocket } from './provision.js';
import { removeVmDir, type VmRecipe } from './recipe.js';
import { TemplateStore } from './store.js';
import { cloneTemplate, ensureTemplate } from './template.js';
import { warmUp, type WarmUpInputs } from './warm-up.js';

/** POOL_NICE is the niceness pool VMs are made at; the caller that takes one resets it to 0. */
export const POOL_NICE = 19;

// A sandbox id as a directory name (src/sandbox/paths.ts has the same rule).
const SANDBOX_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HEALTH_MS = 10_000;
const MAX_BACKOFF_MS = 60_000;

/** PoolDaemonOptions configure a PoolDaemon. */
export interface PoolDaemonOptions {
  stateDir: string;
  /** sandboxesDir is where callers' sandboxes live; a taken VM may only move below it. */
  sandboxesDir: string;
  size: number;
  recipe: VmRecipe;
  warmUp: () => Promise<WarmUpInputs>;
  log: Logger;
}

interface PoolVm {
  id: string;
  dir: string;
  vm: Vm;
  agent: AgentClient;
  warmMs: number;
}

/** poolVmsDir is where pool VMs live until handed out: `<state_dir>/pool` (same filesystem as the sandboxes). */
export function poolVmsDir(stateDir: string): string {
  return join(stateDir, 'pool');
}

/** PoolDaemon holds the warm VMs and serves the pool socket. */
export class PoolDaemon {
  private readonly ready: PoolVm[] = [];
  private starting = 0;
  private handedOut = 0;
  private stopped = false;
  private server: Server | undefined;
  private lock: Lock | undefined;
  private filling: Promise<void> | undefined;
  private health: NodeJS.Timeout | undefined;
  private tk!: TemplateKey;
  private readonly abort = new AbortController();
  private readonly store: TemplateStore;
  private readonly hv: QemuHypervisor;
  private readonly log: Logger;
  private readonly socket: string;
  private readonly vmsDir: string;

  constructor(private readonly opts: PoolDaemonOptions) {
    this.log = opts.log.child({ subsystem: 'pool' });
    this.store = new TemplateStore(factoryDir(opts.stateDir), this.log);
    this.hv = new QemuHypervisor({ binary: opts.recipe.config.hypervisor.path, log: this.log });
    this.socket = poolSocket(opts.stateDir);
    this.vmsDir = poolVmsDir(opts.stateDir);
  }

  /** start takes the single-daemon lock, removes what a dead daemon left, listens and begins filling. */
  async start(): Promise<void> {
    await this.store.prepare();
    this.lock = await acquireLock(join(factoryDir(this.opts.stateDir), 'pool.lock'), { timeoutMs: 2000 }).catch((err: unknown) => {
      throw errorf(Code.ALREADY_EXISTS, 'another `hako factory serve` is running (it holds the pool lock)', err);
    });
    try {
      this.tk = await templateKey(this.opts.recipe);
      await this.sweep();
      await rm(this.socket, { force: true });
      const server = createServer((conn) => this.onConnection(conn));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socket, () => resolve());
      });
      await chmod(this.socket, 0o600);
      this.server = server;
    } catch (err) {
      await this.lock.release();
      throw err;
    }
    this.health = setInterval(() => void this.checkHealth(), HEALTH_MS);
    this.log.info('warm pool serving', { socket: this.socket, size: this.opts.size, template: this.tk.key.slice(0, 12) });
    this.refill();
  }

  /** status describes the pool. */
  status(): PoolStatus {
    return { ok: true, pid: process.pid, key: this.tk.key, size: this.opts.size, ready: this.ready.length, starting: this.starting, handedOut: this.handedOut };
  }

  /** whenFull resolves once the pool holds size ready VMs (tests, `serve --wait`), bounded by timeoutMs. */
  async whenFull(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.ready.length < this.opts.size) {
      if (this.stopped) throw errorf(Code.CANCELLED, 'the pool stopped');
      if (Date.now() > end) throw errorf(Code.DEADLINE_EXCEEDED, `the pool has ${this.ready.length} of ${this.opts.size} VMs after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** stop ends every VM not handed out, removes their directories and the socket. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort(errorf(Code.CANCELLED, 'the pool is stopping'));
    if (this.health) clearInterval(this.health);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await rm(this.socket, { force: true });
    await this.filling?.catch(() => {});
    await Promise.all(this.ready.splice(0).map((p) => this.discard(p)));
    await this.sweep();
    await this.lock?.release();
    this.log.info('warm pool stopped', { handedOut: this.handedOut });
  }

  private refill(): void {
    if (this.filling !== undefined || this.stopped) return;
    this.filling = this.fill().finally(() => {
      this.filling = undefined;
    });
  }

  // fill adds VMs one at a time (two restores at once on two cores slow each other down).
  private async fill(): Promise<void> {
    let failures = 0;
    while (!this.stopped && this.ready.length + this.starting < this.opts.size) {
      try {
        await this.addOne();
        failures = 0;
      } catch (err) {
        if (this.stopped) return;
        failures++;
        const wait = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures, 6));
        this.log.warn('could not make a warm VM; retrying', { err, retryInMs: wait });
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private async addOne(): Promise<void> {
    this.starting++;
    const id = `pool-${randomBytes(6).toString('hex')}`;
    const dir = join(this.vmsDir, id);
    const signal = this.abort.signal;
    const bootTimeoutMs = this.opts.recipe.config.agent.bootTimeoutMs;
    let vm: Vm | undefined;
    let agent: AgentClient | undefined;
    try {
      const { template } = await ensureTemplate(this.store, this.tk, { recipe: this.opts.recipe, hv: this.hv, warmUp: this.opts.warmUp, log: this.log, signal, bootTimeoutMs });
      const deadline = Date.now() + bootTimeoutMs;
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const share = await Share.create(dir, this.log);
      ({ vm, agent } = await cloneTemplate(template, { id, recipe: this.opts.recipe, hv: this.hv, vmDir: dir, log: this.log, signal, deadline, mark: () => {}, nice: POOL_NICE }));
      const warmMs = await warmUp(agent, share, dir, await this.opts.warmUp(), { log: this.log, signal });
      if (this.stopped) throw errorf(Code.CANCELLED, 'the pool is stopping');
      const p: PoolVm = { id, dir, vm, agent, warmMs };
      this.ready.push(p);
      void vm.exited.then((exit) => this.onVmExit(p, exit.detail));
      this.log.info('warm VM ready', { vm: id, pid: vm.pid, warmMs, ready: this.ready.length });
    } catch (err) {
      agent?.close();
      await vm?.stop({ signal: AbortSignal.abort() }).catch(() => {});
      await this.removeDir(dir);
      throw HakoError.wrap(err, `making warm VM ${id}`);
    } finally {
      this.starting--;
    }
  }

  private onVmExit(p: PoolVm, detail: string): void {
    const i = this.ready.indexOf(p);
    if (i < 0) return;
    this.ready.splice(i, 1);
    this.log.warn('a warm VM exited; replacing it', { vm: p.id, detail });
    p.agent.close();
    void this.removeDir(p.dir).then(() => this.refill());
  }

  private async checkHealth(): Promise<void> {
    for (const p of [...this.ready]) {
      try {
        await p.agent.check({ timeoutMs: 5000 });
      } catch (err) {
        const i = this.ready.indexOf(p);
        if (i < 0) continue;
        this.ready.splice(i, 1);
        this.log.warn('a warm VM stopped answering; replacing it', { vm: p.id, err });
        await this.discard(p);
      }
    }
    this.refill();
  }

  private onConnection(conn: Socket): void {
    let buf = '';
    conn.setTimeout(5000, () => conn.destroy());
    conn.on('error', () => {});
    conn.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      if (buf.length > MAX_POOL_LINE) return void conn.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      conn.removeAllListeners('data');
      void this.answer(buf.slice(0, nl)).then((reply) => conn.end(encodeLine(reply)));
    });
  }

  private async answer(line: string): Promise<object> {
    try {
      const req = parseRequest(line);
      return req.op === 'status' ? this.status() : await this.take(req);
    } catch (err) {
      return { ok: false, reason: 'refused', detail: HakoError.from(err).message } satisfies TakeReply;
    }
  }

  // take hands the first ready VM to the caller: release it, then move its directory to vmDir.
  private async take(req: TakeRequest): Promise<TakeReply> {
    if (req.key !== this.tk.key) return { ok: false, reason: 'other-key', detail: `the pool holds template ${this.tk.key.slice(0, 12)}` };
    await this.checkTarget(req.vmDir);
    const p = this.ready.shift();
    if (p === undefined) {
      this.refill();
      return { ok: false, reason: 'empty', detail: `${this.starting} warm VMs on the way` };
    }
    try {
      p.agent.close();
      if (!hasHandOff(p.vm)) throw errorf(Code.UNIMPLEMENTED, 'this hypervisor cannot hand a VM over');
      await p.vm.release();
      await rename(p.dir, req.vmDir);
    } catch (err) {
      await this.removeDir(p.dir);
      this.refill();
      throw HakoError.wrap(err, 'handing over a warm VM');
    }
    this.handedOut++;
    this.log.info('warm VM handed out', { vm: p.id, pid: p.vm.pid, to: req.vmDir, ready: this.ready.length });
    this.refill();
    return { ok: true, pid: p.vm.pid, vmId: p.id, warmMs: p.warmMs };
  }

  // checkTarget accepts only <sandboxesDir>/<sandbox id>/vm, whose parent is a real directory and which does not exist.
  private async checkTarget(vmDir: string): Promise<void> {
    const sandboxDir = dirname(vmDir);
    if (basename(vmDir) !== 'vm' || dirname(sandboxDir) !== this.opts.sandboxesDir || !SANDBOX_ID.test(basename(sandboxDir))) {
      throw errorf(Code.INVALID_ARGUMENT, `${vmDir} is not a sandbox's vm directory under ${this.opts.sandboxesDir}`);
    }
    const st = await lstat(sandboxDir).catch(() => undefined);
    if (!st?.isDirectory()) throw errorf(Code.NOT_FOUND, `${sandboxDir} is not a directory`);
    if (await lstat(vmDir).then(() => true, () => false)) throw errorf(Code.ALREADY_EXISTS, `${vmDir} exists`);
  }

  private async discard(p: PoolVm): Promise<void> {
    p.agent.close();
    await p.vm.stop({ timeoutMs: 2000 }).catch(() => {});
    await this.removeDir(p.dir);
  }

  // sweep removes pool VM directories nobody holds: a dead daemon's, or ours after stop().
  private async sweep(): Promise<void> {
    const held = new Set(this.ready.map((p) => p.id));
    for (const name of await readdir(this.vmsDir).catch(() => [] as string[])) {
      if (held.has(name)) continue;
      this.log.info('removing a pool VM nobody holds', { vm: name });
      await this.removeDir(join(this.vmsDir, name));
    }
  }

  private async removeDir(dir: string): Promise<void> {
    await removeVmDir(dir, this.log).catch((err: unknown) => this.log.error('could not remove a pool VM directory', { dir, err }));
  }
}
