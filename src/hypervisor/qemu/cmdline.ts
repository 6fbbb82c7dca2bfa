// The one builder from a VmDescription to QEMU's argv, in a fixed order pinned by golden tests:
// flags, name, machine, accel, cpu, smp, memory, kernel, devices in description order, QMP, pidfile, incoming.

import { Code, errorf } from '../../errors/index.js';
import type { Accel, Device, VmDescription } from '../types.js';
import { checkSocketPath, validateDescription } from '../validate.js';
import { qemuRuntimeFiles } from './runtime-files.js';

/** QMP_CHARDEV_ID is the chardev id of the QMP monitor socket. */
export const QMP_CHARDEV_ID = 'qmp';

/** VIRTIO_SERIAL_BUS is the id of the virtio-serial controller that carries every port. */
export const VIRTIO_SERIAL_BUS = 'vser0';

/** RAM_BACKEND_ID names the memory backend object of a VM whose RAM is in a file. */
export const RAM_BACKEND_ID = 'ram0';

/**
 * optValue escapes a value for QEMU's `key=value,...` option syntax, where a literal comma
 * is written `,,`. Use it for every free-form value (paths) inside such an option.
 */
export function optValue(value: string): string {
  return value.replaceAll(',', ',,');
}

/** opts joins a driver name and key/value pairs into one option string; values are escaped. */
function opts(head: string, pairs: Array<[string, string | number]>): string {
  return [head, ...pairs.map(([k, v]) => `${k}=${optValue(String(v))}`)].join(',');
}

/**
 * buildQemuArgs turns a description into qemu-system-x86_64's argv (without the binary).
 * It validates the description first and throws INVALID_ARGUMENT on any problem.
 */
export function buildQemuArgs(desc: VmDescription): string[] {
  validateDescription(desc);
  const files = qemuRuntimeFiles(desc.runtimeDir);
  checkSocketPath(files.qmpSocket, 'QMP socket (runtimeDir/qmp.sock)', (msg) => {
    throw errorf(Code.INVALID_ARGUMENT, `invalid VM description: ${msg}`);
  });
  if (desc.devices.some((d) => d.kind === 'serial-console')) {
    checkSocketPath(files.consoleSocket, 'console socket (runtimeDir/console.sock)', (msg) => {
      throw errorf(Code.INVALID_ARGUMENT, `invalid VM description: ${msg}`);
    });
  }

  const args: string[] = [
    // No default devices, no /etc/qemu config, no display; a guest reboot ends QEMU,
    // so a panicking guest (panic=-1) surfaces as an exit rather than a silent reboot.
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-no-reboot',
    '-name', `guest=${desc.id}`,
    '-machine', desc.memory === undefined ? 'q35' : `q35,memory-backend=${RAM_BACKEND_ID}`,
    '-accel', accelArg(desc.accel, desc.vcpus),
    // TCG's `max` has every feature TCG emulates; `host` passes the real CPU through under KVM.
    '-cpu', desc.accel.kind === 'kvm' ? 'host' : 'max',
    '-smp', String(desc.vcpus),
    '-m', `${desc.memoryMiB}M`,
  ];
  if (desc.memory !== undefined) {
    args.push('-object', opts('memory-backend-file', [
      ['id', RAM_BACKEND_ID], ['size', `${desc.memoryMiB}M`], ['mem-path', desc.memory.path], ['share', desc.memory.shared ? 'on' : 'off'],
    ]));
  }
  if (desc.kernel !== undefined) {
    // -kernel, -initrd and -append take their value verbatim: no comma escaping here.
    args.push('-kernel', desc.kernel.path);
    if (desc.kernel.initrdPath !== undefined) args.push('-initrd', desc.kernel.initrdPath);
    if (desc.kernel.params.length > 0) args.push('-append', desc.kernel.params.join(' '));
  }

  let serialBus = false;
  for (const dev of desc.devices) {
    if (dev.kind === 'virtio-serial-port' && !serialBus) {
      args.push('-device', opts('virtio-serial-pci', [['id', VIRTIO_SERIAL_BUS]]));
      serialBus = true;
    }
    args.push(...deviceArgs(dev, files.consoleSocket));
  }

  args.push(
    '-chardev', opts('socket', [['id', QMP_CHARDEV_ID], ['path', files.qmpSocket], ['server', 'on'], ['wait', 'off']]),
    '-mon', `chardev=${QMP_CHARDEV_ID},mode=control`,
    // -pidfile takes its value verbatim.
    '-pidfile', files.pidFile,
  );
  // `defer`: the state is fed over QMP (migrate-incoming) once the driver is connected.
  if (desc.incoming === true) args.push('-incoming', 'defer');
  return args;
}

/** nicSlotId names hot-plug slot i (a pcie-root-port) for device_add's `bus`. */
export function nicSlotId(i: number): string {
  return `nicslot${i}`;
}

/** nicIds are the QEMU ids of the netdev and the NIC on tap ifname. */
export function nicIds(ifname: string): { netdev: string; device: string } {
  return { netdev: `net-${ifname}`, device: `nic-${ifname}` };
}

function accelArg(accel: Accel, vcpus: number): string {
  if (accel.kind === 'kvm') return 'kvm';
  const thread = accel.thread ?? (vcpus > 1 ? 'multi' : 'single');
  const pairs: Array<[string, string | number]> = [['thread', thread]];
  if (accel.tbSizeMiB !== undefined) pairs.push(['tb-size', accel.tbSizeMiB]);
  return opts('tcg', pairs);
}

function deviceArgs(dev: Device, consoleSocket: string): string[] {
  switch (dev.kind) {
    case 'blk': {
      const node = `blk-${dev.id}`;
      const ro: Array<[string, string]> = dev.readonly ? [['read-only', 'on']] : [];
      return [
        '-blockdev', opts('driver=raw', [['node-name', node], ...ro, ['file.driver', 'file'], ['file.filename', dev.path]]),
        '-device', opts('virtio-blk-pci', [['drive', node], ['id', `vd-${dev.id}`]]),
      ];
    }
    case '9p': {
      const fsdev = `fs-${dev.tag}`;
      const ro: Array<[string, string]> = dev.readonly ? [['readonly', 'on']] : [];
      return [
        // multidevs=remap keeps inode numbers unique when the share holds bind mounts of
        // several host filesystems (each container's rootfs), instead of QEMU warning and colliding.
        '-fsdev', opts('local', [['id', fsdev], ['path', dev.path], ['security_model', 'none'], ['multidevs', 'remap'], ...ro]),
        '-device', opts('virtio-9p-pci', [['fsdev', fsdev], ['mount_tag', dev.tag]]),
      ];
    }
    case 'serial-console':
      // Not `-chardev file`: the guest could grow that file without limit. The driver reads this
      // socket into dev.logPath with a cap; with wait=off QEMU drops output while nobody reads.
      return [
        '-chardev', opts('socket', [['id', 'console'], ['path', consoleSocket], ['server', 'on'], ['wait', 'off']]),
        '-serial', 'chardev:console',
      ];
    case 'virtio-serial-port': {
      const chardev = `port-${dev.name}`;
      return [
        '-chardev', opts('socket', [['id', chardev], ['path', dev.socketPath], ['server', 'on'], ['wait', 'off']]),
        '-device', opts('virtserialport', [['bus', `${VIRTIO_SERIAL_BUS}.0`], ['chardev', chardev], ['name', dev.name]]),
      ];
    }
    case 'rng':
      return [
        '-object', opts('rng-random', [['id', 'rng0'], ['filename', '/dev/urandom']]),
        '-device', opts('virtio-rng-pci', [['rng', 'rng0']]),
      ];
    case 'net-tap': {
      const ids = nicIds(dev.ifname);
      return [
        '-netdev', opts('tap', [['id', ids.netdev], ['ifname', dev.ifname], ['script', 'no'], ['downscript', 'no'], ['vhost', dev.vhost === true ? 'on' : 'off']]),
        '-device', opts('virtio-net-pci', [['netdev', ids.netdev], ['mac', dev.mac.toLowerCase()], ['id', ids.device]]),
      ];
    }
    case 'nic-slots': {
      const out: string[] = [];
      for (let i = 0; i < dev.count; i++) {
        out.push('-device', opts('pcie-root-port', [['id', nicSlotId(i)], ['chassis', i + 1], ['bus', 'pcie.0']]));
      }
      return out;
    }
    case 'vsock':
      return ['-device', opts('vhost-vsock-pci', [['guest-cid', dev.cid]])];
    case 'vmgenid':
      // auto: a fresh random id in every QEMU process, a restored clone included.
      return ['-device', opts('vmgenid', [['id', 'vmgenid0'], ['guid', 'auto']])];
  }
}
