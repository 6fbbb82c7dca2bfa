// Unit tests of the template key and the device signature: every input a saved VM depends on
// changes the key, and the per-sandbox paths that may differ between a template and its clones do not.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../config/index.js';
import { templateKey } from './key.js';
import { deviceSignature, sandboxVmDescription, type VmRecipe } from './recipe.js';

function recipe(over: Partial<VmRecipe> = {}): VmRecipe {
  const config = defaultConfig();
  // The key names the hypervisor binary by path, size and mtime: any existing file will do here.
  config.hypervisor.path = process.execPath;
  return {
    config,
    assets: { kernel: '/cache/kernel/k1/bzImage', rootImage: '/cache/root/r1/root.img', busyboxLayout: '/b', busyboxArchive: '/b.tar' },
    vcpus: 1,
    memoryMiB: 256,
    accel: { kind: 'tcg', tbSizeMiB: 32 },
    ...over,
  };
}

test('the key is stable and changes with every input', async () => {
  const base = await templateKey(recipe());
  assert.match(base.key, /^[0-9a-f]{64}$/);
  assert.equal((await templateKey(recipe())).key, base.key);
  assert.equal(base.inputs.memoryMiB, 256);
  const variants: VmRecipe[] = [
    recipe({ memoryMiB: 512 }),
    recipe({ vcpus: 2 }),
    recipe({ accel: { kind: 'tcg', tbSizeMiB: 64 } }),
    recipe({ assets: { ...recipe().assets, kernel: '/cache/kernel/k2/bzImage' } }),
    recipe({ assets: { ...recipe().assets, rootImage: '/cache/root/r2/root.img' } }),
  ];
  const withParams = recipe();
  withParams.config.hypervisor.kernelParams = ['loglevel=7'];
  variants.push(withParams);
  const otherQemu = recipe();
  otherQemu.config.hypervisor.path = '/bin/sh';
  variants.push(otherQemu);
  const keys = new Set([base.key]);
  for (const v of variants) keys.add((await templateKey(v)).key);
  assert.equal(keys.size, variants.length + 1, 'each variant has its own key');
});

test('a template and its clone have the same device signature despite their own paths', () => {
  const r = recipe();
  const tpl = sandboxVmDescription('hako-template', r, '/run/hako/factory/templates/.build-1/vm', { memory: { kind: 'file', path: '/t/ram', shared: true } });
  const clone = sandboxVmDescription('abc', r, '/run/hako/sandboxes/abc/vm', { memory: { kind: 'file', path: '/t/ram', shared: false }, incoming: true });
  assert.notDeepEqual(tpl.devices, clone.devices);
  assert.equal(deviceSignature(tpl), deviceSignature(clone));
  assert.deepEqual(clone.devices.map((d) => d.kind), ['blk', '9p', 'serial-console', 'virtio-serial-port', 'rng', 'vmgenid', 'nic-slots']);
  const bigger = sandboxVmDescription('abc', recipe({ memoryMiB: 512 }), '/x/vm');
  assert.notEqual(deviceSignature(bigger), deviceSignature(clone));
});
