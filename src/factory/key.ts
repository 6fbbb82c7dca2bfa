// The key of a VM template: a hash of everything a saved VM depends on, so a template is only
// ever restored into a VM of the same kernel, root image, shape, devices, agent and QEMU.

import { readFile, realpath } from 'node:fs/promises';
import { fileIdentity, keyOf, type HashInput } from '../image/hash.js';
import { deviceSignature, sandboxVmDescription, type VmRecipe } from './recipe.js';
import { WARM_UP_VERSION } from './warm-up.js';

/**
 * FACTORY_FORMAT changes every key when what a template holds changes: the way it is built and
 * warmed, the layout of its files, or the QEMU options the builder emits outside the recipe.
 */
export const FACTORY_FORMAT = 'hako-template/1';

/** TemplateInputs are the human-readable inputs of a key, kept in the template's meta.json. */
export interface TemplateInputs {
  format: string;
  kernel: string;
  rootImage: string;
  vcpus: number;
  memoryMiB: number;
  accel: string;
  kernelParams: string[];
  qemu: string;
  devices: string;
  /** cpu names the host CPU for KVM, whose guests see it (`-cpu host`); empty under TCG. */
  cpu: string;
  /** warmUp is the version of what a template runs before it is saved. */
  warmUp: string;
}

/** TemplateKey is a key and what it was computed from. */
export interface TemplateKey {
  key: string;
  inputs: TemplateInputs;
}

/**
 * templateKey computes the key of recipe. The agent build is part of the root image (its hash
 * is in the path), the QEMU binary is named by path, size and mtime, and the device set by
 * deviceSignature (the paths that differ per sandbox left out).
 */
export async function templateKey(recipe: VmRecipe): Promise<TemplateKey> {
  const desc = sandboxVmDescription('key', recipe, '/key');
  const qemu = await fileIdentity(await realpath(recipe.config.hypervisor.path));
  const inputs: TemplateInputs = {
    format: FACTORY_FORMAT,
    kernel: recipe.assets.kernel,
    rootImage: recipe.assets.rootImage,
    vcpus: recipe.vcpus,
    memoryMiB: recipe.memoryMiB,
    accel: JSON.stringify(recipe.accel),
    kernelParams: recipe.config.hypervisor.kernelParams,
    qemu,
    devices: deviceSignature(desc),
    cpu: recipe.accel.kind === 'kvm' ? await hostCpu() : '',
    warmUp: WARM_UP_VERSION,
  };
  const parts: HashInput[] = Object.entries(inputs).map(([label, value]) => ({ label, value: typeof value === 'string' ? value : JSON.stringify(value) }));
  return { key: keyOf(parts), inputs };
}

/** hostCpu is the first CPU's model and flags, which a KVM guest with `-cpu host` sees. */
async function hostCpu(): Promise<string> {
  const text = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const first = text.split('\n\n')[0] ?? '';
  const pick = (name: string): string => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1]?.trim() ?? '';
  return `${pick('model name')}|${pick('flags')}`;
}
