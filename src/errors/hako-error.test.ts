// Unit tests of HakoError: exact status code numbers, HakoError.from's mapping of thrown
// values, wrap's context and cause chain, and the is* helpers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, codeName, errorf, HakoError, isAlreadyExists, isDeadlineExceeded, isNotFound, isUnavailable } from './index.js';

test('status codes have their gRPC numbers', () => {
  assert.deepEqual(
    [Code.OK, Code.CANCELLED, Code.UNKNOWN, Code.INVALID_ARGUMENT, Code.DEADLINE_EXCEEDED, Code.NOT_FOUND, Code.ALREADY_EXISTS, Code.PERMISSION_DENIED, Code.RESOURCE_EXHAUSTED, Code.FAILED_PRECONDITION, Code.ABORTED, Code.OUT_OF_RANGE, Code.UNIMPLEMENTED, Code.INTERNAL, Code.UNAVAILABLE, Code.DATA_LOSS, Code.UNAUTHENTICATED],
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
  );
  assert.equal(codeName(12), 'UNIMPLEMENTED');
  assert.equal(codeName(77), 'CODE_77');
});

test('HakoError carries code, message, cause and a readable toString', () => {
  const cause = new Error('root');
  const e = new HakoError(Code.NOT_FOUND, 'container c1', { cause });
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'HakoError');
  assert.equal(e.code, Code.NOT_FOUND);
  assert.equal(e.message, 'container c1');
  assert.equal(e.cause, cause);
  assert.equal(String(e), 'NOT_FOUND: container c1');
  assert.ok(e.stack?.includes('container c1'));
});

test('HakoError.from keeps an existing HakoError as is', () => {
  const e = new HakoError(Code.ALREADY_EXISTS, 'x');
  assert.equal(HakoError.from(e), e);
  assert.equal(HakoError.from(e, Code.INTERNAL), e);
});

test('HakoError.from maps errno codes and abort/timeout errors', () => {
  const errno = (code: string) => Object.assign(new Error(`${code} happened`), { code });
  const cases: Array<[unknown, Code]> = [
    [errno('ENOENT'), Code.NOT_FOUND],
    [errno('EEXIST'), Code.ALREADY_EXISTS],
    [errno('EACCES'), Code.PERMISSION_DENIED],
    [errno('EPERM'), Code.PERMISSION_DENIED],
    [errno('EIO'), Code.UNKNOWN],
    [Object.assign(new Error('aborted'), { name: 'AbortError' }), Code.CANCELLED],
    [Object.assign(new Error('too slow'), { name: 'TimeoutError' }), Code.DEADLINE_EXCEEDED],
    [new DOMException('signal timed out', 'TimeoutError'), Code.DEADLINE_EXCEEDED],
    [new DOMException('This operation was aborted', 'AbortError'), Code.CANCELLED],
    [new TypeError('bad'), Code.UNKNOWN],
  ];
  for (const [input, want] of cases) {
    const got = HakoError.from(input);
    assert.equal(got.code, want, `${(input as Error).name}: ${(input as Error).message}`);
    assert.equal(got.message, (input as Error).message);
    assert.equal(got.cause, input);
  }
});

test('HakoError.from: an AbortError whose cause is a HakoError yields that error', () => {
  const reason = new HakoError(Code.DEADLINE_EXCEEDED, 'deadline of 5 ms exceeded');
  const abortErr = Object.assign(new Error('The operation was aborted'), { name: 'AbortError', cause: reason });
  assert.equal(HakoError.from(abortErr), reason);
});

test('HakoError.from: real AbortErrors from node APIs map through the signal reason', async () => {
  const { setTimeout: sleep } = await import('node:timers/promises');
  const ac = new AbortController();
  const p = sleep(10_000, undefined, { signal: ac.signal });
  ac.abort(new HakoError(Code.UNAVAILABLE, 'vm stopped'));
  const err = await p.then(() => assert.fail('resolved'), (e: unknown) => e);
  assert.equal(HakoError.from(err).code, Code.UNAVAILABLE);
  const plain = await sleep(10_000, undefined, { signal: AbortSignal.abort() }).then(() => assert.fail('resolved'), (e: unknown) => e);
  assert.equal(HakoError.from(plain).code, Code.CANCELLED);
});

test('HakoError.from: non-Error values use the fallback code', () => {
  assert.deepEqual([HakoError.from('boom').code, HakoError.from('boom').message], [Code.UNKNOWN, 'boom']);
  assert.equal(HakoError.from(42, Code.INTERNAL).code, Code.INTERNAL);
  assert.equal(HakoError.from(undefined).message, 'undefined');
  assert.equal(HakoError.from(new Error('generic'), Code.INTERNAL).code, Code.INTERNAL);
});

test('HakoError.wrap prefixes context, keeps the code and chains the cause', () => {
  const inner = new HakoError(Code.NOT_FOUND, 'no such process');
  const w = HakoError.wrap(inner, 'kill c1');
  assert.equal(w.code, Code.NOT_FOUND);
  assert.equal(w.message, 'kill c1: no such process');
  assert.equal(w.cause, inner);
  const ww = HakoError.wrap(w, 'task service');
  assert.equal(ww.message, 'task service: kill c1: no such process');
  assert.ok(isNotFound(ww));
  const fromErrno = HakoError.wrap(Object.assign(new Error('open /x'), { code: 'ENOENT' }), 'read config');
  assert.equal(fromErrno.code, Code.NOT_FOUND);
  assert.equal(fromErrno.message, 'read config: open /x');
  assert.equal(HakoError.wrap('text', 'ctx').message, 'ctx: text');
});

test('is* helpers check class and code; errorf builds errors', () => {
  assert.ok(isNotFound(errorf(Code.NOT_FOUND, 'a')));
  assert.ok(!isNotFound(new Error('not found')), 'plain errors never match');
  assert.ok(!isNotFound(errorf(Code.ALREADY_EXISTS, 'a')));
  assert.ok(isAlreadyExists(errorf(Code.ALREADY_EXISTS, 'a')));
  assert.ok(isUnavailable(errorf(Code.UNAVAILABLE, 'a')));
  assert.ok(isDeadlineExceeded(errorf(Code.DEADLINE_EXCEEDED, 'a')));
  assert.ok(!isDeadlineExceeded(undefined));
  const c = new Error('c');
  assert.equal(errorf(Code.INTERNAL, 'm', c).cause, c);
  assert.equal(errorf(Code.INTERNAL, 'm').cause, undefined);
});
