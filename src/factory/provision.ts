// provisionVm: the one way a sandbox gets its VM. It tries the warm pool, then a clone of the
// VM template (building the template on first use), then a cold boot; a factory failure never fails a start.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, HakoError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { NetTapDevice, Vm } from '../hypervisor/index.js';
import { QemuHypervisor } from '../hypervisor/qemu/index.js';
import type { AgentClient } from '../agent-client/index.js';
import { Share } from '../storage/index.js';
import { connectAgent } from './agent-wait.js';
import { templateKey } from './key.js';
import { removeVmDir, sandboxVmDescription, vmDirPaths, type VmRecipe } from './recipe.js';
import { BUILD_RETRY_MS, TemplateStore } from './store.js';
import { BadTemplateError, cloneTemplate, ensureTemplate } from './template.js';
import type { WarmUpInputs } from './warm-up.js';
import { takeFromPool } from './pool-client.js';

/** VmSource says where a sandbox's VM came from. */
export type VmSource = 'cold' | 'template' | 'pool';

/** ProvisionMark names the boot-path marks provisionVm records. */
export type ProvisionMark = 'qemu-spawn' | 'qmp-ready' | 'template-ready' | 'state-loaded' | 'vm-adopted';

/** ProvisionOptions configure provisionVm. */
export interface ProvisionOptions {
  /** id names the VM (the sandbox id). */
  id: string;
  recipe: VmRecipe;
  /** vmDir is `<sandbox dir>/vm`; it must not exist yet. */
  vmDir: string;
  log: Logger;
  signal?: AbortSignal;
  /**
   * bootTimeoutMs bounds each phase on its own (a template build, the clone, a cold boot), so a
   * first start that builds the template, or a factory that fails, leaves the VM its full time.
   */
  bootTimeoutMs: number;
  mark: (name: ProvisionMark, fields?: Record<string, string | number>) => void;
  /** warmUp describes the throw-away container of a template build (called only when one is built). */
  warmUp: () => Promise<WarmUpInputs>;
  /** coldNics gives the NICs to plug at boot when the VM boots cold; a template or pool VM gets them by hot-plug. */
  coldNics?: () => Promise<NetTapDevice[]>;
}

/** ProvisionedVm is a running VM with its agent answering and its share made. */
export interface ProvisionedVm {
  vm: Vm;
  agent: AgentClient;
  share: Share;
  source: VmSource;
  /**
   * restored is true when the guest did not boot for this sandbox (template or pool): it still
   * has the template's clock, entropy and identity, which the caller must replace.
   */
  restored: boolean;
}

/** factoryDir is where templates live (a tmpfs): `<state_dir>/factory`. */
export function factoryDir(stateDir: string): string {
  return join(stateDir, 'factory');
}

/** poolSocket is where `hako factory serve` listens: `<state_dir>/factory/pool.sock`. */
export function poolSocket(stateDir: string): string {
  return join(factoryDir(stateDir), 'pool.sock');
}

/** provisionVm gets a VM for a sandbox: pool, then template clone, then cold boot. */
export async function provisionVm(opts: ProvisionOptions): Promise<ProvisionedVm> {
  const { config } = opts.recipe;
  const log = opts.log.child({ subsystem: 'factory' });
  if (config.factory.template) {
    try {
      const tk = await templateKey(opts.recipe);
      const pooled = await takeFromPool({ socket: poolSocket(config.runtime.stateDir), key: tk.key, vmDir: opts.vmDir, id: opts.id, recipe: opts.recipe, log, signal: opts.signal, mark: opts.mark });
      if (pooled !== undefined) return { ...pooled, source: 'pool', restored: true };
      const store = new TemplateStore(factoryDir(config.runtime.stateDir), log);
      const hv = new QemuHypervisor({ binary: config.hypervisor.path, log });
      const { template } = await ensureTemplate(store, tk, {
        recipe: opts.recipe, hv, warmUp: opts.warmUp, log, signal: opts.signal, bootTimeoutMs: opts.bootTimeoutMs,
        onMissing: async () => {
          const failed = await store.recentFailure(tk.key);
          if (failed !== undefined) throw new HakoError(Code.FAILED_PRECONDITION, `the template build failed twice in the last ${BUILD_RETRY_MS / 60_000} minutes (${failed}); \`hako factory init\` retries now`);
          log.info('building the VM template (once per VM configuration)', { template: tk.key.slice(0, 12) });
        },
      });
      opts.mark('template-ready', { template: tk.key.slice(0, 12) });
      const share = await makeVmDir(opts.vmDir, log);
      opts.mark('qemu-spawn');
      try {
        const { vm, agent } = await cloneTemplate(template, { id: opts.id, recipe: opts.recipe, hv, vmDir: opts.vmDir, log, signal: opts.signal, deadline: Date.now() + opts.bootTimeoutMs, mark: opts.mark });
        return { vm, agent, share, source: 'template', restored: true };
      } catch (err) {
        await removeVmDir(opts.vmDir, log);
        if (err instanceof BadTemplateError) await store.invalidate(tk.key, err.message);
        throw err;
      }
    } catch (err) {
      const e = HakoError.from(err);
      if (opts.signal?.aborted || e.code === Code.CANCELLED) throw e;
      log.warn('the VM factory failed; booting cold', { err: e });
    }
  }
  return bootCold(opts, log);
}

async function bootCold(opts: ProvisionOptions, log: Logger): Promise<ProvisionedVm> {
  const { recipe } = opts;
  const share = await makeVmDir(opts.vmDir, log);
  const hv = new QemuHypervisor({ binary: recipe.config.hypervisor.path, log });
  const desc = sandboxVmDescription(opts.id, recipe, opts.vmDir, { nics: opts.coldNics ? await opts.coldNics() : [] });
  opts.mark('qemu-spawn');
  const deadline = Date.now() + opts.bootTimeoutMs;
  let vm: Vm | undefined;
  try {
    vm = await hv.start(desc, { signal: opts.signal, timeoutMs: opts.bootTimeoutMs });
    opts.mark('qmp-ready', { qemuPid: vm.pid });
    const agent = await connectAgent(vmDirPaths(opts.vmDir).agentSocket, vm, {
      deadline, callTimeoutMs: recipe.config.agent.timeoutMs,
      what: `agent.boot_timeout_ms (${recipe.config.agent.bootTimeoutMs} ms)`, log, signal: opts.signal,
    });
    return { vm, agent, share, source: 'cold', restored: false };
  } catch (err) {
    await vm?.stop({ signal: AbortSignal.abort() }).catch(() => {});
    throw err;
  }
}

// makeVmDir creates vmDir (0700) and its 9p share.
async function makeVmDir(vmDir: string, log: Logger): Promise<Share> {
  await mkdir(vmDir, { mode: 0o700 });
  return Share.create(vmDir, log);
}

