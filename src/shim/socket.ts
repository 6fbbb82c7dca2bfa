// Unix-socket helpers of the shim's bootstrap: probing whether a shim answers, and
// listening without stealing a socket another live shim of the same group serves.

import { mkdirSync, unlinkSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { Code, HakoError } from '../errors/index.js';

/** EXIT_ALREADY_SERVED is the serving process's exit code when another live shim already serves its socket. */
export const EXIT_ALREADY_SERVED = 3;

/** canConnect reports whether something accepts connections on the socket path. */
export function canConnect(path: string, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const t = setTimeout(() => finish(false), timeoutMs);
    const finish = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => finish(true));
    s.once('error', () => finish(false));
  });
}

/** removeStaleSocket removes a socket file nobody answers on; returns whether one was removed. */
export async function removeStaleSocket(path: string): Promise<boolean> {
  if (await canConnect(path)) return false;
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * listenExclusive listens on path with mode 0600. A stale socket file is replaced; a
 * live one is left alone and reported as ALREADY_EXISTS.
 */
export async function listenExclusive(path: string, onConnection: (s: Socket) => void): Promise<NetServer> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o711 });
  for (let attempt = 0; attempt < 2; attempt++) {
    const srv = createServer(onConnection);
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      srv.once('error', resolve);
      srv.listen(path, () => {
        srv.removeAllListeners('error');
        resolve(null);
      });
    });
    if (!err) {
      await chmod(path, 0o600);
      return srv;
    }
    if (err.code !== 'EADDRINUSE') throw HakoError.wrap(err, `listen ${path}`);
    if (await canConnect(path)) throw new HakoError(Code.ALREADY_EXISTS, `${path} is served by another shim`);
    try { unlinkSync(path); } catch { /* raced with its owner */ }
  }
  throw new HakoError(Code.UNAVAILABLE, `listen ${path}: address stays in use`);
}
