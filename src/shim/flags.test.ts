// Unit tests of the shim's flag parsing against the argument lists containerd 1.6 builds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, HakoError } from '../errors/index.js';
import { parseFlags, serveArgs } from './flags.js';

test('parses containerd start arguments', () => {
  const f = parseFlags(['-namespace', 'default', '-address', '/run/containerd/containerd.sock', '-publish-binary', '/usr/bin/containerd', '-id', 'c1', '-debug', 'start']);
  assert.equal(f.action, 'start');
  assert.equal(f.namespace, 'default');
  assert.equal(f.address, '/run/containerd/containerd.sock');
  assert.equal(f.publishBinary, '/usr/bin/containerd');
  assert.equal(f.id, 'c1');
  assert.equal(f.debug, true);
});

test('parses delete with -bundle, =-forms, and no action means serve', () => {
  const d = parseFlags(['-namespace', 'k8s.io', '-address', '/a', '-publish-binary', '/b', '-id', 'x', '-bundle', '/run/b/x', 'delete']);
  assert.equal(d.action, 'delete');
  assert.equal(d.bundle, '/run/b/x');
  const s = parseFlags(['--namespace=ns', '-id=y', '-debug=false', '-socket', '/run/containerd/s/abc']);
  assert.equal(s.action, 'serve');
  assert.equal(s.namespace, 'ns');
  assert.equal(s.debug, false);
  assert.equal(s.socket, '/run/containerd/s/abc');
  assert.deepEqual(parseFlags(serveArgs(d, '/sock')), { ...d, bundle: '', socket: '/sock', action: 'serve' });
});

test('rejects unknown flags, unknown actions and a missing namespace or id', () => {
  const bad = (argv: string[], re: RegExp) =>
    assert.throws(() => parseFlags(argv), (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT && re.test(e.message));
  bad(['-namespace', 'n', '-id', 'i', '-bogus', 'start'], /-bogus/);
  bad(['-namespace', 'n', '-id', 'i', 'frobnicate'], /unknown action/);
  bad(['-id', 'i', 'start'], /namespace/);
  bad(['-namespace', 'n', 'start'], /id/);
  bad(['-namespace'], /needs an argument/);
  assert.equal(parseFlags(['-v']).action, 'version');
});
