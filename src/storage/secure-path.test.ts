// Unit tests of path resolution inside a root: symlinks never lead out of it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanRelative, secureJoin } from './secure-path.js';
import { findCommand } from './find-command.js';

test('secureJoin keeps every path inside the root', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hako-sj-'));
  try {
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await symlink('usr/bin', join(root, 'bin'));
    await symlink('/etc', join(root, 'abs'));
    await symlink('../../../../..', join(root, 'up'));
    await symlink('loop2', join(root, 'loop1'));
    await symlink('loop1', join(root, 'loop2'));
    assert.equal(await secureJoin(root, 'bin/sh'), join(root, 'usr/bin/sh'));
    assert.equal(await secureJoin(root, '/abs/passwd'), join(root, 'etc/passwd'));
    assert.equal(await secureJoin(root, 'up/etc/shadow'), join(root, 'etc/shadow'));
    assert.equal(await secureJoin(root, '../../../etc'), join(root, 'etc'));
    assert.equal(await secureJoin(root, ''), root);
    await assert.rejects(secureJoin(root, 'loop1/x'), /too many levels of symbolic links/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('cleanRelative strips ./ and / and refuses ..', () => {
  assert.equal(cleanRelative('./a/b/'), 'a/b');
  assert.equal(cleanRelative('/a//./b'), 'a/b');
  assert.equal(cleanRelative('./'), '');
  assert.equal(cleanRelative('a/../../b'), null);
});

test('findCommand searches PATH inside the rootfs through symlinks', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hako-fc-'));
  try {
    await mkdir(join(root, 'bin'), { recursive: true });
    await writeFile(join(root, 'bin/busybox'), '#!');
    await chmod(join(root, 'bin/busybox'), 0o755);
    await symlink('busybox', join(root, 'bin/sh'));
    await symlink('/bin/busybox', join(root, 'bin/ls'));
    await writeFile(join(root, 'bin/noexec'), 'x');
    const path = '/usr/bin:/bin';
    assert.equal(await findCommand(root, 'sh', path), '/bin/sh');
    assert.equal(await findCommand(root, 'ls', path), '/bin/ls');
    assert.equal(await findCommand(root, '/bin/busybox', path), '/bin/busybox');
    assert.equal(await findCommand(root, 'noexec', path), null);
    assert.equal(await findCommand(root, 'nosuch', path), null);
    assert.equal(await findCommand(root, 'bin/sh', path, '/'), '/bin/sh');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
