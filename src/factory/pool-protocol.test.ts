// Unit tests of the warm pool's wire format: requests and replies are checked and bounded on
// both sides, so a bad peer gets an error, not a crash or a path it did not ask for.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, HakoError } from '../errors/index.js';
import { encodeLine, MAX_POOL_LINE, parseRequest, parseStatus, parseTakeReply } from './pool-protocol.js';

const KEY = 'a'.repeat(64);
const bad = (fn: () => unknown, pattern: RegExp, code = Code.INVALID_ARGUMENT): void => {
  assert.throws(fn, (e: unknown) => e instanceof HakoError && e.code === code && pattern.test(e.message));
};

test('take and status requests round-trip', () => {
  const line = encodeLine({ op: 'take', key: KEY, vmDir: '/run/hako/sandboxes/x/vm' });
  assert.ok(line.endsWith('\n'));
  assert.deepEqual(parseRequest(line.trim()), { op: 'take', key: KEY, vmDir: '/run/hako/sandboxes/x/vm' });
  assert.deepEqual(parseRequest('{"op":"status","extra":1}'), { op: 'status' });
});

test('bad requests are refused by name', () => {
  bad(() => parseRequest('nope'), /not JSON/);
  bad(() => parseRequest('[1]'), /not an object/);
  bad(() => parseRequest('{"op":"steal"}'), /unknown pool op "steal"/);
  bad(() => parseRequest(JSON.stringify({ op: 'take', key: 'abc', vmDir: '/x' })), /key must be a sha256/);
  bad(() => parseRequest(JSON.stringify({ op: 'take', key: KEY, vmDir: 'relative/vm' })), /vmDir must be an absolute path/);
  bad(() => parseRequest('x'.repeat(MAX_POOL_LINE + 1)), /bytes/, Code.RESOURCE_EXHAUSTED);
  bad(() => encodeLine({ pad: 'x'.repeat(MAX_POOL_LINE) }), /pool message/, Code.RESOURCE_EXHAUSTED);
});

test('take replies: a VM, or a reason', () => {
  assert.deepEqual(parseTakeReply('{"ok":true,"pid":4242,"vmId":"pool-1a2b","warmMs":2400}'), { ok: true, pid: 4242, vmId: 'pool-1a2b', warmMs: 2400 });
  assert.deepEqual(parseTakeReply('{"ok":false,"reason":"empty","detail":"1 on the way"}'), { ok: false, reason: 'empty', detail: '1 on the way' });
  // An unknown reason is a refusal, and the detail is bounded.
  const r = parseTakeReply(JSON.stringify({ ok: false, reason: 'lol', detail: 'd'.repeat(1000) }));
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.reason === 'refused' && r.detail.length === 500);
  bad(() => parseTakeReply('{"ok":true,"pid":1,"vmId":"x"}'), /bad pid/);
  bad(() => parseTakeReply('{"ok":true,"pid":77,"vmId":"../../etc"}'), /bad vmId/);
});

test('status replies are checked', () => {
  const s = { ok: true, pid: 10, key: KEY, size: 2, ready: 1, starting: 1, handedOut: 5 };
  assert.deepEqual(parseStatus(JSON.stringify(s)), s);
  bad(() => parseStatus(JSON.stringify({ ...s, ready: -1 })), /bad ready/);
  bad(() => parseStatus(JSON.stringify({ ...s, ok: false })), /not a status/);
});
