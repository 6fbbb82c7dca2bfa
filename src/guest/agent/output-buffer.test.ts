// Unit tests for the per-stream output buffer: ordering, max_len, eof after drain, backpressure, abort.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutputBuffer } from './output-buffer.js';

test('reads return buffered data in order, bounded by maxLen, then eof after end', async () => {
  const b = new OutputBuffer();
  b.push(Buffer.from('hello '));
  b.push(Buffer.from('world'));
  b.end();
  assert.deepEqual(await b.read(4), { data: Buffer.from('hell'), eof: false });
  assert.deepEqual(await b.read(100), { data: Buffer.from('o world'), eof: false });
  assert.deepEqual(await b.read(100), { data: Buffer.alloc(0), eof: true });
  assert.deepEqual(await b.read(100), { data: Buffer.alloc(0), eof: true });
  assert.ok(b.done);
});

test('a waiting read is answered by the next push, and eof by end', async () => {
  const b = new OutputBuffer();
  const r1 = b.read(10);
  const r2 = b.read(10);
  b.push(Buffer.from('abc'));
  assert.deepEqual(await r1, { data: Buffer.from('abc'), eof: false });
  b.end();
  assert.deepEqual(await r2, { data: Buffer.alloc(0), eof: true });
});

test('the source is paused at the limit and resumed once half is drained; nothing is dropped', async () => {
  const events: string[] = [];
  const b = new OutputBuffer({ limit: 10, pause: () => events.push('pause'), resume: () => events.push('resume') });
  b.push(Buffer.alloc(6, 1));
  b.push(Buffer.alloc(6, 2));
  assert.deepEqual(events, ['pause']);
  assert.equal(b.buffered, 12);
  const first = await b.read(4);
  assert.equal(first.data.length, 4);
  assert.deepEqual(events, ['pause']);
  const second = await b.read(4);
  assert.deepEqual([...second.data], [1, 1, 2, 2]);
  assert.deepEqual(events, ['pause', 'resume']);
  assert.equal((await b.read(100)).data.length, 4);
});

test('an aborted read rejects with the signal reason and takes nothing', async () => {
  const b = new OutputBuffer();
  const ac = new AbortController();
  const r = b.read(10, ac.signal);
  ac.abort(new Error('gone'));
  await assert.rejects(r, /gone/);
  b.push(Buffer.from('x'));
  assert.deepEqual(await b.read(10), { data: Buffer.from('x'), eof: false });
});

test('maxLen must be positive', async () => {
  await assert.rejects(new OutputBuffer().read(0), /max_len/);
});

test('coalescing holds a small read back until enough is buffered, the time is up, or the end', async () => {
  const b = new OutputBuffer({ coalesce: { bytes: 8, ms: 40 } });
  b.push(Buffer.from('ab'));
  const t = Date.now();
  const r = b.read(100);
  b.push(Buffer.from('cd'));
  assert.deepEqual(await r, { data: Buffer.from('abcd'), eof: false }, 'both chunks in one answer');
  assert.ok(Date.now() - t >= 30, `answered after ${Date.now() - t} ms, not at once`);

  const full = b.read(100);
  b.push(Buffer.from('12345'));
  b.push(Buffer.from('6789'));
  const t2 = Date.now();
  assert.deepEqual(await full, { data: Buffer.from('123456789'), eof: false });
  assert.ok(Date.now() - t2 < 30, 'enough bytes answer at once');

  const small = b.read(3);
  b.push(Buffer.from('xyz!'));
  assert.deepEqual(await small, { data: Buffer.from('xyz'), eof: false }, 'max_len below the threshold is enough');

  const last = b.read(100);
  b.end();
  assert.deepEqual(await last, { data: Buffer.from('!'), eof: false }, 'the end flushes at once');
  assert.deepEqual(await b.read(100), { data: Buffer.alloc(0), eof: true });
});

test('coalescing: an empty buffer waits for data without a timer; an aborted read stops the timer', async () => {
  const b = new OutputBuffer({ coalesce: { bytes: 1024, ms: 10_000 } });
  const ac = new AbortController();
  const r = b.read(100, ac.signal);
  b.push(Buffer.from('a'));
  ac.abort(new Error('gone'));
  await assert.rejects(r, /gone/);
  // No timer is left behind (the test would hang for 10 s otherwise); the data is still there.
  b.end();
  assert.deepEqual(await b.read(100), { data: Buffer.from('a'), eof: false });
});
