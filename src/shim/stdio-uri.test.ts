// Unit tests of stdio URI parsing (paths, binary://, file://, unknown schemes).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStdioTarget } from './stdio-uri.js';

test('plain paths, fifo://, file:// and binary://', () => {
  assert.deepEqual(parseStdioTarget('', 'stdout'), { kind: 'none' });
  assert.deepEqual(parseStdioTarget('/run/containerd/fifo/1/c1-stdout', 'stdout'), { kind: 'path', path: '/run/containerd/fifo/1/c1-stdout' });
  assert.deepEqual(parseStdioTarget('fifo:///tmp/f', 'stdout'), { kind: 'path', path: '/tmp/f' });
  assert.deepEqual(parseStdioTarget('file:///var/log/c%201.log', 'stdout'), { kind: 'file', path: '/var/log/c 1.log' });
  assert.deepEqual(parseStdioTarget('binary:///usr/bin/logger?-t=ctr&-v', 'stdout'), { kind: 'binary', path: '/usr/bin/logger', args: ['-t', 'ctr', '-v', ''] });
});

test('anything else is an error naming the stream', () => {
  assert.throws(() => parseStdioTarget('tcp://1.2.3.4:5', 'stderr'), /stderr: unknown STDIO scheme tcp/);
  assert.throws(() => parseStdioTarget('file://relative', 'stdout'), /absolute/);
});
