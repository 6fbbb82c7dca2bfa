// Golden tests of the QEMU command-line builder: whole argv for a few descriptions, plus the
// validation that keeps bad names and paths out of QEMU's option syntax.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, HakoError } from '../../errors/index.js';
import type { VmDescription } from '../types.js';
import { buildQemuArgs, optValue } from './cmdline.js';

const base: VmDescription = {
  id: 'vm1',
  vcpus: 1,
  memoryMiB: 128,
  accel: { kind: 'tcg' },
  devices: [],
  runtimeDir: '/run/hako/sandboxes/vm1',
};

const HEAD = ['-nodefaults', '-no-user-config', '-nographic', '-no-reboot'];
const tail = (dir: string): string[] => [
  '-chardev', `socket,id=qmp,path=${dir}/qmp.sock,server=on,wait=off`,
  '-mon', 'chardev=qmp,mode=control',
  '-pidfile', `${dir}/qemu.pid`,
];

test('minimal TCG VM with no kernel and no devices', () => {
  assert.deepEqual(buildQemuArgs(base), [
    ...HEAD,
    '-name', 'guest=vm1',
    '-machine', 'q35',
    '-accel', 'tcg,thread=single',
    '-cpu', 'max',
    '-smp', '1',
    '-m', '128M',
    ...tail('/run/hako/sandboxes/vm1'),
  ]);
});

test('a sandbox VM per the guest contract', () => {
  const dir = '/run/hako/sandboxes/0123456789abcdef';
  const desc: VmDescription = {
    id: '0123456789abcdef',
    vcpus: 2,
    memoryMiB: 256,
    accel: { kind: 'tcg', tbSizeMiB: 64 },
    runtimeDir: dir,
    kernel: {
      path: '/var/cache/hako/kernel/abc/bzImage',
      params: ['console=ttyS0', 'root=/dev/vda', 'ro', 'rootfstype=ext4', 'init=/sbin/init', 'panic=-1', 'quiet', 'hako.debug=1'],
    },
    devices: [
      { kind: 'blk', id: 'root', path: '/var/cache/hako/root/def/root.img', readonly: true },
      { kind: 'serial-console', logPath: `${dir}/console.log` },
      { kind: 'virtio-serial-port', name: 'agent.channel.0', socketPath: `${dir}/agent.sock` },
      { kind: '9p', path: `${dir}/shared`, tag: 'hakoshare', readonly: true },
      { kind: 'rng' },
    ],
  };
  assert.deepEqual(buildQemuArgs(desc), [
    ...HEAD,
    '-name', 'guest=0123456789abcdef',
    '-machine', 'q35',
    '-accel', 'tcg,thread=multi,tb-size=64',
    '-cpu', 'max',
    '-smp', '2',
    '-m', '256M',
    '-kernel', '/var/cache/hako/kernel/abc/bzImage',
    '-append', 'console=ttyS0 root=/dev/vda ro rootfstype=ext4 init=/sbin/init panic=-1 quiet hako.debug=1',
    '-blockdev', 'driver=raw,node-name=blk-root,read-only=on,file.driver=file,file.filename=/var/cache/hako/root/def/root.img',
    '-device', 'virtio-blk-pci,drive=blk-root,id=vd-root',
    '-chardev', `socket,id=console,path=${dir}/console.sock,server=on,wait=off`,
    '-serial', 'chardev:console',
    '-device', 'virtio-serial-pci,id=vser0',
    '-chardev', `socket,id=port-agent.channel.0,path=${dir}/agent.sock,server=on,wait=off`,
    '-device', 'virtserialport,bus=vser0.0,chardev=port-agent.channel.0,name=agent.channel.0',
    '-fsdev', `local,id=fs-hakoshare,path=${dir}/shared,security_model=none,multidevs=remap,readonly=on`,
    '-device', 'virtio-9p-pci,fsdev=fs-hakoshare,mount_tag=hakoshare',
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', 'virtio-rng-pci,rng=rng0',
    ...tail(dir),
  ]);
});

test('KVM, initrd, writable disk, two ports on one controller, tap, vsock, commas escaped', () => {
  const desc: VmDescription = {
    ...base,
    id: 'kvm-vm',
    vcpus: 4,
    memoryMiB: 1024,
    accel: { kind: 'kvm' },
    runtimeDir: '/tmp/a,b',
    kernel: { path: '/k,1/bzImage', initrdPath: '/k,1/initrd', params: [] },
    devices: [
      { kind: 'virtio-serial-port', name: 'one', socketPath: '/tmp/a,b/one.sock' },
      { kind: 'blk', id: 'data', path: '/img,s/d.img', readonly: false },
      { kind: 'virtio-serial-port', name: 'two', socketPath: '/tmp/two.sock' },
      { kind: 'net-tap', ifname: 'tap0_kata', mac: '02:AB:cd:00:00:01' },
      { kind: 'vsock', cid: 3 },
      { kind: '9p', path: '/srv/rw', tag: 'rw', readonly: false },
    ],
  };
  assert.deepEqual(buildQemuArgs(desc), [
    ...HEAD,
    '-name', 'guest=kvm-vm',
    '-machine', 'q35',
    '-accel', 'kvm',
    '-cpu', 'host',
    '-smp', '4',
    '-m', '1024M',
    // -kernel and -initrd take their values verbatim: no comma doubling.
    '-kernel', '/k,1/bzImage',
    '-initrd', '/k,1/initrd',
    '-device', 'virtio-serial-pci,id=vser0',
    '-chardev', 'socket,id=port-one,path=/tmp/a,,b/one.sock,server=on,wait=off',
    '-device', 'virtserialport,bus=vser0.0,chardev=port-one,name=one',
    '-blockdev', 'driver=raw,node-name=blk-data,file.driver=file,file.filename=/img,,s/d.img',
    '-device', 'virtio-blk-pci,drive=blk-data,id=vd-data',
    '-chardev', 'socket,id=port-two,path=/tmp/two.sock,server=on,wait=off',
    '-device', 'virtserialport,bus=vser0.0,chardev=port-two,name=two',
    '-netdev', 'tap,id=net-tap0_kata,ifname=tap0_kata,script=no,downscript=no,vhost=off',
    '-device', 'virtio-net-pci,netdev=net-tap0_kata,mac=02:ab:cd:00:00:01,id=nic-tap0_kata',
    '-device', 'vhost-vsock-pci,guest-cid=3',
    '-fsdev', 'local,id=fs-rw,path=/srv/rw,security_model=none,multidevs=remap',
    '-device', 'virtio-9p-pci,fsdev=fs-rw,mount_tag=rw',
    '-chardev', 'socket,id=qmp,path=/tmp/a,,b/qmp.sock,server=on,wait=off',
    '-mon', 'chardev=qmp,mode=control',
    '-pidfile', '/tmp/a,b/qemu.pid',
  ]);
});

test('explicit TCG thread choice is kept', () => {
  const args = buildQemuArgs({ ...base, vcpus: 2, accel: { kind: 'tcg', thread: 'single' } });
  assert.equal(args[args.indexOf('-accel') + 1], 'tcg,thread=single');
});

test('optValue doubles commas and nothing else', () => {
  assert.equal(optValue('/a,b,,c'), '/a,,b,,,,c');
  assert.equal(optValue('/plain/path'), '/plain/path');
});

const rejects = (desc: VmDescription, pattern: RegExp): void => {
  assert.throws(
    () => buildQemuArgs(desc),
    (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT && pattern.test(e.message),
  );
};

test('bad names, paths and sizes are rejected with the field named', () => {
  rejects({ ...base, id: 'bad,id' }, /id "bad,id" must match/);
  rejects({ ...base, id: '' }, /id "" must match/);
  rejects({ ...base, vcpus: 0 }, /vcpus 0/);
  rejects({ ...base, memoryMiB: 1.5 }, /memoryMiB 1.5/);
  rejects({ ...base, runtimeDir: 'relative/dir' }, /runtimeDir "relative\/dir" must be absolute/);
  rejects({ ...base, runtimeDir: '/x'.repeat(60) }, /QMP socket .* longer than 107 bytes/);
  // qmp.sock still fits in this runtimeDir, console.sock does not.
  const longDir = `/${'x'.repeat(97)}`;
  assert.ok(buildQemuArgs({ ...base, runtimeDir: longDir }).length > 0);
  rejects({ ...base, runtimeDir: longDir, devices: [{ kind: 'serial-console', logPath: '/c.log' }] }, /console socket .* longer than 107 bytes/);
  rejects({ ...base, kernel: { path: '/k', params: ['a b'] } }, /kernel param "a b"/);
  rejects({ ...base, kernel: { path: '/k', params: ['x="y"'] } }, /kernel param/);
  rejects({ ...base, kernel: { path: '/k', params: ['x'.repeat(2048)] } }, /kernel command line is 2048 bytes/);
  rejects({ ...base, accel: { kind: 'tcg', tbSizeMiB: 0 } }, /tbSizeMiB 0/);
  rejects({ ...base, accel: { kind: 'hvf' } as never }, /accel.kind "hvf"/);
  rejects({ ...base, devices: [{ kind: 'blk', id: 'a=b', path: '/x', readonly: true }] }, /devices\[0\].id "a=b"/);
  rejects({ ...base, devices: [{ kind: 'blk', id: 'x'.repeat(25), path: '/x', readonly: true }] }, /devices\[0\].id/);
  rejects({ ...base, devices: [{ kind: 'blk', id: 'a', path: '/x\ny', readonly: true }] }, /control characters/);
  rejects({ ...base, devices: [{ kind: '9p', path: '/x', tag: 'tag,x', readonly: true }] }, /tag "tag,x"/);
  rejects({ ...base, devices: [{ kind: 'virtio-serial-port', name: 'p', socketPath: '/s'.repeat(60) }] }, /unix socket limit/);
  rejects({ ...base, devices: [{ kind: 'net-tap', ifname: 'tap0', mac: '01:00:00:00:00:01' }] }, /multicast/);
  rejects({ ...base, devices: [{ kind: 'net-tap', ifname: 'this-name-is-too-long', mac: '02:00:00:00:00:01' }] }, /ifname/);
  rejects({ ...base, devices: [{ kind: 'vsock', cid: 2 }] }, /cid 2/);
  rejects({ ...base, devices: [{ kind: 'floppy' } as never] }, /"floppy" is not a known device kind/);
});

test('duplicates are rejected and every problem is reported at once', () => {
  rejects(
    {
      ...base,
      devices: [
        { kind: 'blk', id: 'root', path: '/a', readonly: true },
        { kind: 'blk', id: 'root', path: '/b', readonly: true },
        { kind: '9p', path: '/a', tag: 't', readonly: true },
        { kind: '9p', path: '/b', tag: 't', readonly: true },
        { kind: 'virtio-serial-port', name: 'p1', socketPath: '/s' },
        { kind: 'virtio-serial-port', name: 'p2', socketPath: '/s' },
        { kind: 'rng' },
        { kind: 'rng' },
      ],
    },
    /duplicate blk id "root"; duplicate 9p tag "t"; duplicate socket path "\/s"; at most one rng device/,
  );
});

test('a template VM: RAM in a shared file, vmgenid', () => {
  const dir = '/run/hako/factory/templates/.build-1/vm';
  const args = buildQemuArgs({
    ...base, runtimeDir: dir, memoryMiB: 256,
    memory: { kind: 'file', path: '/run/hako/factory/templates/.build-1/ram', shared: true },
    devices: [{ kind: 'rng' }, { kind: 'vmgenid' }],
  });
  assert.deepEqual(args, [
    ...HEAD,
    '-name', 'guest=vm1',
    '-machine', 'q35,memory-backend=ram0',
    '-accel', 'tcg,thread=single',
    '-cpu', 'max',
    '-smp', '1',
    '-m', '256M',
    '-object', 'memory-backend-file,id=ram0,size=256M,mem-path=/run/hako/factory/templates/.build-1/ram,share=on',
    '-object', 'rng-random,id=rng0,filename=/dev/urandom',
    '-device', 'virtio-rng-pci,rng=rng0',
    '-device', 'vmgenid,id=vmgenid0,guid=auto',
    ...tail(dir),
  ]);
});

test('a clone: private copy-on-write RAM from the template file, waiting for its state', () => {
  const args = buildQemuArgs({ ...base, memory: { kind: 'file', path: '/t,x/ram', shared: false }, incoming: true });
  assert.equal(args[args.indexOf('-object') + 1], 'memory-backend-file,id=ram0,size=128M,mem-path=/t,,x/ram,share=off');
  assert.deepEqual(args.slice(-2), ['-incoming', 'defer']);
  rejects({ ...base, memory: { kind: 'file', path: 'ram', shared: false } }, /memory.path "ram" must be absolute/);
  rejects({ ...base, devices: [{ kind: 'vmgenid' }, { kind: 'vmgenid' }] }, /at most one vmgenid device/);
});
