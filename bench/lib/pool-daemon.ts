// The warm pool daemon (`hako factory serve --pool P`) as a child of the benchmark: start it,
// wait until its pool is full before each timed start, stop it, and sweep one a crashed run left.

import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { poolStatus } from '../../src/factory/pool-client.js';
import { sleep } from './proc.js';

/** PIDFILE records the daemon this benchmark started, so the next run can stop one a crash left. */
export const PIDFILE = '/run/hako-bench/pool-daemon.json';

const MAX_STDERR = 64 << 10;
const STOP_WAIT_MS = 60_000;

// starttime (field 22 of /proc/<pid>/stat) tells a reused pid from the process we started.
async function startTicks(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** PoolWait is how waiting for a full pool ended. */
export type PoolWait = { ok: true; ms: number } | { ok: false; why: string };

/** BenchPoolDaemon is one running `hako factory serve`. */
export class BenchPoolDaemon {
  private stderr = '';
  private exitedWith: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess, readonly size: number, readonly socket: string) {
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-MAX_STDERR);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.exitedWith = code !== null ? `exit ${code}` : `signal ${signal}`;
      resolve();
    }));
  }

  /** start spawns `<cli> factory serve --pool size` and records its pid in PIDFILE. */
  static async start(cli: readonly string[], size: number, socket: string): Promise<BenchPoolDaemon> {
    const child = spawn(cli[0]!, [...cli.slice(1), '--log-level', 'info', 'factory', 'serve', '--pool', String(size)], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    const d = new BenchPoolDaemon(child, size, socket);
    await mkdir(dirname(PIDFILE), { recursive: true });
    await writeFile(PIDFILE, JSON.stringify({ pid: child.pid, startTicks: await startTicks(child.pid!) }) + '\n');
    return d;
  }

  /** pid is the daemon's process id. */
  get pid(): number {
    return this.child.pid!;
  }

  /** stderrTail is the end of what the daemon logged (for error reports). */
  stderrTail(lines = 3): string {
    return this.stderr.trim().split('\n').slice(-lines).join(' | ').slice(0, 600);
  }

  /**
   * waitFull waits until the daemon's status shows all size VMs ready. It fails when the daemon
   * exits, when another daemon answers the socket, or at timeoutMs.
   */
  async waitFull(timeoutMs: number): Promise<PoolWait> {
    const t0 = Date.now();
    let last = 'no answer on the pool socket yet';
    while (Date.now() - t0 < timeoutMs) {
      if (this.exitedWith !== undefined) return { ok: false, why: `\`hako factory serve\` ended (${this.exitedWith}): ${this.stderrTail()}` };
      const st = await poolStatus(this.socket).catch((err: unknown) => {
        last = `status failed: ${(err as Error).message}`;
        return undefined;
      });
      if (st !== undefined) {
        if (st.pid !== this.pid) return { ok: false, why: `another warm pool daemon (pid ${st.pid}) answers ${this.socket}` };
        if (st.ready >= st.size) return { ok: true, ms: Date.now() - t0 };
        last = `${st.ready} of ${st.size} ready, ${st.starting} starting`;
      }
      await sleep(200);
    }
    return { ok: false, why: `the pool was not full after ${Math.round(timeoutMs / 1000)} s (${last})` };
  }

  /** stop sends SIGTERM (the daemon then removes its warm VMs), waits for the exit, and SIGKILLs after a minute. */
  async stop(): Promise<void> {
    if (this.exitedWith === undefined) {
      this.child.kill('SIGTERM');
      const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), STOP_WAIT_MS).unref());
      if ((await Promise.race([this.exited.then(() => 'done' as const), timer])) === 'late') {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    await rm(PIDFILE, { force: true });
  }

  /** stopSync sends SIGTERM without waiting (for process exit handlers). */
  stopSync(): void {
    if (this.exitedWith === undefined) this.child.kill('SIGTERM');
    try {
      rmSync(PIDFILE, { force: true });
    } catch {
      // gone
    }
  }
}

/**
 * sweepLeftoverDaemon stops a `hako factory serve` that a crashed earlier run left (named by
 * PIDFILE, checked by its start time and command line); returns its pid when there was one.
 */
export async function sweepLeftoverDaemon(): Promise<number | undefined> {
  let rec: { pid?: unknown; startTicks?: unknown };
  try {
    rec = JSON.parse(await readFile(PIDFILE, 'utf8')) as typeof rec;
  } catch {
    return undefined;
  }
  await rm(PIDFILE, { force: true });
  const pid = typeof rec.pid === 'number' && Number.isInteger(rec.pid) && rec.pid > 1 ? rec.pid : undefined;
  if (pid === undefined || (await startTicks(pid)) !== rec.startTicks) return undefined;
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  if (!(argv.includes('factory') && argv.includes('serve'))) return undefined;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < STOP_WAIT_MS / 200 && (await startTicks(pid)) === rec.startTicks; i++) await sleep(200);
  if ((await startTicks(pid)) === rec.startTicks) process.kill(pid, 'SIGKILL');
  return pid;
}
