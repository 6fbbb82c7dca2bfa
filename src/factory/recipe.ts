// What a sandbox VM is made of (docs/guest-contract.md): the recipe every way of getting one
// shares (cold boot, template, clone, warm pool), and the files of one VM's directory and their removal.

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { HakoConfig } from '../config/index.js';
import type { Logger } from '../log/index.js';
import { killLeftoverVm } from '../hypervisor/qemu/index.js';
import type { Accel, Device, FileMemory, NetTapDevice, VmDescription } from '../hypervisor/index.js';
import { BASE_KERNEL_CMDLINE, type Assets } from '../image/index.js';
import { SHARE_TAG, unmountAll } from '../storage/index.js';

/** AGENT_PORT_NAME is the virtio-serial port of the agent channel (docs/guest-contract.md). */
export const AGENT_PORT_NAME = 'agent.channel.0';

/** NIC_SLOTS is how many NICs a running sandbox VM can take by hot-plug (each a PCIe root port). */
export const NIC_SLOTS = 4;

/** VmRecipe is everything that decides what a sandbox VM is; a template is keyed by it. */
export interface VmRecipe {
  config: HakoConfig;
  assets: Assets;
  vcpus: number;
  memoryMiB: number;
  accel: Accel;
}

/** VmDirPaths are the files of one VM directory (`<sandbox>/vm`, or a pool VM's before hand-off). */
export interface VmDirPaths {
  dir: string;
  agentSocket: string;
  console: string;
}

/** vmDirPaths names the files in a VM directory. QEMU's own (qmp.sock, qemu.pid) live there too. */
export function vmDirPaths(dir: string): VmDirPaths {
  return { dir, agentSocket: join(dir, 'agent.sock'), console: join(dir, 'console.log') };
}

/** SHARE_DIR is the 9p export of a VM directory (storage's Share creates it there). */
export function shareDirOf(vmDir: string): string {
  return join(vmDir, 'shared');
}

/**
 * sandboxVmDescription describes a sandbox VM in vmDir: root image, 9p share, console, agent
 * port, rng, vmgenid and the NIC hot-plug slots, in that order, then any cold-plugged NICs. A template and its clones must agree on the devices and
 * their order, so every caller builds the description here; paths may differ between them.
 */
export function sandboxVmDescription(id: string, recipe: VmRecipe, vmDir: string, extra: { memory?: FileMemory; incoming?: boolean; nics?: NetTapDevice[] } = {}): VmDescription {
  const paths = vmDirPaths(vmDir);
  const devices: Device[] = [
    { kind: 'blk', id: 'root', path: recipe.assets.rootImage, readonly: true },
    { kind: '9p', path: shareDirOf(vmDir), tag: SHARE_TAG, readonly: false },
    { kind: 'serial-console', logPath: paths.console },
    { kind: 'virtio-serial-port', name: AGENT_PORT_NAME, socketPath: paths.agentSocket },
    { kind: 'rng' },
    { kind: 'vmgenid' },
    // Clones of a template get their NICs by hot-plug, so every sandbox VM has the slots.
    { kind: 'nic-slots', count: NIC_SLOTS },
    // NICs known before a cold boot are plugged from the start (never in a template).
    ...(extra.nics ?? []),
  ];
  return {
    id,
    vcpus: recipe.vcpus,
    memoryMiB: recipe.memoryMiB,
    kernel: { path: recipe.assets.kernel, params: [...BASE_KERNEL_CMDLINE.split(' '), ...recipe.config.hypervisor.kernelParams] },
    accel: recipe.accel,
    devices,
    runtimeDir: vmDir,
    ...(extra.memory !== undefined ? { memory: extra.memory } : {}),
    ...(extra.incoming === true ? { incoming: true } : {}),
  };
}

/**
 * deviceSignature is the part of a description a saved state depends on: machine shape and
 * devices without their host paths (which may differ between a template and its clones).
 */
export function deviceSignature(desc: VmDescription): string {
  const devices = desc.devices.map((d) => {
    switch (d.kind) {
      case 'blk': return `blk:${d.id}:${d.readonly ? 'ro' : 'rw'}`;
      case '9p': return `9p:${d.tag}:${d.readonly ? 'ro' : 'rw'}`;
      case 'virtio-serial-port': return `port:${d.name}`;
      case 'net-tap': return `tap:${d.ifname}`;
      case 'vsock': return `vsock:${d.cid}`;
      default: return d.kind;
    }
  });
  return JSON.stringify({ vcpus: desc.vcpus, memoryMiB: desc.memoryMiB, accel: desc.accel, kernel: desc.kernel, devices });
}

/**
 * removeVmDir ends whatever QEMU still runs in vmDir (recognised by its identity file), unmounts
 * everything below it and deletes it. It never deletes through a mount: when something stays
 * mounted it throws and leaves the directory.
 */
export async function removeVmDir(vmDir: string, log: Logger): Promise<void> {
  await killLeftoverVm(vmDir, { log }).catch((err: unknown) => log.warn('killing a leftover VM', { vmDir, err }));
  await unmountAll(vmDir, log);
  await rm(vmDir, { recursive: true, force: true });
}
