// The QEMU argv of a guest per docs/guest-contract.md, written out by hand rather than by
// hako's command-line builder, so guest-side tests do not depend on the driver under test.

import { join } from 'node:path';
import { BASE_KERNEL_CMDLINE } from '../../src/image/index.js';

/** PlainGuest names the files a hand-made guest boots from and the host side of its devices. */
export interface PlainGuest {
  kernel: string;
  rootImage: string;
  /** work holds agent.sock; shared is exported as the 9p tag hakoshare. */
  work: string;
  shared: string;
  /** serial is QEMU's -serial value, e.g. 'stdio' or 'file:/path'. */
  serial: string;
  /** kernelParams are appended to the contract's kernel command line (e.g. hako.agent.* switches). */
  kernelParams?: string[];
}

/** plainGuestArgv returns qemu-system-x86_64 arguments for a TCG q35 guest with the contract's devices. */
export function plainGuestArgv(g: PlainGuest): string[] {
  return [
    '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max', '-m', '512', '-smp', '1',
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-kernel', g.kernel, '-append', [BASE_KERNEL_CMDLINE, ...(g.kernelParams ?? [])].join(' '),
    '-drive', `file=${g.rootImage},if=none,id=root,format=raw,readonly=on`,
    '-device', 'virtio-blk-pci,drive=root',
    '-serial', g.serial,
    '-device', 'virtio-serial-pci,id=vser0',
    '-chardev', `socket,id=agent,path=${join(g.work, 'agent.sock')},server=on,wait=off`,
    '-device', 'virtserialport,bus=vser0.0,chardev=agent,name=agent.channel.0',
    '-fsdev', `local,id=share,path=${g.shared},security_model=none`,
    '-device', 'virtio-9p-pci,fsdev=share,mount_tag=hakoshare',
    '-device', 'virtio-rng-pci',
  ];
}
