// Unit tests of mountinfo parsing and the unmount order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUnder, mountsUnder, parseMountInfo, unescapeMountPath } from './mountinfo.js';

const SAMPLE = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
100 27 0:50 / /run/hako/sandboxes/a/shared ro,relatime - ext4 /dev/vda rw
101 100 0:51 / /run/hako/sandboxes/a/shared/c1/rootfs rw - overlay overlay rw,lowerdir=x
102 100 0:52 /vol /run/hako/sandboxes/a/shared/c1/volumes/0 ro - ext4 /dev/vda rw
103 27 0:51 / /run/hako/sandboxes/a/rootfs/c1/merged rw - overlay overlay rw
104 27 0:53 / /run/hako/sandboxes/ab/shared rw - ext4 /dev/vda rw
105 27 0:54 / /tmp/with\\040space rw - tmpfs tmpfs rw
garbage line
`;

test('parseMountInfo reads mount points, types and escapes', () => {
  const m = parseMountInfo(SAMPLE);
  assert.equal(m.length, 7);
  assert.equal(m[1]!.mountPoint, '/run/hako/sandboxes/a/shared');
  assert.equal(m[2]!.fsType, 'overlay');
  assert.deepEqual(m[1]!.options, ['ro', 'relatime']);
  assert.equal(m[6]!.mountPoint, '/tmp/with space');
  assert.equal(unescapeMountPath('a\\011b\\134c'), 'a\tb\\c');
});

test('mountsUnder returns children first and never a sibling with a common prefix', () => {
  const order = mountsUnder(parseMountInfo(SAMPLE), '/run/hako/sandboxes/a');
  assert.deepEqual(order, [
    '/run/hako/sandboxes/a/shared/c1/volumes/0',
    '/run/hako/sandboxes/a/rootfs/c1/merged',
    '/run/hako/sandboxes/a/shared/c1/rootfs',
    '/run/hako/sandboxes/a/shared',
  ]);
  assert.ok(isUnder('/a/b', '/a'));
  assert.ok(isUnder('/a', '/a/'));
  assert.ok(!isUnder('/ab', '/a'));
});

test('stacked mounts on one point are unmounted last-first', () => {
  const text = `1 0 0:1 / / rw - ext4 x rw\n2 1 0:2 / /s/x rw - tmpfs a rw\n3 2 0:3 / /s/x rw - tmpfs b rw\n`;
  const order = mountsUnder(parseMountInfo(text), '/s');
  assert.deepEqual(order, ['/s/x', '/s/x']);
});
