// Unit tests for the ldd output parser used to pick the guest root's libraries.
// A missing library must fail the build instead of yielding a guest that cannot run node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLdd } from './libs.js';

const NODE_LDD = `	linux-vdso.so.1 (0x00007ffd7b5e2000)
	libdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f063aabc000)
	libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f063a800000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f063a53e000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f063aad7000)
`;

test('parseLdd returns libraries and the loader, skipping the vDSO', () => {
  assert.deepEqual(parseLdd(NODE_LDD, 'node'), [
    '/lib/x86_64-linux-gnu/libdl.so.2',
    '/lib/x86_64-linux-gnu/libstdc++.so.6',
    '/lib/x86_64-linux-gnu/libc.so.6',
    '/lib64/ld-linux-x86-64.so.2',
  ]);
});

test('parseLdd fails on an unresolved library', () => {
  assert.throws(() => parseLdd('\tlibfoo.so.1 => not found\n', '/usr/bin/x'), /libfoo\.so\.1 => not found/);
});

test('parseLdd accepts a static binary', () => {
  assert.deepEqual(parseLdd('\tnot a dynamic executable\n\tstatically linked\n', 'busybox'), []);
});
