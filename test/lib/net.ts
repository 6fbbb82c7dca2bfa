// Network helpers of the networking tests: read what a TCP peer sends until it closes, and
// retry a step until a deadline (a listener in a fresh VM takes a moment to come up).

import { connect } from 'node:net';

/** tcpRead connects, writes send (if any), and resolves with everything read until the peer closes. */
export function tcpRead(host: string, port: number, ms = 5000, send?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let got = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from ${host}:${port} in ${ms} ms`));
    }, ms);
    s.on('connect', () => {
      if (send !== undefined) s.write(send);
    });
    s.on('data', (d) => (got += d.toString()));
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve(got);
    });
  });
}

/** retry runs fn until it resolves, every 300 ms, and rethrows its last error after ms. */
export async function retry<T>(fn: () => Promise<T>, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}
