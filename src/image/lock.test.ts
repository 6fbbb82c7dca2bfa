// Unit tests for the flock-based lock: holders never overlap, a cancelled waiter
// gives up, and a lock is released when its holder goes away.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, HakoError } from '../errors/index.js';
import { acquireLock, withLock } from './lock.js';

test('withLock serializes holders of the same lock file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hako-lock-'));
  try {
    const path = join(dir, 'x.lock');
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    const worker = (n: number) => withLock(path, { timeoutMs: 10_000 }, async () => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      await new Promise((r) => setTimeout(r, 50));
      order.push(n);
      inside--;
    });
    await Promise.all([worker(1), worker(2), worker(3)]);
    assert.equal(maxInside, 1);
    assert.equal(order.length, 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a waiter times out or is cancelled while the lock is held', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hako-lock-'));
  try {
    const path = join(dir, 'x.lock');
    const held = await acquireLock(path, { timeoutMs: 5000 });
    await assert.rejects(acquireLock(path, { timeoutMs: 300 }), (e: unknown) => e instanceof HakoError && e.code === Code.DEADLINE_EXCEEDED);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(acquireLock(path, { timeoutMs: 5000, signal: ac.signal }), (e: unknown) => e instanceof HakoError && e.code === Code.CANCELLED);
    await held.release();
    const again = await acquireLock(path, { timeoutMs: 2000 });
    await again.release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
