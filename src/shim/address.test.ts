// Unit tests of shim socket addresses and grouping.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { groupId, socketAddress, socketPath } from './address.js';

test('socketAddress hashes address/namespace/group like containerd', () => {
  const want = createHash('sha256').update('/run/containerd/containerd.sock/default/c1').digest('hex');
  const a = socketAddress('/run/containerd/containerd.sock', 'default', 'c1');
  assert.equal(a, `unix:///run/containerd/s/${want}`);
  assert.equal(socketPath(a), `/run/containerd/s/${want}`);
  assert.ok(socketPath(a).length < 108, 'fits sun_path');
  assert.notEqual(socketAddress('/other.sock', 'default', 'c1'), a);
  assert.notEqual(socketAddress('/run/containerd/containerd.sock', 'k8s.io', 'c1'), a);
});

test('groupId prefers the CRI sandbox id and falls back to the task id', () => {
  assert.equal(groupId('c1', undefined), 'c1');
  assert.equal(groupId('c1', { other: 'x' }), 'c1');
  assert.equal(groupId('c2', { 'io.kubernetes.cri.sandbox-id': 'pod1' }), 'pod1');
  assert.equal(groupId('c2', { 'io.kubernetes.cri.sandbox-id': '' }), 'c2');
  assert.equal(groupId('c2', { 'io.kubernetes.cri.sandbox-id': 42 }), 'c2');
});
