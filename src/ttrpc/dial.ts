// Connecting a ttRPC client to a unix socket, with a deadline and cancellation.

import { connect, type Socket } from 'node:net';
import { Code, HakoError } from '../errors/index.js';

/** dialUnix connects to a unix socket path (a `unix://` prefix is accepted). */
export function dialUnix(address: string, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Socket> {
  const path = address.startsWith('unix://') ? address.slice('unix://'.length) : address;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const fail = (err: HakoError) => {
      cleanup();
      sock.destroy();
      reject(err);
    };
    const onError = (err: NodeJS.ErrnoException) => {
      const code = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? Code.UNAVAILABLE : Code.UNKNOWN;
      fail(new HakoError(code, `dial ${path}: ${err.message}`, { cause: err }));
    };
    const onAbort = () => fail(new HakoError(Code.CANCELLED, `dial ${path}: cancelled`));
    const timer = setTimeout(() => fail(new HakoError(Code.DEADLINE_EXCEEDED, `dial ${path}: no connection within ${timeoutMs} ms`)), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      sock.off('error', onError);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    sock.once('error', onError);
    sock.once('connect', () => {
      cleanup();
      resolve(sock);
    });
  });
}
