// A fake sandbox for the shim's unit tests: processes are PassThrough streams whose
// exit a test triggers by hand, so event order and state rules can be checked without a VM.

import { PassThrough } from 'node:stream';
import { Code, HakoError } from '../../errors/index.js';
import type {
  ContainerStatus, CreateContainerOptions, ExitInfo, SandboxBackend, SandboxContainer, SandboxProcess, ShimSandbox,
} from '../sandbox-port.js';

let nextPid = 100;

/** FakeProcess is a process whose streams and exit the test drives. */
export class FakeProcess implements SandboxProcess {
  pid = 0;
  readonly stdout = new PassThrough();
  readonly stderr: PassThrough | null;
  readonly stdin: PassThrough | null;
  readonly stdinData: Buffer[] = [];
  resized: Array<[number, number]> = [];
  exited: ExitInfo | undefined;
  private waiters: Array<{ resolve: (e: ExitInfo) => void; reject: (e: unknown) => void }> = [];

  constructor(readonly execId: string, readonly terminal: boolean, stdin: boolean, public exitOnStart?: number) {
    this.stderr = terminal ? null : new PassThrough();
    this.stdin = stdin ? new PassThrough() : null;
    this.stdin?.on('data', (c: Buffer) => this.stdinData.push(c));
  }

  async start(): Promise<number> {
    this.pid = nextPid++;
    if (this.exitOnStart !== undefined) this.exit(this.exitOnStart);
    return this.pid;
  }

  resize(rows: number, cols: number): void {
    this.resized.push([rows, cols]);
  }

  wait(): Promise<ExitInfo> {
    if (this.exited) return Promise.resolve(this.exited);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** exit ends the output streams and settles wait. */
  exit(status: number): void {
    if (this.exited) return;
    this.stdout.end();
    this.stderr?.end();
    this.exited = { exitStatus: status, exitedAt: new Date() };
    for (const w of this.waiters.splice(0)) w.resolve(this.exited);
  }

  /** lose fails wait, as when the VM dies. */
  lose(): void {
    this.stdout.end();
    this.stderr?.end();
    for (const w of this.waiters.splice(0)) w.reject(new HakoError(Code.UNAVAILABLE, 'vm gone'));
  }
}

/** FakeContainer records what the shim asked of it. */
export class FakeContainer implements SandboxContainer {
  status: ContainerStatus = 'created';
  pid = 0;
  readonly init: FakeProcess;
  readonly execs = new Map<string, FakeProcess>();
  readonly kills: Array<{ signal: number; execId?: string; all?: boolean }> = [];
  updates: string[] = [];
  deleted = false;

  constructor(readonly id: string, readonly opts: CreateContainerOptions, readonly sandbox: FakeSandbox) {
    this.init = new FakeProcess('', opts.terminal, opts.stdin, sandbox.exitOnStart);
  }

  async start(): Promise<number> {
    const pid = await this.init.start();
    this.pid = pid;
    this.status = this.init.exited ? 'stopped' : 'running';
    void this.init.wait().then(() => { this.status = 'stopped'; }, () => {});
    return pid;
  }

  async exec(o: { execId: string; process: unknown; stdin: boolean; terminal: boolean }): Promise<SandboxProcess> {
    if (this.execs.has(o.execId)) throw new HakoError(Code.ALREADY_EXISTS, 'exec exists');
    const p = new FakeProcess(o.execId, o.terminal, o.stdin);
    this.execs.set(o.execId, p);
    return p;
  }

  async kill(signal: number, o: { execId?: string; all?: boolean } = {}): Promise<void> {
    this.kills.push({ signal, ...o });
    const p = o.execId ? this.execs.get(o.execId) : this.init;
    if (!p) throw new HakoError(Code.NOT_FOUND, 'no such process');
    if (signal === 9 || signal === 15) p.exit(128 + signal);
  }

  async pause(): Promise<void> { this.status = 'paused'; }
  async resume(): Promise<void> { this.status = 'running'; }
  async update(json: string): Promise<void> { this.updates.push(json); }
  async stats(): Promise<object> { return { cpuUsageUsec: 1234n, memoryUsage: 4096n, pidsCurrent: 2n }; }
  async pids(): Promise<number[]> { return [this.init.pid, ...[...this.execs.values()].map((p) => p.pid)].filter((p) => p > 0); }
  async delete(): Promise<void> { this.deleted = true; }
}

/** FakeSandbox collects containers and lets a test kill the "VM". */
export class FakeSandbox implements ShimSandbox {
  readonly containers = new Map<string, FakeContainer>();
  stopped = false;
  exitOnStart: number | undefined;
  private exitCbs: Array<(r: HakoError) => void> = [];

  constructor(readonly id: string, readonly hostPid?: number) {}

  onExit(cb: (r: HakoError) => void): void {
    this.exitCbs.push(cb);
  }

  async createContainer(opts: CreateContainerOptions): Promise<SandboxContainer> {
    const c = new FakeContainer(opts.id, opts, this);
    this.containers.set(opts.id, c);
    return c;
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  /** die simulates QEMU being killed. */
  die(): void {
    for (const c of this.containers.values()) {
      c.init.lose();
      for (const e of c.execs.values()) e.lose();
    }
    for (const cb of this.exitCbs) cb(new HakoError(Code.UNAVAILABLE, 'qemu exited'));
  }
}

/** fakeBackend returns a backend that hands out FakeSandboxes and remembers them. */
export function fakeBackend(o: { hostPid?: number } = {}): SandboxBackend & { sandboxes: FakeSandbox[]; cleaned: string[]; netns: unknown[] } {
  const sandboxes: FakeSandbox[] = [];
  const cleaned: string[] = [];
  const netns: unknown[] = [];
  return {
    sandboxes,
    cleaned,
    netns,
    async create({ id, netns: n }) {
      netns.push(n);
      const s = new FakeSandbox(id, o.hostPid);
      sandboxes.push(s);
      return s;
    },
    async cleanup(id) {
      cleaned.push(id);
    },
  };
}
