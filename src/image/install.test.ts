// Unit tests for atomic asset installation: the directory appears complete or not
// at all, a rebuild replaces it, and a failed fill leaves nothing behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installDir } from './install.js';

test('installDir installs, replaces, and cleans up after a failed fill', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hako-install-'));
  try {
    const target = join(dir, 'asset');
    await installDir(target, (tmp) => writeFile(join(tmp, 'f'), 'one'));
    assert.equal(await readFile(join(target, 'f'), 'utf8'), 'one');
    await installDir(target, (tmp) => writeFile(join(tmp, 'f'), 'two'));
    assert.equal(await readFile(join(target, 'f'), 'utf8'), 'two');
    await assert.rejects(installDir(target, async () => { throw new Error('boom'); }), /boom/);
    assert.equal(await readFile(join(target, 'f'), 'utf8'), 'two');
    assert.deepEqual(await readdir(dir), ['asset']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
