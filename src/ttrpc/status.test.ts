// Unit tests of the mapping between HakoError and the google.rpc.Status on the wire,
// including the bounds applied to statuses from an untrusted peer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { Code, HakoError } from '../errors/index.js';
import { StatusSchema } from '../protocols/generated/google/rpc/status_pb.js';
import { errorFromStatus, statusFromError } from './status.js';

test('statusFromError keeps HakoError codes and maps other throwables', () => {
  assert.deepEqual(
    [statusFromError(new HakoError(Code.NOT_FOUND, 'gone')).code, statusFromError(new HakoError(Code.NOT_FOUND, 'gone')).message],
    [Code.NOT_FOUND, 'gone'],
  );
  assert.equal(statusFromError(new Error('x')).code, Code.UNKNOWN);
  assert.equal(statusFromError(Object.assign(new Error('x'), { code: 'EEXIST' })).code, Code.ALREADY_EXISTS);
  assert.equal(statusFromError('str').message, 'str');
});

test('errorFromStatus turns a status into a HakoError; round trip for every code', () => {
  for (let code = 1; code <= 16; code++) {
    const e = errorFromStatus(statusFromError(new HakoError(code, `m${code}`)), 'svc/M');
    assert.equal(e.code, code);
    assert.equal(e.message, `m${code}`);
  }
});

test('errorFromStatus bounds hostile statuses', () => {
  assert.equal(errorFromStatus(undefined, 'svc/M').code, Code.INTERNAL);
  for (const code of [17, 1000, -1, 2 ** 31 - 1]) {
    assert.equal(errorFromStatus(create(StatusSchema, { code, message: 'x' }), 'w').code, Code.UNKNOWN, `code ${code}`);
  }
  const long = errorFromStatus(create(StatusSchema, { code: Code.INTERNAL, message: 'y'.repeat(1 << 20) }), 'w');
  assert.ok(long.message.length <= 4097, `message of ${long.message.length} chars`);
  assert.ok(long.message.endsWith('…'));
});
