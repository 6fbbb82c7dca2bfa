// Test helper shared by every e2e test: make sure the system containerd answers on its
// default socket, starting it (detached, left running) when it does not.

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Code, HakoError } from '../../src/errors/index.js';

/** CONTAINERD_SOCKET is containerd's default gRPC socket (what `ctr` uses). */
export const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
/** CONTAINERD_TTRPC_SOCKET is containerd's ttRPC socket, the shim's TTRPC_ADDRESS. */
export const CONTAINERD_TTRPC_SOCKET = `${CONTAINERD_SOCKET}.ttrpc`;
/** CONTAINERD_LOG is where a containerd started by the tests writes (as scripts/setup.sh does). */
export const CONTAINERD_LOG = '/var/log/hako/containerd.log';

// A lock directory so that two test processes never start two containerds at once.
const LOCK = '/run/hako-test-containerd.lock';
const STALE_LOCK_MS = 60_000;

/** EnsureResult says whether this call started containerd. */
export interface EnsureResult {
  started: boolean;
  /** pid of the containerd this call spawned (it is left running). */
  pid?: number;
}

/** containerdAnswers reports whether `ctr version` succeeds against the default socket within 5 s. */
export function containerdAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('ctr', ['--address', CONTAINERD_SOCKET, '--connect-timeout', '2s', 'version'], { timeout: 5000 }, (err) => resolve(err === null));
  });
}

/**
 * ensureContainerd returns once the system containerd answers `ctr version` on
 * /run/containerd/containerd.sock and its ttRPC socket exists. If it is not running, it
 * starts `containerd` with the system config (/etc/containerd/config.toml), detached,
 * logging to /var/log/hako/containerd.log, and leaves it running for later tests.
 * Fails with DEADLINE_EXCEEDED after timeoutMs (default 60 s), CANCELLED on abort.
 */
export async function ensureContainerd(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<EnsureResult> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const ready = async () => (await containerdAnswers()) && existsSync(CONTAINERD_TTRPC_SOCKET);
  if (await ready()) return { started: false };

  let locked = false;
  let pid: number | undefined;
  let exited: string | null = null;
  try {
    for (;;) {
      if (await ready()) return pid === undefined ? { started: false } : { started: true, pid };
      // Our child may have lost a race with a containerd started elsewhere: ready() decides.
      if (exited !== null) throw new HakoError(Code.UNAVAILABLE, `ensureContainerd: ${exited}`);
      check(opts.signal, deadline);
      if (!locked) locked = tryLock();
      if (locked && pid === undefined) {
        mkdirSync('/var/log/hako', { recursive: true });
        const log = openSync(CONTAINERD_LOG, 'a');
        try {
          const child = spawn('containerd', [], { detached: true, stdio: ['ignore', log, log] });
          pid = child.pid;
          child.once('error', (err) => (exited = `containerd could not start: ${err.message}`));
          child.once('exit', (code, sig) => (exited = `containerd exited (${sig ?? `code ${code}`}) before answering; see ${CONTAINERD_LOG}:\n${logTail()}`));
          child.unref();
        } finally {
          closeSync(log);
        }
      }
      await sleep(100);
    }
  } finally {
    if (locked) rmdirSync(LOCK);
  }
}

function check(signal: AbortSignal | undefined, deadline: number): void {
  if (signal?.aborted) throw new HakoError(Code.CANCELLED, 'ensureContainerd: cancelled');
  if (Date.now() > deadline) throw new HakoError(Code.DEADLINE_EXCEEDED, `ensureContainerd: containerd did not answer \`ctr version\` in time; see ${CONTAINERD_LOG}:\n${logTail()}`);
}

/** tryLock takes the start lock, breaking one left behind by a crashed test. */
function tryLock(): boolean {
  try {
    mkdirSync(LOCK);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    try {
      if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmdirSync(LOCK);
    } catch {
      // Someone else removed it first; try again next round.
    }
    return false;
  }
}

function logTail(): string {
  try {
    return readFileSync(CONTAINERD_LOG, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}
