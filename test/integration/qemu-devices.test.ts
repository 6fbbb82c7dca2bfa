// Integration test: every device kind the guest contract uses, as built by the command-line
// builder, is accepted by real QEMU 7.2 and shows up on the PCI bus (no guest kernel needed).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdir, mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QemuHypervisor, qemuRuntimeFiles, type QemuVm } from '../../src/hypervisor/qemu/index.js';

// The comma in the directory name exercises QEMU's `,,` escaping on every path option.
const root = await mkdtemp(join(tmpdir(), 'hako-qemu-dev,'));
let vm: QemuVm | undefined;

after(async () => {
  await vm?.stop({ timeoutMs: 1000 }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

interface PciDevice {
  id: { vendor: number; device: number };
  qdev_id: string;
  class_info: { desc?: string };
}

test('contract devices start under QEMU and appear on PCI', async () => {
  const dir = join(root, 'vm');
  const img = join(root, 'root,img');
  const share = join(root, 'share,d');
  await writeFile(img, '');
  await truncate(img, 1 << 20);
  await mkdir(share);
  vm = await new QemuHypervisor().start({
    id: 'devices',
    vcpus: 1,
    memoryMiB: 64,
    accel: { kind: 'tcg', tbSizeMiB: 32 },
    runtimeDir: dir,
    devices: [
      { kind: 'blk', id: 'root', path: img, readonly: true },
      { kind: 'serial-console', logPath: join(dir, 'console,log') },
      { kind: 'virtio-serial-port', name: 'agent.channel.0', socketPath: join(dir, 'agent.sock') },
      { kind: '9p', path: share, tag: 'hakoshare', readonly: false },
      { kind: 'rng' },
    ],
  });

  const buses = await vm.qmp<Array<{ devices: PciDevice[] }>>('query-pci');
  // Red Hat / virtio vendor 0x1af4; transitional device ids: 0x1001 blk, 0x1003 console, 0x1005 rng, 0x1009 9p.
  const virtio = buses.flatMap((b) => b.devices).filter((d) => d.id.vendor === 0x1af4).map((d) => d.id.device);
  assert.deepEqual(virtio, [0x1001, 0x1003, 0x1009, 0x1005], 'PCI order follows the description order');

  const chardevs = await vm.qmp<Array<{ label: string; filename: string }>>('query-chardev');
  const byLabel = new Map(chardevs.map((c) => [c.label, c.filename]));
  assert.match(byLabel.get('port-agent.channel.0') ?? '', /agent\.sock/);
  assert.ok(byLabel.has('console'));

  // The agent socket is QEMU's listener, 0600, and accepts the host's connection.
  assert.equal((await stat(join(dir, 'agent.sock'))).mode & 0o777, 0o600);
  assert.equal((await stat(qemuRuntimeFiles(dir).qmpSocket)).mode & 0o777, 0o600);
  assert.equal((await stat(qemuRuntimeFiles(dir).consoleSocket)).mode & 0o777, 0o600);
  assert.match(byLabel.get('console') ?? '', /console\.sock/);
  await new Promise<void>((resolve, reject) => {
    const s = connect(join(dir, 'agent.sock'), () => {
      s.destroy();
      resolve();
    });
    s.on('error', reject);
  });
  // The driver created the console log (0600) under its comma-containing name and copies into it.
  assert.equal((await stat(join(dir, 'console,log'))).mode & 0o777, 0o600);

  const exit = await vm.stop();
  assert.equal(exit.stoppedBy, 'quit');
});
