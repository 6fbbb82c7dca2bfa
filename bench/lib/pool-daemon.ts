// The warm pool daemon (`hako factory serve --pool P`) as a child of the benchmark: start it,
// wait until its pool is full before each timed start, stop it, and sweep one a crashed run left.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { poolStatus } from '../../src/factory/pool-client.js';
import { poolVmsDir } from '../../src/factory/pool-daemon.js';
import { poolSocket } from '../../src/factory/provision.js';
import { killLeftoverVm } from '../../src/hypervisor/qemu/index.js';
import { unmountAll } from '../../src/storage/index.js';
import { sleep } from './proc.js';

/** PIDFILE records the daemon this benchmark started, so the next run can stop one a crash left. */
export const PIDFILE = '/run/hako-bench/pool-daemon.json';

/**
 * DAEMON_LOG is the daemon's stderr. A file, not a pipe: a daemon whose benchmark was killed
 * must keep running (and keep its warm VMs in hand) until the next run stops it.
 */
export const DAEMON_LOG = '/run/hako-bench/pool-daemon.log';

const TAIL_BYTES = 16 << 10;
const STOP_WAIT_MS = 60_000;

// starttime (field 22 of /proc/<pid>/stat) tells a reused pid from the process we started.
async function startTicks(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** PoolWait is how waiting for a full pool ended. */
export type PoolWait = { ok: true; ms: number } | { ok: false; why: string };

async function logTail(lines: number): Promise<string> {
  try {
    const fh = await open(DAEMON_LOG, 'r');
    try {
      const size = (await fh.stat()).size;
      const buf = Buffer.alloc(Math.min(size, TAIL_BYTES));
      await fh.read(buf, 0, buf.length, size - buf.length);
      return buf.toString('utf8').trim().split('\n').slice(-lines).join(' | ').slice(0, 600);
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

/** BenchPoolDaemon is one running `hako factory serve`. */
export class BenchPoolDaemon {
  private exitedWith: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess, readonly size: number, readonly socket: string, private readonly stateDir: string) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.exitedWith = code !== null ? `exit ${code}` : `signal ${signal}`;
      resolve();
    }));
  }

  /** start spawns `<cli> factory serve --pool size` (stderr to DAEMON_LOG) and records its pid in PIDFILE. */
  static async start(cli: readonly string[], size: number, stateDir: string, socket: string): Promise<BenchPoolDaemon> {
    await mkdir(dirname(PIDFILE), { recursive: true });
    const log = openSync(DAEMON_LOG, 'w', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(cli[0]!, [...cli.slice(1), '--log-level', 'info', 'factory', 'serve', '--pool', String(size)], { stdio: ['ignore', 'ignore', log] });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', () => resolve());
        child.once('error', reject);
      });
    } finally {
      closeSync(log);
    }
    const d = new BenchPoolDaemon(child, size, socket, stateDir);
    await writeFile(PIDFILE, JSON.stringify({ pid: child.pid, startTicks: await startTicks(child.pid!), stateDir }) + '\n');
    return d;
  }

  /** pid is the daemon's process id. */
  get pid(): number {
    return this.child.pid!;
  }


  /**
   * waitFull waits until the daemon's status shows all size VMs ready. It fails when the daemon
   * exits, when another daemon answers the socket, or at timeoutMs.
   */
  async waitFull(timeoutMs: number): Promise<PoolWait> {
    const t0 = Date.now();
    let last = 'no answer on the pool socket yet';
    while (Date.now() - t0 < timeoutMs) {
      if (this.exitedWith !== undefined) return { ok: false, why: `\`hako factory serve\` ended (${this.exitedWith}): ${await logTail(3)}` };
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
    // A daemon that died (or was killed) without stopping leaves its warm VMs running.
    await removeOrphanPoolVms(this.stateDir);
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
 * PIDFILE, checked by its start time and command line) and ends the warm VMs a dead one left;
 * returns what it found (undefined when no earlier run left a PIDFILE).
 */
export async function sweepLeftoverDaemon(): Promise<{ pid?: number; orphanVms: string[] } | undefined> {
  let rec: { pid?: unknown; startTicks?: unknown; stateDir?: unknown };
  try {
    rec = JSON.parse(await readFile(PIDFILE, 'utf8')) as typeof rec;
  } catch {
    return undefined;
  }
  const pid = typeof rec.pid === 'number' && Number.isInteger(rec.pid) && rec.pid > 1 ? rec.pid : undefined;
  const alive = async (): Promise<boolean> => pid !== undefined && (await startTicks(pid)) === rec.startTicks;
  const argv = pid !== undefined ? (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0') : [];
  let stopped: number | undefined;
  if ((await alive()) && argv.includes('factory') && argv.includes('serve')) {
    stopped = pid;
    try {
      process.kill(pid!, 'SIGTERM');
      for (let i = 0; i < STOP_WAIT_MS / 200 && (await alive()); i++) await sleep(200);
      if (await alive()) process.kill(pid!, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const orphanVms = typeof rec.stateDir === 'string' && rec.stateDir.startsWith('/') ? await removeOrphanPoolVms(rec.stateDir) : [];
  await rm(PIDFILE, { force: true });
  return { ...(stopped !== undefined ? { pid: stopped } : {}), orphanVms };
}

/**
 * removeOrphanPoolVms ends the warm VMs in `<stateDir>/pool` when no daemon answers the pool
 * socket (a running daemon owns them; the next one to start would sweep them too), as the
 * daemon's own sweep does: kill the QEMU, unmount, remove the directory. Returns their names.
 */
export async function removeOrphanPoolVms(stateDir: string): Promise<string[]> {
  if ((await poolStatus(poolSocket(stateDir)).catch(() => null)) !== undefined) return [];
  const dir = poolVmsDir(stateDir);
  const out: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const vmDir = join(dir, name);
    try {
      await killLeftoverVm(vmDir);
      await unmountAll(vmDir);
      await rm(vmDir, { recursive: true, force: true });
      out.push(name);
    } catch {
      // left for the next daemon's sweep
    }
  }
  return out;
}
