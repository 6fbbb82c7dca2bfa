// The recipe of a sandbox's VM: what the configuration (or the caller) asks for, the guest
// assets and the accelerator this host offers. The VM factory keys its templates by it.

import type { HakoConfig } from '../config/index.js';
import type { Logger } from '../log/index.js';
import { probeAccel } from '../hypervisor/index.js';
import type { Assets } from '../image/index.js';
import type { VmRecipe } from '../factory/index.js';

/**
 * sandboxRecipe is what a sandbox VM is made of: the configured (or asked for) vCPUs and memory,
 * the guest assets and the probed accelerator (with hypervisor.tcg_cache_mib under TCG). A VM
 * template is keyed by it.
 */
export async function sandboxRecipe(config: HakoConfig, assets: Assets, size: { vcpus?: number; memoryMiB?: number }, log: Logger): Promise<VmRecipe> {
  const choice = await probeAccel(config.hypervisor.accel);
  log.debug('accelerator', { accel: choice.accel.kind, reason: choice.reason });
  const accel = choice.accel.kind === 'tcg' ? { ...choice.accel, tbSizeMiB: config.hypervisor.tcgCacheMiB } : choice.accel;
  return { config, assets, vcpus: size.vcpus ?? config.hypervisor.vcpus, memoryMiB: size.memoryMiB ?? config.hypervisor.memoryMiB, accel };
}
