// Unit tests for the child-process runner: output capture, failure messages,
// timeouts and cancellation that also reach the child's own children.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, HakoError } from '../errors/index.js';
import { run } from './run.js';

test('run captures output and streams lines', async () => {
  const lines: string[] = [];
  const r = await run(['sh', '-c', 'echo one; echo two >&2; printf three'], { timeoutMs: 5000, onLine: (l) => lines.push(l) });
  assert.equal(r.stdout, 'one\nthree');
  assert.equal(r.stderr, 'two\n');
  assert.deepEqual(lines.sort(), ['one', 'three', 'two']);
});

test('run names the command and its stderr tail when it fails', async () => {
  await assert.rejects(run(['sh', '-c', 'echo broken >&2; exit 7'], { timeoutMs: 5000 }), (e: unknown) => {
    assert.ok(e instanceof HakoError);
    assert.match(e.message, /sh -c .* exited with 7:\nbroken/);
    return true;
  });
});

test('run kills the whole process group on timeout and on abort', async () => {
  const started = Date.now();
  await assert.rejects(run(['sh', '-c', 'sleep 30 & sleep 30; wait'], { timeoutMs: 200, processGroup: true }),
    (e: unknown) => e instanceof HakoError && e.code === Code.DEADLINE_EXCEEDED);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(run(['sh', '-c', 'sleep 30 & sleep 30; wait'], { timeoutMs: 10_000, signal: ac.signal, processGroup: true }),
    (e: unknown) => e instanceof HakoError && e.code === Code.CANCELLED);
  assert.ok(Date.now() - started < 5000);
});
