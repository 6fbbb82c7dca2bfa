// A container on ctr's CNI network for the network suite: `ctr run --rm --cni … sleep` kept in the
// foreground as a child (ctr runs CNI DEL only when it returns), its address, background execs, its end.

import { join } from 'node:path';
import { ctr, IMAGE, removeContainer } from './ctr.js';
import { sweepCniLeftovers } from './cni-leftovers.js';
import { describeFailure, runCmd, sleep, type CmdResult } from './proc.js';
import { repoRoot } from './root.js';
import { runtime, type Runtime, type RuntimeName } from './runtimes.js';
import { withDeadline } from './tcp-probe.js';

/** runscHostNetWrapper is bench/runsc-net-host (runsc with --network=host). */
export function runscHostNetWrapper(): string {
  return join(repoRoot(), 'bench', 'runsc-net-host');
}

/**
 * netRuntime is how `ctr run --cni` selects name. runsc's own network stack cannot be used here:
 * this runsc (2022-12) decides that it runs in the root network namespace when
 * /proc/sys/net/core/rmem_default exists, and kernel 6.18 has that file in every namespace, so
 * it refuses every namespace ("cannot run with network enabled in root network namespace").
 * runsc runs with --network=host instead: the sandbox's sockets are the host kernel's, in the
 * CNI namespace.
 */
export function netRuntime(name: RuntimeName): Runtime {
  if (name !== 'runsc') return runtime(name);
  return {
    name, ctrArgs: ['--runtime', 'io.containerd.runc.v2', '--runc-binary', runscHostNetWrapper()], timeoutMs: 60_000,
    how: 'ctr run --cni --runtime io.containerd.runc.v2 --runc-binary bench/runsc-net-host (exec /usr/bin/runsc --network=host "$@": gVisor passes sockets through to the host kernel in the CNI namespace; its netstack refuses every namespace on this kernel)',
  };
}

/** Exec is a command running in the container in the background. */
export interface Exec {
  script: string;
  done: Promise<CmdResult>;
  kill(): void;
}

/** NetContainer is one running container with an eth0 on the CNI network. */
export class NetContainer {
  private n = 0;
  private stopped = false;

  private constructor(
    readonly id: string,
    private readonly rt: Runtime,
    private readonly run: Promise<CmdResult>,
    private readonly abort: AbortController,
    /** address is the container's IPv4 address on the bridge. */
    readonly address: string,
    /** gateway is the host's address on the bridge (the container's default route). */
    readonly gateway: string,
    /** addressWaitMs is how long after the task ran its eth0 address took to show (at least one exec's latency). */
    readonly addressWaitMs: number,
  ) {}

  /** start runs `ctr run --rm --cni … IMAGE id sleep 3600` in the background and waits for its address; lifetimeMs bounds the child. */
  static async start(rt: Runtime, id: string, lifetimeMs: number): Promise<NetContainer> {
    const abort = new AbortController();
    const argv = ['ctr', 'run', '--rm', '--cni', ...rt.ctrArgs, IMAGE, id, 'sleep', '3600'];
    const run = runCmd(argv, { timeoutMs: lifetimeMs, signal: abort.signal });
    let exited: CmdResult | undefined;
    void run.then((r) => { exited = r; }, () => undefined);
    const fail = async (why: string): Promise<never> => {
      await stopRun(id, run, abort);
      throw new Error(why);
    };
    const until = Date.now() + rt.timeoutMs;
    for (;;) {
      if (exited !== undefined) return fail(describeFailure(argv, exited));
      const ls = await ctr(['task', 'ls'], 10_000).catch(() => undefined);
      if (ls?.stdout.split('\n').some((l) => { const f = l.trim().split(/\s+/); return f[0] === id && f[2] === 'RUNNING'; })) break;
      if (Date.now() > until) return fail(`${id}: not RUNNING within ${rt.timeoutMs} ms`);
      await sleep(200);
    }
    const t0 = Date.now();
    let last = '';
    for (let i = 0; Date.now() - t0 < 60_000; i++) {
      const r = await ctr(['task', 'exec', '--exec-id', `addr${i}`, id, 'sh', '-c', 'ip -4 -o addr show eth0; ip -4 route show default'], rt.timeoutMs);
      const addr = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1];
      const gw = /^default via (\d+\.\d+\.\d+\.\d+)/m.exec(r.stdout)?.[1];
      if (addr !== undefined && gw !== undefined) return new NetContainer(id, rt, run, abort, addr, gw, Date.now() - t0);
      last = `${r.stdout}${r.stderr}`.trim();
      await sleep(300);
    }
    return fail(`${id}: no IPv4 address and default route on eth0 within 60 s (last: ${last.slice(0, 200)})`);
  }

  /** exec starts sh -c script in the container in the background, killed at timeoutMs. */
  exec(script: string, timeoutMs: number): Exec {
    const ac = new AbortController();
    const done = ctrExec(this.id, `e${this.n++}`, script, timeoutMs, ac.signal);
    return { script, done, kill: () => ac.abort() };
  }

  /** stop kills the task, waits for `ctr run --rm` to return (its CNI DEL) and removes what is left. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await stopRun(this.id, this.run, this.abort, this.rt.timeoutMs);
  }
}

function ctrExec(id: string, execId: string, script: string, timeoutMs: number, signal: AbortSignal): Promise<CmdResult> {
  return runCmd(['ctr', 'task', 'exec', '--exec-id', execId, id, 'sh', '-c', script], { timeoutMs, signal });
}

/**
 * stopRun ends a foreground `ctr run --rm --cni`: SIGKILL to the task, then ctr returns after its
 * CNI DEL and the container's removal. A ctr that does not return in time is killed and the
 * container removed the harness's way; what ctr's CNI DEL leaves (see cni-leftovers) is swept.
 */
async function stopRun(id: string, run: Promise<CmdResult>, abort: AbortController, timeoutMs = 60_000): Promise<void> {
  await ctr(['task', 'kill', '-s', 'SIGKILL', id], 20_000).catch(() => undefined);
  try {
    await withDeadline(run, timeoutMs, `ctr run --rm ${id} did not return`);
  } catch {
    abort.abort();
    await run.catch(() => undefined);
  }
  await removeContainer(id);
  await sweepCniLeftovers((ctrId) => ctrId === id);
}
