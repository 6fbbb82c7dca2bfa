// Saving and loading a VM's device state with QMP migration over a unix socket that the driver
// serves itself, so the bytes are bounded, counted, hashed and synced here (no shell, no `cat`).

import { createHash } from 'node:crypto';
import { lstat, open, unlink } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Code, HakoError, errorf } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import { raceDeadline, sleep } from '../deadline.js';
import { checkSocketPath } from '../validate.js';
import type { QmpClient } from './qmp.js';

/**
 * MAX_STATE_BYTES bounds a saved device state. With guest RAM on a shared file backend and
 * x-ignore-shared, the state is well under 1 MiB (measured 0.46 MB); a stream this large means
 * RAM is being copied after all, and the save is refused rather than filling tmpfs.
 */
export const MAX_STATE_BYTES = 64 << 20;

/** SavedState describes a written state file. */
export interface SavedState {
  bytes: number;
  /** sha256 is the hex digest of the file's bytes. */
  sha256: string;
}

/** MigrationOptions bounds a save or a load. */
export interface MigrationOptions {
  signal?: AbortSignal;
  /** timeoutMs bounds the whole operation (default 30000). */
  timeoutMs?: number;
  log: Logger;
}

const IGNORE_SHARED = { capabilities: [{ capability: 'x-ignore-shared', state: true }] };
const POLL_MS = 5;

/**
 * saveState pauses the VM and writes its device state to path (created 0600, never replaced).
 * RAM on a shared file backend is skipped (x-ignore-shared): the RAM file is the other half of
 * the snapshot. On failure the partial file is removed and the VM stays paused.
 */
export async function saveState(qmp: QmpClient, socketPath: string, path: string, opts: MigrationOptions): Promise<SavedState> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const left = (): number => Math.max(1, deadline - Date.now());
  const call = <T>(cmd: string, args?: Record<string, unknown>): Promise<T> => qmp.execute<T>(cmd, args, { signal: opts.signal, timeoutMs: left() });
  checkSocket(socketPath);
  await removeSocket(socketPath);
  const fh = await open(path, 'wx', 0o600);
  let server: Server | undefined;
  let ok = false;
  try {
    await call('stop');
    await call('migrate-set-capabilities', IGNORE_SHARED);
    const received = receiveOne(socketPath, fh, opts.log);
    server = received.server;
    await received.listening;
    await call('migrate', { uri: `unix:${socketPath}` });
    const done = Promise.all([waitMigration(qmp, 'save', deadline, opts.signal), received.done]);
    const [, state] = await raceDeadline(done, 'saving the VM state', { signal: opts.signal, timeoutMs: left() });
    await fh.sync();
    ok = true;
    return state;
  } catch (err) {
    await qmp.execute('migrate_cancel', undefined, { timeoutMs: 2000 }).catch(() => {});
    throw HakoError.wrap(err, 'saving the VM state');
  } finally {
    server?.close();
    await fh.close().catch(() => {});
    await removeSocket(socketPath);
    if (!ok) await unlink(path).catch(() => {});
  }
}

/**
 * loadState feeds a saved device state to a VM started with `incoming` and resolves once the
 * guest runs again (QEMU leaves it paused, as it was saved; loadState resumes it). The VM must have the same devices and RAM file contents as the one saved;
 * if the state does not fit, QEMU exits, and the caller sees the VM's exit.
 */
export async function loadState(qmp: QmpClient, socketPath: string, data: Uint8Array, opts: MigrationOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const left = (): number => Math.max(1, deadline - Date.now());
  checkSocket(socketPath);
  await removeSocket(socketPath);
  let sock: Socket | undefined;
  try {
    await qmp.execute('migrate-set-capabilities', IGNORE_SHARED, { signal: opts.signal, timeoutMs: left() });
    // QEMU listens on the socket when migrate-incoming returns.
    await qmp.execute('migrate-incoming', { uri: `unix:${socketPath}` }, { signal: opts.signal, timeoutMs: left() });
    sock = connect(socketPath);
    const s = sock;
    const sent = new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.once('connect', () => s.end(data, () => resolve()));
    });
    await raceDeadline(sent, 'sending the VM state', { signal: opts.signal, timeoutMs: left() });
    await waitMigration(qmp, 'load', deadline, opts.signal);
    // The state was saved from a paused VM, so QEMU keeps the clone paused until told.
    const st = await qmp.execute<{ status?: unknown }>('query-status', undefined, { signal: opts.signal, timeoutMs: left() });
    if (st?.status !== 'running') await qmp.execute('cont', undefined, { signal: opts.signal, timeoutMs: left() });
  } catch (err) {
    throw HakoError.wrap(err, 'restoring the VM state');
  } finally {
    sock?.destroy();
    await removeSocket(socketPath);
  }
}

// receiveOne serves socketPath for one connection (QEMU's outgoing migration) and copies it into
// fh, hashing as it goes; done resolves once QEMU closed the stream and every byte is written.
function receiveOne(socketPath: string, fh: import('node:fs/promises').FileHandle, log: Logger) {
  const hash = createHash('sha256');
  let bytes = 0;
  let resolveDone!: (s: SavedState) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<SavedState>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  done.catch(() => {});
  const server = createServer({ pauseOnConnect: true }, (conn) => {
    server.close();
    let writing: Promise<unknown> = Promise.resolve();
    conn.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_STATE_BYTES) {
        conn.destroy();
        rejectDone(errorf(Code.RESOURCE_EXHAUSTED, `the VM state passed ${MAX_STATE_BYTES} bytes: guest RAM is being copied (is it on a shared file backend?)`));
        return;
      }
      hash.update(chunk);
      // Backpressure: QEMU waits while the file write is pending.
      conn.pause();
      writing = writing.then(() => fh.write(chunk)).then(() => conn.resume(), (err: unknown) => {
        conn.destroy();
        rejectDone(HakoError.wrap(err, 'writing the VM state'));
      });
    });
    conn.once('end', () => void writing.then(() => resolveDone({ bytes, sha256: hash.digest('hex') })));
    conn.once('error', (err) => rejectDone(HakoError.wrap(err, 'receiving the VM state')));
    conn.resume();
  });
  server.on('error', (err) => {
    log.debug('migration socket error', { err });
    rejectDone(HakoError.wrap(err, 'serving the migration socket'));
  });
  const listening = new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  server.listen(socketPath);
  return { server, listening, done };
}

// waitMigration polls query-migrate until QEMU reports the migration completed (or failed).
async function waitMigration(qmp: QmpClient, what: string, deadline: number, signal?: AbortSignal): Promise<void> {
  for (;;) {
    const info = await qmp.execute<{ status?: unknown; 'error-desc'?: unknown }>('query-migrate', undefined, {
      signal, timeoutMs: Math.max(1, deadline - Date.now()),
    });
    const status = typeof info?.status === 'string' ? info.status : 'unknown';
    if (status === 'completed') return;
    if (status === 'failed' || status === 'cancelled') {
      const why = typeof info['error-desc'] === 'string' ? `: ${info['error-desc']}` : '';
      throw errorf(Code.UNKNOWN, `migration (${what}) ${status}${why}`);
    }
    if (Date.now() >= deadline) throw errorf(Code.DEADLINE_EXCEEDED, `migration (${what}) still ${status}`);
    await sleep(POLL_MS, signal);
  }
}

function checkSocket(p: string): void {
  checkSocketPath(p, 'migration socket', (msg) => {
    throw errorf(Code.INVALID_ARGUMENT, msg);
  });
}

async function removeSocket(p: string): Promise<void> {
  const st = await lstat(p).catch(() => undefined);
  if (st?.isSocket()) await unlink(p).catch(() => {});
}
