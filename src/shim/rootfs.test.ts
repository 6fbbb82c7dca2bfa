// Unit tests of the mount(8) arguments built from containerd's rootfs entries.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mountArgs } from './rootfs.js';

test('bind and rbind entries', () => {
  assert.deepEqual(mountArgs({ type: 'bind', source: '/snap/1/fs', options: ['rbind', 'rw'] }, '/b/rootfs'), ['--rbind', '-o', 'rw', '/snap/1/fs', '/b/rootfs']);
  assert.deepEqual(mountArgs({ type: 'bind', source: '/s', options: [] }, '/t'), ['--bind', '/s', '/t']);
  assert.deepEqual(mountArgs({ type: 'rbind', source: '/s', options: ['ro'] }, '/t'), ['--rbind', '-o', 'ro', '/s', '/t']);
});

test('overlay entries keep their options in order', () => {
  const m = { type: 'overlay', source: 'overlay', options: ['index=off', 'workdir=/w', 'upperdir=/u', 'lowerdir=/l1:/l2'] };
  assert.deepEqual(mountArgs(m, '/t'), ['-t', 'overlay', '-o', 'index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2', 'overlay', '/t']);
});

test('rejects what it cannot mount safely', () => {
  assert.throws(() => mountArgs({ type: 'tmpfs', source: 'tmpfs', options: [] }, '/t'), /unsupported mount type "tmpfs"/);
  assert.throws(() => mountArgs({ type: 'bind', source: 'rel', options: [] }, '/t'), /absolute/);
  assert.throws(() => mountArgs({ type: 'overlay', source: 'overlay', options: ['upperdir=/u'] }, '/t'), /lowerdir/);
  assert.throws(() => mountArgs({ type: 'overlay', source: 'overlay', options: ['lowerdir=/a,b'] }, '/t'), /comma/);
  assert.throws(() => mountArgs({ type: 'bind', source: '/s', target: '/x', options: [] }, '/t'), /target/);
});
