// The sandbox's connection to hako-agent: typed calls of hako.agent.v1.Agent over ttRPC on the
// VM's virtio-serial socket, and a readiness wait that retries until the agent answers.

import type { Socket } from 'node:net';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { Agent, type GuestDetails } from '../protocols/generated/hako/agent_pb.js';
import { Client, createClient, dialUnix, type ServiceClient } from '../ttrpc/index.js';

/** AgentApi is the typed client of hako.agent.v1.Agent. */
export type AgentApi = ServiceClient<typeof Agent>;

/** AgentLink is a live connection to the guest agent. */
export interface AgentLink {
  readonly api: AgentApi;
  /** details is the agent's GetGuestDetails answer at connect time. */
  readonly details: GuestDetails;
  close(): void;
  /** onClose calls fn once when the connection ends for any reason. */
  onClose(fn: (err: HakoError) => void): void;
}

/** ConnectOptions bounds connectAgent. */
export interface ConnectOptions {
  /** deadline is the epoch ms by which the agent must answer. */
  deadline: number;
  signal?: AbortSignal;
  log: Logger;
  /** vmExited settles when the VM process ends; waiting stops at once. */
  vmExited: Promise<unknown>;
}

// Each attempt is short: until the guest opens its port, the guest kernel drops what the host
// writes, so an early Check may simply vanish. A fresh connection per attempt starts clean.
const ATTEMPT_MS = 1000;

/**
 * connectAgent connects to the agent socket of a booting VM and resolves once the agent has
 * answered GetGuestDetails. It gives up at the deadline (DEADLINE_EXCEEDED), when the VM exits
 * (UNAVAILABLE) or when signal aborts (CANCELLED).
 */
export async function connectAgent(socketPath: string, opts: ConnectOptions): Promise<AgentLink> {
  let vmGone = false;
  void opts.vmExited.then(() => (vmGone = true));
  let lastErr: unknown;
  for (let attempt = 1; ; attempt++) {
    if (vmGone) throw errorf(Code.UNAVAILABLE, 'the VM exited before its agent answered (see console.log)');
    if (opts.signal?.aborted) throw errorf(Code.CANCELLED, 'cancelled while waiting for the guest agent');
    const left = opts.deadline - Date.now();
    if (left <= 0) {
      const why = lastErr === undefined ? '' : ` (last error: ${HakoError.from(lastErr).message})`;
      throw errorf(Code.DEADLINE_EXCEEDED, `the guest agent did not answer before the boot deadline${why}`);
    }
    let sock: Socket | undefined;
    let client: Client | undefined;
    try {
      sock = await dialUnix(socketPath, { signal: opts.signal, timeoutMs: Math.min(left, ATTEMPT_MS) });
      client = new Client(sock, { log: opts.log });
      const api = createClient(Agent, client);
      const details = await api.getGuestDetails({}, { signal: opts.signal, timeoutMs: Math.min(left, ATTEMPT_MS) });
      const c = client;
      return { api, details, close: () => c.close(), onClose: (fn) => c.onClose(fn) };
    } catch (err) {
      client?.close();
      sock?.destroy();
      lastErr = err;
      if (attempt % 10 === 0) opts.log.debug('still waiting for the guest agent', { attempt, err });
      // A refused or missing socket means QEMU is not listening yet: retry soon.
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
