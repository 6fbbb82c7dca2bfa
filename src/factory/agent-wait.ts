// Waiting for a VM's guest agent: dial its socket and call Check until it answers, giving up at
// a deadline (DEADLINE_EXCEEDED), when the VM exits (UNAVAILABLE) or when the caller cancels.

import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Vm } from '../hypervisor/index.js';
import { AgentClient } from '../agent-client/index.js';

/** RUNNING_FIRST_ATTEMPT_MS is the first Check's bound for a running agent (it answers in ~5-10 ms here). */
export const RUNNING_FIRST_ATTEMPT_MS = 50;

/** AgentWaitOptions bound connectAgent. */
export interface AgentWaitOptions {
  deadline: number;
  /** callTimeoutMs is the agent client's default call timeout (agent.timeout_ms). */
  callTimeoutMs: number;
  /** what names the deadline in errors (e.g. `agent.boot_timeout_ms (60000 ms)`). */
  what: string;
  log: Logger;
  signal?: AbortSignal;
  /** dialed runs once the socket is connected, before the first Check (a restore loads the VM then). */
  dialed?: (agent: AgentClient) => Promise<void>;
  /**
   * running says the agent already runs (a restored or handed-over VM): the first Checks are
   * then short, since one sent while the guest reopens its port can be lost.
   */
  running?: boolean;
}

/**
 * connectAgent dials the VM's agent socket and waits until the agent answers. QEMU accepts
 * the connection before the guest opens its port, so an early Check just waits in QEMU.
 */
export async function connectAgent(path: string, vm: Vm, opts: AgentWaitOptions): Promise<AgentClient> {
  const { signal, log } = opts;
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let vmGone = false;
  void vm.exited.then(() => {
    vmGone = true;
    ac.abort(errorf(Code.UNAVAILABLE, 'the VM exited'));
  });
  const left = (): number => Math.max(1, opts.deadline - Date.now());
  let agent: AgentClient | undefined;
  try {
    agent = await AgentClient.connect(path, { log, callTimeoutMs: opts.callTimeoutMs, signal: ac.signal, timeoutMs: left() });
    await opts.dialed?.(agent);
    // One pending Check at a time answers as soon as the agent serves (shorter attempts measured no faster).
    const { attempts } = await agent.waitReady({ signal: ac.signal, timeoutMs: left(), ...(opts.running === true ? { firstAttemptMs: RUNNING_FIRST_ATTEMPT_MS } : {}) });
    log.debug('agent answered', { attempts });
    return agent;
  } catch (err) {
    agent?.close();
    if (vmGone) {
      const exit = await vm.exited;
      throw errorf(Code.UNAVAILABLE, `the VM exited before its agent answered: ${exit.detail} (see ${path.replace(/agent\.sock$/, 'console.log')})`, err);
    }
    const e = HakoError.from(err);
    if (e.code === Code.DEADLINE_EXCEEDED) throw errorf(Code.DEADLINE_EXCEEDED, `the guest agent did not answer within ${opts.what}: ${e.message}`, e);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
