// Unit test for pruneAssets on a scratch cache: old keys and dead builders'
// temporaries go, the current keys and live builders' temporaries stay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nullLogger } from '../log/index.js';
import { kernelInputs } from './kernel.js';
import { pruneAssets } from './prune.js';
import { rootInputs } from './root-image.js';

test('pruneAssets keeps current assets and live temporaries, removes the rest', async () => {
  const cache = await mkdtemp(join(tmpdir(), 'hako-prune-'));
  try {
    const agentFile = join(cache, 'agent.mjs');
    await writeFile(agentFile, '// test agent\n');
    const kernel = (await kernelInputs()).hash;
    const root = (await rootInputs({ agentFile })).hash;
    const dead = 4_000_000; // a pid that is not running on this machine
    const dirs = [
      `kernel/${kernel}`, 'kernel/0000old', `kernel/${kernel}.tmp-${dead}-abcd`,
      `root/${root}`, 'root/1111old', `root/${root}.tmp-${process.pid}-beef`,
      `images/.busybox-x.tmp-${dead}-0123`,
    ];
    for (const d of dirs) await mkdir(join(cache, d), { recursive: true });
    const removed = await pruneAssets({ log: nullLogger, cacheDir: cache, agentFile });
    assert.deepEqual(removed.map((p) => p.slice(cache.length + 1)).sort(), [
      'images/.busybox-x.tmp-4000000-0123', `kernel/${kernel}.tmp-4000000-abcd`, 'kernel/0000old', 'root/1111old',
    ].sort());
    assert.deepEqual((await readdir(join(cache, 'kernel'))), [kernel]);
    assert.deepEqual((await readdir(join(cache, 'root'))).sort(), [root, `${root}.tmp-${process.pid}-beef`].sort());
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
});
