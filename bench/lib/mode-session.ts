// One hako mode set up for one hako checkout: the drop-in written, the template built (`hako
// factory init`, timed) and, for the pool, a daemon running; leave() undoes it all, also on signals.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { poolSocket } from '../../src/factory/provision.js';
import { laterDropIns, removeDropIn, removeDropInSync, writeDropIn } from './drop-in.js';
import type { HakoMode } from './hako-modes.js';
import { BenchPoolDaemon } from './pool-daemon.js';
import { describeFailure, runCmd } from './proc.js';
import { summarize, type Summary } from './stats.js';

/** Checkout is a hako installation whose CLI sets a mode up for the runtime it measures. */
export interface Checkout {
  root: string;
  /** serves says which rows this checkout's code produces (the shim's through ctr, or `hako run` and rpc). */
  serves: string;
}

/** ModeSetup records how a mode was set up for one checkout (kept in the JSON, shown in the report). */
export interface ModeSetup {
  mode: HakoMode;
  checkout: string;
  serves: string;
  dropIn: string;
  /** template is the `hako factory init` before timing: whether it had to build, and how long it took. */
  template?: { built: boolean; ms: number; output: string };
  pool?: { size: number; daemonPid: number; firstFullMs?: number; refillWaitMs?: Summary; waitFailures: number };
  notes: string[];
  /** problem is why this mode could not be set up (its rows are then not measured). */
  problem?: string;
}

/** SessionOptions sizes the pool and bounds the waits. */
export interface SessionOptions {
  poolSize: number;
  poolFullTimeoutMs: number;
  initTimeoutMs: number;
  progress: (line: string) => void;
}

let active: ModeSession | undefined;

/** cliOf returns the argv that runs checkout root's hako CLI. */
export function cliOf(root: string): string[] {
  return [process.execPath, join(root, 'dist', 'src', 'cli', 'main.js')];
}

/**
 * parseFactoryInit reads `hako factory init`'s last line: "template K is ready (built …): DIR"
 * when one existed, "template K built in 13.2s: DIR" when it had to build one.
 */
export function parseFactoryInit(stdout: string): { built: boolean; line: string } {
  const line = stdout.trim().split('\n').pop() ?? '';
  return { built: /^template \S+ built in /.test(line), line };
}

/** ModeSession is a mode in force; at most one exists at a time. */
export class ModeSession {
  private daemon: BenchPoolDaemon | undefined;
  private readonly waits: number[] = [];
  private left = false;

  private constructor(readonly setup: ModeSetup, private readonly opts: SessionOptions) {}

  /** enter puts mode in force for checkout; a failure is recorded in setup.problem, never thrown. */
  static async enter(mode: HakoMode, checkout: Checkout, opts: SessionOptions): Promise<ModeSession> {
    if (active !== undefined) await active.leave();
    const s = new ModeSession({ mode, checkout: checkout.root, serves: checkout.serves, dropIn: '', notes: [] }, opts);
    active = s;
    try {
      await s.prepare(checkout);
    } catch (err) {
      s.setup.problem = `setting up hako ${mode}: ${(err as Error).message}`;
    }
    if (s.setup.problem !== undefined) opts.progress(`bench: ${s.setup.problem}`);
    return s;
  }

  private async prepare(checkout: Checkout): Promise<void> {
    const { mode } = this.setup;
    const cli = cliOf(checkout.root);
    if (!existsSync(cli[1]!)) throw new Error(`${cli[1]} is not built`);
    this.setup.dropIn = await writeDropIn(mode);
    for (const f of await laterDropIns()) this.setup.notes.push(`${f} sorts after the benchmark's drop-in and may override its [factory] keys`);
    if (mode === 'cold') return;
    this.opts.progress(`bench: hako ${mode}: hako factory init (${checkout.root})`);
    const init = await runCmd([...cli, 'factory', 'init'], { timeoutMs: this.opts.initTimeoutMs });
    if (init.code !== 0) throw new Error(describeFailure(['hako', 'factory', 'init'], init));
    const { built, line } = parseFactoryInit(init.stdout);
    this.setup.template = { built, ms: Math.round(init.ms), output: line };
    this.opts.progress(`  ${line} (${(init.ms / 1000).toFixed(1)} s)`);
    if (mode !== 'pool') return;
    const { config } = await loadConfig();
    this.daemon = await BenchPoolDaemon.start(cli, this.opts.poolSize, config.runtime.stateDir, poolSocket(config.runtime.stateDir));
    this.opts.progress(`bench: hako pool: hako factory serve --pool ${this.opts.poolSize} (pid ${this.daemon.pid}), waiting for a full pool`);
    this.setup.pool = { size: this.opts.poolSize, daemonPid: this.daemon.pid, waitFailures: 0 };
    const full = await this.daemon.waitFull(this.opts.poolFullTimeoutMs);
    if (!full.ok) throw new Error(full.why);
    this.setup.pool.firstFullMs = full.ms;
  }

  /** daemonPid is the pool daemon's pid (pool mode), for counting its memory apart. */
  get daemonPid(): number | undefined {
    return this.daemon?.pid;
  }

  /**
   * waitReady runs before every timed start (and before timed execs, RPC calls and PSS reads): in
   * pool mode it waits until the pool is full again, so a start is served by a warm VM and the
   * refill that follows a take is not running meanwhile. A wait that fails is counted and
   * reported, not thrown. Other modes return at once.
   */
  readonly waitReady = async (): Promise<void> => {
    if (this.daemon === undefined || this.left) return;
    const w = await this.daemon.waitFull(this.opts.poolFullTimeoutMs);
    if (w.ok) this.waits.push(w.ms);
    else {
      this.setup.pool!.waitFailures++;
      this.opts.progress(`  warning: ${w.why}; the next start may not get a warm VM`);
    }
  };

  /** leave stops the daemon (waiting for it) and removes the drop-in. Idempotent. */
  async leave(): Promise<void> {
    if (this.left) return;
    this.left = true;
    if (this.setup.pool !== undefined && this.waits.length > 0) this.setup.pool.refillWaitMs = summarize(this.waits);
    try {
      await this.daemon?.stop();
    } finally {
      await removeDropIn();
      if (active === this) active = undefined;
    }
  }

  /** leaveSync is leave for exit handlers: SIGTERM to the daemon, the drop-in removed, nothing awaited. */
  leaveSync(): void {
    this.left = true;
    this.daemon?.stopSync();
    removeDropInSync();
  }
}

/** leaveActiveSession ends whatever mode is in force (signal handlers). */
export async function leaveActiveSession(): Promise<void> {
  await active?.leave();
}

/** installExitGuard makes sure a mode in force at process exit leaves no drop-in and no daemon behind. */
export function installExitGuard(): void {
  process.once('exit', () => {
    active?.leaveSync();
    removeDropInSync();
  });
}
