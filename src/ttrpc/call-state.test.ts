// Unit tests for CallState: the lazily made signal behaves as if it had existed from the start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, HakoError } from '../errors/index.js';
import { CallState } from './call-state.js';

const isCode = (code: Code) => (r: unknown) => r instanceof HakoError && r.code === code;

test('a signal read after the deadline is already aborted with DEADLINE_EXCEEDED', async () => {
  const c = new CallState(Date.now() + 20, 20, 'Slow');
  await new Promise((r) => setTimeout(r, 40));
  assert.ok(c.aborted, 'aborted without a signal ever made');
  assert.ok(isCode(Code.DEADLINE_EXCEEDED)(c.abortReason));
  assert.ok(c.signal.aborted);
  assert.match((c.signal.reason as Error).message, /Slow: deadline of 20 ms exceeded/);
});

test('a signal read before the deadline aborts when it passes', async () => {
  const c = new CallState(Date.now() + 30, 30, 'M');
  const s = c.signal;
  assert.equal(s.aborted, false);
  await new Promise<void>((resolve) => s.addEventListener('abort', () => resolve(), { once: true }));
  assert.ok(isCode(Code.DEADLINE_EXCEEDED)(s.reason));
});

test('abort before the signal exists is seen by it later; abort after reaches its listeners', () => {
  const early = new CallState(null, 0, 'M');
  early.abort(new HakoError(Code.CANCELLED, 'connection closed'));
  assert.ok(early.aborted && early.signal.aborted && isCode(Code.CANCELLED)(early.signal.reason));
  const late = new CallState(null, 0, 'M');
  let seen: unknown;
  late.signal.addEventListener('abort', () => (seen = late.signal.reason));
  late.abort(new HakoError(Code.CANCELLED, 'gone'));
  assert.ok(isCode(Code.CANCELLED)(seen));
});

test('no deadline: never aborted on its own; end() stops a pending deadline timer', async () => {
  const none = new CallState(null, 0, 'M');
  assert.equal(none.signal.aborted, false);
  assert.equal(none.aborted, false);
  const ended = new CallState(Date.now() + 20, 20, 'M');
  const s = ended.signal;
  ended.end();
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(s.aborted, false, 'the timer was cleared when the handler settled');
});
