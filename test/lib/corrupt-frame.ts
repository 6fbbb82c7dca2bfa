// One scenario both agent port modes must survive: a corrupt ttRPC frame on a fresh connection,
// after which the guest resets its session and serves the next request on the same connection.

import { AgentClient, dialWithRetry } from '../../src/agent-client/index.js';

/**
 * corruptThenClient dials socketPath, sends a frame header of type 9 (never valid, so the guest
 * drops its ttRPC state), waits a second and returns a client on that same connection.
 */
export async function corruptThenClient(socketPath: string): Promise<AgentClient> {
  const sock = await dialWithRetry(socketPath, { timeoutMs: 10_000 });
  sock.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 1, 9, 0, 1, 2, 3, 4]));
  await new Promise((r) => setTimeout(r, 1_000));
  return new AgentClient(sock);
}
