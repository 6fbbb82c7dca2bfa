// Checks a VmDescription before any driver turns it into a process: names, paths, sizes, duplicates.
// Driver-neutral; a driver may add its own checks (QEMU escapes commas itself).

import { Code, errorf } from '../errors/index.js';
import type { Device, VmDescription } from './types.js';

/** MAX_SOCKET_PATH is the longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
export const MAX_SOCKET_PATH = 107;

/** MAX_KERNEL_CMDLINE is x86's COMMAND_LINE_SIZE minus the NUL. */
export const MAX_KERNEL_CMDLINE = 2047;

const VM_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
// Block ids become QEMU node names (`blk-<id>`), which QEMU caps at 31 bytes.
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,23}$/;
const NINEP_TAG = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,30}$/;
const PORT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
// Kernel words: printable ASCII without space or quote (the kernel's own quoting is not supported).
const KERNEL_PARAM = /^[\x21\x23-\x7e]+$/;
// Control characters (and DEL) have no business in a path handed to another program.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/** validateDescription throws INVALID_ARGUMENT naming every problem it finds in desc. */
export function validateDescription(desc: VmDescription): void {
  const problems: string[] = [];
  const bad = (msg: string): void => void problems.push(msg);

  if (typeof desc.id !== 'string' || !VM_ID.test(desc.id)) bad(`id ${JSON.stringify(desc.id)} must match ${VM_ID}`);
  if (!Number.isInteger(desc.vcpus) || desc.vcpus < 1 || desc.vcpus > 64) bad(`vcpus ${desc.vcpus} must be an integer 1..64`);
  if (!Number.isInteger(desc.memoryMiB) || desc.memoryMiB < 16 || desc.memoryMiB > 1 << 20) {
    bad(`memoryMiB ${desc.memoryMiB} must be an integer 16..1048576`);
  }
  checkPath(desc.runtimeDir, 'runtimeDir', bad);

  if (desc.kernel !== undefined) {
    checkPath(desc.kernel.path, 'kernel.path', bad);
    if (desc.kernel.initrdPath !== undefined) checkPath(desc.kernel.initrdPath, 'kernel.initrdPath', bad);
    for (const p of desc.kernel.params) {
      if (typeof p !== 'string' || !KERNEL_PARAM.test(p)) bad(`kernel param ${JSON.stringify(p)} must be printable with no space or quote`);
    }
    const len = desc.kernel.params.join(' ').length;
    if (len > MAX_KERNEL_CMDLINE) bad(`kernel command line is ${len} bytes, more than ${MAX_KERNEL_CMDLINE}`);
  }

  const accel = desc.accel;
  if (accel?.kind === 'tcg') {
    if (accel.thread !== undefined && accel.thread !== 'single' && accel.thread !== 'multi') bad(`accel.thread ${JSON.stringify(accel.thread)} must be single or multi`);
    if (accel.tbSizeMiB !== undefined && (!Number.isInteger(accel.tbSizeMiB) || accel.tbSizeMiB < 1 || accel.tbSizeMiB > 4096)) {
      bad(`accel.tbSizeMiB ${accel.tbSizeMiB} must be an integer 1..4096`);
    }
  } else if (accel?.kind !== 'kvm') {
    bad(`accel.kind ${JSON.stringify((accel as { kind?: unknown } | undefined)?.kind)} must be kvm or tcg`);
  }

  if (desc.memory !== undefined) {
    if (desc.memory.kind !== 'file') bad(`memory.kind ${JSON.stringify((desc.memory as { kind?: unknown }).kind)} must be file`);
    checkPath(desc.memory.path, 'memory.path', bad);
    if (typeof desc.memory.shared !== 'boolean') bad('memory.shared must be a boolean');
  }
  if (desc.incoming !== undefined && typeof desc.incoming !== 'boolean') bad('incoming must be a boolean');

  if (!Array.isArray(desc.devices)) bad('devices must be an array');
  else checkDevices(desc.devices, bad);

  if (problems.length > 0) throw errorf(Code.INVALID_ARGUMENT, `invalid VM description: ${problems.join('; ')}`);
}

/** MAX_NIC_SLOTS bounds the hot-plug slots of one VM. */
export const MAX_NIC_SLOTS = 16;

function checkDevices(devices: Device[], bad: (msg: string) => void): void {
  const seen = new Map<string, Set<string>>();
  const unique = (space: string, value: string, what: string): void => {
    let set = seen.get(space);
    if (set === undefined) seen.set(space, (set = new Set()));
    if (set.has(value)) bad(`duplicate ${what} ${JSON.stringify(value)}`);
    set.add(value);
  };
  const counts: Partial<Record<Device['kind'], number>> = {};

  devices.forEach((dev, i) => {
    const at = `devices[${i}]`;
    counts[dev.kind] = (counts[dev.kind] ?? 0) + 1;
    switch (dev.kind) {
      case 'blk':
        if (typeof dev.id !== 'string' || !DEVICE_ID.test(dev.id)) bad(`${at}.id ${JSON.stringify(dev.id)} must match ${DEVICE_ID}`);
        else unique('blk', dev.id, 'blk id');
        checkPath(dev.path, `${at}.path`, bad);
        if (typeof dev.readonly !== 'boolean') bad(`${at}.readonly must be a boolean`);
        break;
      case '9p':
        if (typeof dev.tag !== 'string' || !NINEP_TAG.test(dev.tag)) bad(`${at}.tag ${JSON.stringify(dev.tag)} must match ${NINEP_TAG}`);
        else unique('9p', dev.tag, '9p tag');
        checkPath(dev.path, `${at}.path`, bad);
        if (typeof dev.readonly !== 'boolean') bad(`${at}.readonly must be a boolean`);
        break;
      case 'serial-console':
        checkPath(dev.logPath, `${at}.logPath`, bad);
        break;
      case 'virtio-serial-port':
        if (typeof dev.name !== 'string' || !PORT_NAME.test(dev.name)) bad(`${at}.name ${JSON.stringify(dev.name)} must match ${PORT_NAME}`);
        else unique('port', dev.name, 'virtio-serial port name');
        checkSocketPath(dev.socketPath, `${at}.socketPath`, bad);
        if (typeof dev.socketPath === 'string') unique('socket', dev.socketPath, 'socket path');
        break;
      case 'rng':
        break;
      case 'net-tap':
        if (typeof dev.ifname !== 'string' || !IFNAME.test(dev.ifname)) bad(`${at}.ifname ${JSON.stringify(dev.ifname)} must match ${IFNAME}`);
        else unique('ifname', dev.ifname, 'tap ifname');
        if (typeof dev.mac !== 'string' || !MAC.test(dev.mac)) bad(`${at}.mac ${JSON.stringify(dev.mac)} must look like aa:bb:cc:dd:ee:ff`);
        else if ((parseInt(dev.mac.slice(0, 2), 16) & 1) !== 0) bad(`${at}.mac ${dev.mac} is a multicast address`);
        else unique('mac', dev.mac.toLowerCase(), 'mac');
        break;
      case 'vsock':
        if (!Number.isInteger(dev.cid) || dev.cid < 3 || dev.cid > 0xfffffffe) bad(`${at}.cid ${dev.cid} must be an integer 3..4294967294`);
        break;
      case 'vmgenid':
        break;
      case 'nic-slots':
        if (!Number.isInteger(dev.count) || dev.count < 1 || dev.count > MAX_NIC_SLOTS) bad(`${at}.count ${dev.count} must be an integer 1..${MAX_NIC_SLOTS}`);
        break;
      default:
        bad(`${at}.kind ${JSON.stringify((dev as { kind?: unknown }).kind)} is not a known device kind`);
    }
  });
  for (const kind of ['serial-console', 'rng', 'vsock', 'vmgenid', 'nic-slots'] as const) {
    if ((counts[kind] ?? 0) > 1) bad(`at most one ${kind} device`);
  }
}

function checkPath(p: unknown, what: string, bad: (msg: string) => void): void {
  if (typeof p !== 'string' || p.length === 0) bad(`${what} must be a non-empty string`);
  else if (!p.startsWith('/')) bad(`${what} ${JSON.stringify(p)} must be absolute`);
  else if (CONTROL.test(p)) bad(`${what} ${JSON.stringify(p)} contains control characters`);
  else if (p.length > 4095) bad(`${what} is longer than 4095 characters`);
}

/** checkSocketPath is checkPath plus the unix socket length limit. */
export function checkSocketPath(p: unknown, what: string, bad: (msg: string) => void): void {
  let ok = true;
  checkPath(p, what, (msg) => {
    ok = false;
    bad(msg);
  });
  if (ok && typeof p === 'string' && Buffer.byteLength(p) > MAX_SOCKET_PATH) {
    bad(`${what} ${JSON.stringify(p)} is longer than ${MAX_SOCKET_PATH} bytes, the unix socket limit`);
  }
}
