// Unit tests of the assets index: it answers only while every input is unchanged and every
// asset exists, so a changed agent (or anything else) goes the full way again.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readIndex, writeIndex } from './assets-index.js';
import { cacheLayout } from './paths.js';

const dir = await mkdtemp(join(tmpdir(), 'hako-assets-index-'));
after(() => rm(dir, { recursive: true, force: true }));

test('the index returns the assets until an input or an asset changes', async () => {
  const layout = cacheLayout(dir);
  const agent = join(dir, 'agent.mjs');
  await writeFile(agent, 'agent v1');
  const assets = { kernel: join(dir, 'k'), rootImage: join(dir, 'r'), busyboxLayout: join(dir, 'b'), busyboxArchive: join(dir, 'b.tar') };
  for (const p of Object.values(assets)) await writeFile(p, 'x');
  const lib = join(dir, 'libfake.so');
  await writeFile(lib, 'lib');
  assert.equal(await readIndex(layout, { agentFile: agent }), undefined, 'nothing remembered yet');
  await writeIndex(layout, { assets, libraries: [lib] }, { agentFile: agent });
  assert.deepEqual((await readIndex(layout, { agentFile: agent }))?.assets, assets);
  assert.equal(await readIndex(layout), undefined, 'the default agent has its own entry');
  assert.equal(await readIndex(layout, { agentFile: agent, accel: 'kvm' }), undefined, 'so has another accelerator');

  await utimes(agent, new Date(), new Date(Date.now() + 5000));
  assert.equal(await readIndex(layout, { agentFile: agent }), undefined, 'a changed agent is not the remembered one');
  await writeIndex(layout, { assets, libraries: [lib] }, { agentFile: agent });
  await writeFile(lib, 'library v2');
  assert.equal(await readIndex(layout, { agentFile: agent }), undefined, 'a changed library too');
  await writeIndex(layout, { assets, libraries: [lib] }, { agentFile: agent });
  await rm(assets.rootImage);
  assert.equal(await readIndex(layout, { agentFile: agent }), undefined, 'a missing asset too');
});
