// A small ttRPC test service (hako.test.v1.Peer) for peers and fuzzers to call: echo,
// namespace, delayed answers and a stats call that reports the server's own health.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Server } from '../../../src/ttrpc/index.js';

/** PEER_SERVICE is the test service's full name. */
export const PEER_SERVICE = 'hako.test.v1.Peer';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * registerPeerService adds the methods: Echo (payload back), Namespace (the containerd
 * namespace from metadata), Sleep (payload is milliseconds as text, bounded to 10 s,
 * answers "slept N"), and Stats (JSON {connections, heapUsed, rss, arrayBuffers}).
 */
export function registerPeerService(server: Server, gc?: () => void): void {
  server.register(PEER_SERVICE, 'Echo', async (p) => p);
  server.register(PEER_SERVICE, 'Namespace', async (_p, ctx) => enc(ctx.namespace ?? ''));
  server.register(PEER_SERVICE, 'Sleep', async (p, ctx) => {
    const ms = Math.min(Math.max(Number(dec(p)) || 0, 0), 10_000);
    await sleep(ms, undefined, { signal: ctx.signal });
    return enc(`slept ${ms}`);
  });
  server.register(PEER_SERVICE, 'Stats', async () => {
    gc?.();
    const m = process.memoryUsage();
    // This call's own connection is open while it runs.
    return enc(JSON.stringify({ connections: server.connectionCount, heapUsed: m.heapUsed, rss: m.rss, arrayBuffers: m.arrayBuffers }));
  });
}
