// The caller's side of the warm pool: ask `hako factory serve` for a VM, adopt the QEMU it hands
// over, and reach its agent. No daemon, an empty pool or any failure means "no VM", at once.

import { connect } from 'node:net';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Vm } from '../hypervisor/index.js';
import { QemuHypervisor } from '../hypervisor/qemu/index.js';
import type { AgentClient } from '../agent-client/index.js';
import { Share } from '../storage/index.js';
import { connectAgent } from './agent-wait.js';
import { encodeLine, MAX_POOL_LINE, parseStatus, parseTakeReply, type PoolRequest, type PoolStatus } from './pool-protocol.js';
import { removeVmDir, vmDirPaths, type VmRecipe } from './recipe.js';

/** POOL_REPLY_TIMEOUT_MS bounds a pool request: the daemon answers from memory and one rename. */
export const POOL_REPLY_TIMEOUT_MS = 3000;

/**
 * poolRequest sends one request and returns the reply line, or undefined when no daemon
 * listens (no socket, refused). Other failures reject.
 */
export function poolRequest(socket: string, req: PoolRequest, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = '';
    let done = false;
    const finish = (err: unknown, line?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      s.destroy();
      if (err !== undefined) reject(err);
      else resolve(line);
    };
    const timer = setTimeout(() => finish(errorf(Code.DEADLINE_EXCEEDED, `the warm pool did not answer within ${opts.timeoutMs ?? POOL_REPLY_TIMEOUT_MS} ms`)), opts.timeoutMs ?? POOL_REPLY_TIMEOUT_MS);
    const onAbort = (): void => finish(errorf(Code.CANCELLED, 'pool request cancelled'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    s.on('connect', () => s.write(encodeLine(req)));
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') finish(undefined, undefined);
      else finish(HakoError.wrap(err, 'asking the warm pool'));
    });
    s.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) finish(undefined, buf.slice(0, nl));
      else if (buf.length > MAX_POOL_LINE) finish(errorf(Code.RESOURCE_EXHAUSTED, 'the warm pool sent an oversized reply'));
    });
    s.on('end', () => finish(errorf(Code.UNAVAILABLE, 'the warm pool closed the connection without an answer')));
  });
}

/** poolStatus asks the daemon how the pool stands; undefined when no daemon runs. */
export async function poolStatus(socket: string): Promise<PoolStatus | undefined> {
  const line = await poolRequest(socket, { op: 'status' });
  return line === undefined ? undefined : parseStatus(line);
}

/** TakeOptions configure takeFromPool. */
export interface TakeOptions {
  socket: string;
  key: string;
  vmDir: string;
  id: string;
  recipe: VmRecipe;
  log: Logger;
  signal?: AbortSignal;
  mark: (name: 'vm-adopted' | 'qmp-ready', fields?: Record<string, string | number>) => void;
}

/**
 * takeFromPool asks the daemon for a warm VM of template key moved to vmDir, adopts its QEMU at
 * normal priority and waits for its agent. Undefined (and vmDir gone) when it gets none.
 */
export async function takeFromPool(opts: TakeOptions): Promise<{ vm: Vm; agent: AgentClient; share: Share } | undefined> {
  const { log } = opts;
  let line: string | undefined;
  try {
    line = await poolRequest(opts.socket, { op: 'take', key: opts.key, vmDir: opts.vmDir }, { signal: opts.signal });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    log.warn('the warm pool did not hand out a VM; cloning the template instead', { err });
    await discard(opts.vmDir, log);
    return undefined;
  }
  if (line === undefined) return undefined;
  const reply = parseTakeReply(line);
  if (!reply.ok) {
    log.debug('no VM from the warm pool', { reason: reply.reason, detail: reply.detail });
    return undefined;
  }
  let vm: Vm | undefined;
  try {
    const hv = new QemuHypervisor({ binary: opts.recipe.config.hypervisor.path, log });
    const paths = vmDirPaths(opts.vmDir);
    vm = await hv.adopt(opts.id, opts.vmDir, { consoleLog: paths.console, nice: 0, signal: opts.signal });
    if (vm.pid !== reply.pid) throw errorf(Code.INTERNAL, `the pool said pid ${reply.pid}, the VM's pidfile says ${vm.pid}`);
    opts.mark('vm-adopted', { qemuPid: vm.pid, poolVm: reply.vmId });
    const agent = await connectAgent(paths.agentSocket, vm, {
      deadline: Date.now() + 10_000, callTimeoutMs: opts.recipe.config.agent.timeoutMs, what: '10 s of a pool hand-over', log, signal: opts.signal, running: true,
    });
    return { vm, agent, share: Share.open(opts.vmDir, log) };
  } catch (err) {
    await vm?.stop({ signal: AbortSignal.abort() }).catch(() => {});
    await discard(opts.vmDir, log);
    if (opts.signal?.aborted) throw err;
    log.warn('a VM from the warm pool did not work; cloning the template instead', { err });
    return undefined;
  }
}

// discard ends a VM that did not work out and removes its directory (never through a mount).
async function discard(vmDir: string, log: Logger): Promise<void> {
  await removeVmDir(vmDir, log).catch((err: unknown) => log.error('a failed pool VM could not be removed; leaving its directory for cleanup', { vmDir, err }));
}
