// Dialing QEMU's agent chardev socket: it appears a moment after QEMU starts, so the
// host retries while it is missing or refusing, until a deadline or cancellation.

import type { Socket } from 'node:net';
import { Code, HakoError } from '../errors/index.js';
import { dialUnix } from '../ttrpc/index.js';

const RETRY_MS = 20;

/** dialWithRetry connects to a unix socket, retrying UNAVAILABLE (ENOENT/ECONNREFUSED) until timeoutMs. */
export async function dialWithRetry(path: string, opts: { signal?: AbortSignal; timeoutMs: number }): Promise<Socket> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: HakoError | undefined;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new HakoError(Code.DEADLINE_EXCEEDED, `agent socket ${path}: no connection within ${opts.timeoutMs} ms${last ? ` (${last.message})` : ''}`, { cause: last });
    }
    try {
      return await dialUnix(path, { signal: opts.signal, timeoutMs: left });
    } catch (err) {
      const e = HakoError.from(err);
      if (e.code !== Code.UNAVAILABLE) throw e;
      last = e;
    }
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        opts.signal?.removeEventListener('abort', onAbort);
        resolve();
      }, Math.min(RETRY_MS, Math.max(1, deadline - Date.now())));
      const onAbort = () => {
        clearTimeout(t);
        reject(new HakoError(Code.CANCELLED, `agent socket ${path}: dial cancelled`));
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
