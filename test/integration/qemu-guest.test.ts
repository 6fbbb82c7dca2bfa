// Integration test with a real guest kernel: a guest that panics ends QEMU (-no-reboot) and the
// driver reports guest-reset, with the kernel's output in the console log.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QemuHypervisor, type QemuVm } from '../../src/hypervisor/qemu/index.js';
import { ensureAssets } from '../../src/image/index.js';
import { nullLogger } from '../../src/log/index.js';

// HAKO_TEST_KERNEL names a bzImage; otherwise the current guest kernel (built by setup, cached).
async function findKernel(): Promise<string> {
  const env = process.env.HAKO_TEST_KERNEL;
  if (env !== undefined && env !== '') return env;
  return (await ensureAssets({ log: nullLogger })).kernel;
}

const kernel = await findKernel();
const root = await mkdtemp(join(tmpdir(), 'hako-qemu-guest-'));
let vm: QemuVm | undefined;

after(async () => {
  await vm?.stop({ timeoutMs: 1000 }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

test('a panicking guest ends QEMU as guest-reset', async () => {
  const dir = join(root, 'vm');
  const consoleLog = join(dir, 'console.log');
  vm = await new QemuHypervisor().start({
    id: 'panic',
    vcpus: 1,
    memoryMiB: 128,
    accel: { kind: 'tcg', tbSizeMiB: 32 },
    runtimeDir: dir,
    // No root device: the kernel cannot mount root, panics, and panic=-1 reboots at once.
    kernel: { path: kernel!, params: ['console=ttyS0', 'root=/dev/vda', 'panic=-1'] },
    devices: [{ kind: 'serial-console', logPath: consoleLog }],
  });
  const t0 = Date.now();
  const exit = await Promise.race([
    vm.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('guest did not panic within 60 s')), 60_000).unref()),
  ]);
  assert.equal(exit.reason, 'guest-reset', exit.detail);
  assert.equal(exit.code, 0);
  const text = await readFile(consoleLog, 'utf8');
  assert.match(text, /Linux version/);
  assert.match(text, /Kernel panic/);
  assert.ok(!existsSync(join(dir, 'qemu.pid')));
  assert.ok(!existsSync(join(dir, 'console.sock')), 'the console socket is removed with the VM');
  assert.ok(Date.now() - t0 < 60_000);
});
