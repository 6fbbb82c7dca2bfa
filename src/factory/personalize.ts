// What a sandbox's guest is told before any container runs: its sandbox id and hostname with the
// share mounted (CreateSandbox), and for a restored VM fresh host entropy and the host's clock.

import { randomBytes } from 'node:crypto';
import type { AgentClient } from '../agent-client/index.js';
import { SHARE_TAG } from '../storage/index.js';

/** RESEED_BYTES is how much host entropy a restored guest gets credited to its pool. */
export const RESEED_BYTES = 64;

/**
 * personalizeGuest sends CreateSandbox and, when restored (the guest still has the template's
 * entropy and clock), ReseedRandomDev and SetGuestDateTime, all at once. The kernel has already
 * reseeded on the new VM generation id; the host's bytes make the RNG unpredictable as well.
 * The warm-up runs the same calls, so a clone finds them warm.
 */
export async function personalizeGuest(agent: AgentClient, req: { sandboxId: string; hostname: string; restored: boolean }, signal?: AbortSignal): Promise<void> {
  const call = { signal };
  await Promise.all([
    ...(req.restored ? [agent.reseedRandomDev(randomBytes(RESEED_BYTES), call), agent.setGuestDateTime(new Date(), call)] : []),
    agent.createSandbox({ sandboxId: req.sandboxId, shareTag: SHARE_TAG, hostname: req.hostname.slice(0, 63) }, call),
  ]);
}
