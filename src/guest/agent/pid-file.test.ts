// Unit tests for waitPidFile: woken by inotify long before the backup poll, partial files,
// crun exiting without a pid, the deadline and cancellation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, HakoError } from '../../errors/index.js';
import { readPid, waitPidFile } from './pid-file.js';

const never = new Promise<never>(() => {});

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hako-pidfile-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a pid file written later is seen at once through inotify, not at the next poll', () =>
  withDir(async (dir) => {
    const path = join(dir, 'init.pid');
    // Other files in the directory (crun's log) must not confuse it.
    setTimeout(() => void writeFile(join(dir, 'crun.log'), 'x'), 20);
    setTimeout(() => void writeFile(path, '4242'), 60);
    const t = Date.now();
    const pid = await waitPidFile(path, { timeoutMs: 10_000, exited: never, pollMs: 5_000 });
    assert.equal(pid, 4242);
    assert.ok(Date.now() - t < 2_000, `took ${Date.now() - t} ms with a 5 s poll`);
  }));

test('an empty file (created, not yet written) is read again on the write event', () =>
  withDir(async (dir) => {
    const path = join(dir, 'x.pid');
    await writeFile(path, '');
    setTimeout(() => void writeFile(path, '17\n'), 50);
    assert.equal(await waitPidFile(path, { timeoutMs: 10_000, exited: never, pollMs: 5_000 }), 17);
  }));

test('a file already there is returned without waiting', () =>
  withDir(async (dir) => {
    const path = join(dir, 'x.pid');
    await writeFile(path, '99');
    assert.equal(await waitPidFile(path, { timeoutMs: 10, exited: never }), 99);
  }));

test('crun exiting without a pid file resolves 0; a pid written just before the exit still counts', () =>
  withDir(async (dir) => {
    const path = join(dir, 'x.pid');
    let exit!: () => void;
    const exited = new Promise<void>((r) => (exit = r));
    setTimeout(exit, 30);
    assert.equal(await waitPidFile(path, { timeoutMs: 10_000, exited, pollMs: 5_000 }), 0);
    await writeFile(path, '5');
    assert.equal(await waitPidFile(path, { timeoutMs: 10_000, exited: Promise.resolve() }), 5);
  }));

test('no pid by the deadline is DEADLINE_EXCEEDED; an abort rejects with its reason', () =>
  withDir(async (dir) => {
    const path = join(dir, 'x.pid');
    await assert.rejects(waitPidFile(path, { timeoutMs: 50, exited: never, pollMs: 10 }), (err) => err instanceof HakoError && err.code === Code.DEADLINE_EXCEEDED);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new HakoError(Code.CANCELLED, 'stop')), 30);
    await assert.rejects(waitPidFile(path, { timeoutMs: 10_000, exited: never, pollMs: 5_000, signal: ac.signal }), /stop/);
  }));

test('a watch on a missing directory falls back to the poll', async () => {
  const path = join(tmpdir(), `hako-no-such-dir-${process.pid}`, 'x.pid');
  await assert.rejects(waitPidFile(path, { timeoutMs: 40, exited: never, pollMs: 10 }), (err) => err instanceof HakoError && err.code === Code.DEADLINE_EXCEEDED);
});

test('readPid accepts only a positive decimal pid', () =>
  withDir(async (dir) => {
    const cases: Array<[string, number]> = [['123', 123], ['123\n', 123], ['', 0], ['0', 0], ['-4', 0], ['12abc', 0], ['99999999999', 0]];
    for (const [text, want] of cases) {
      await writeFile(join(dir, 'p'), text);
      assert.equal(await readPid(join(dir, 'p')), want, JSON.stringify(text));
    }
    assert.equal(await readPid(join(dir, 'missing')), 0);
  }));
