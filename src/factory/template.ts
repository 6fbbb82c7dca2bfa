// Making a VM template (boot with RAM in a shared tmpfs file, warm up, save the device state)
// and cloning one (map that RAM privately, copy-on-write, and load the state into a new QEMU).

import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { hasStateSave, type Vm } from '../hypervisor/index.js';
import type { QemuHypervisor } from '../hypervisor/qemu/index.js';
import type { AgentClient } from '../agent-client/index.js';
import { Share } from '../storage/index.js';
import { connectAgent } from './agent-wait.js';
import { sandboxVmDescription, vmDirPaths, type VmRecipe } from './recipe.js';
import type { BuildPaths, Template, TemplateMeta, TemplateStore } from './store.js';
import type { TemplateKey } from './key.js';
import { warmUp, type WarmUpInputs } from './warm-up.js';

/** RESTORE_AGENT_TIMEOUT_MS bounds the wait for a restored agent; it answered in 0.2–0.6 s here. */
export const RESTORE_AGENT_TIMEOUT_MS = 15_000;

/** TemplateBuildOptions configure buildTemplate. */
export interface TemplateBuildOptions {
  recipe: VmRecipe;
  hv: QemuHypervisor;
  warmUp: () => Promise<WarmUpInputs>;
  log: Logger;
  signal?: AbortSignal;
  deadline: number;
}

/**
 * buildTemplate boots a VM whose RAM is the shared file paths.ram, waits for its agent, warms it
 * up, and saves its device state to paths.state. The VM is stopped whatever happens; the store
 * installs the files only if this resolves.
 */
export async function buildTemplate(paths: BuildPaths, opts: TemplateBuildOptions): Promise<Omit<TemplateMeta, 'format' | 'key' | 'inputs' | 'created'>> {
  const t0 = Date.now();
  const { recipe, log } = opts;
  await mkdir(paths.vmDir, { mode: 0o700 });
  const share = await Share.create(paths.vmDir, log);
  const desc = sandboxVmDescription('hako-template', recipe, paths.vmDir, { memory: { kind: 'file', path: paths.ram, shared: true } });
  const left = (): number => Math.max(1, opts.deadline - Date.now());
  let vm: Vm | undefined;
  let agent: AgentClient | undefined;
  try {
    vm = await opts.hv.start(desc, { signal: opts.signal, timeoutMs: left() });
    agent = await connectAgent(vmDirPaths(paths.vmDir).agentSocket, vm, {
      deadline: opts.deadline, callTimeoutMs: recipe.config.agent.timeoutMs, what: `agent.boot_timeout_ms (${recipe.config.agent.bootTimeoutMs} ms)`, log, signal: opts.signal,
    });
    const details = await agent.getGuestDetails({ signal: opts.signal });
    const warmMs = await warmUp(agent, share, paths.vmDir, await opts.warmUp(), { log, signal: opts.signal });
    if (!hasStateSave(vm)) throw errorf(Code.UNIMPLEMENTED, 'this hypervisor cannot save a VM');
    // Saved with the agent connected: a clone connects before it loads, so the guest sees no change.
    const state = await vm.saveState(paths.state, { signal: opts.signal, timeoutMs: left() });
    const buildMs = Date.now() - t0;
    log.info('VM template saved', { buildMs, warmMs, stateBytes: state.bytes });
    return {
      buildMs,
      state,
      ramBytes: recipe.memoryMiB * 1024 * 1024,
      guest: { kernelRelease: details.kernelRelease, agentVersion: details.agentVersion, crunVersion: details.crunVersion, uptimeMs: details.uptimeMs, warmUpMs: warmMs },
    };
  } catch (err) {
    throw HakoError.wrap(err, 'building the VM template');
  } finally {
    agent?.close();
    await vm?.stop({ timeoutMs: 2000 }).catch((e: unknown) => log.warn('stopping the template VM', { err: e }));
  }
}

/** EnsureTemplateOptions configure ensureTemplate: a build gets bootTimeoutMs, after the lock. */
export interface EnsureTemplateOptions extends Omit<TemplateBuildOptions, 'deadline'> {
  bootTimeoutMs: number;
  /** onMissing runs when there is no template yet, before building one; it may throw to refuse. */
  onMissing?: () => Promise<void>;
}

/**
 * ensureTemplate returns the installed template for tk, building it when there is none (under
 * the store's per-key lock, so concurrent callers build one). built says whether this call did.
 */
export async function ensureTemplate(store: TemplateStore, tk: TemplateKey, opts: EnsureTemplateOptions): Promise<{ template: Template; built: boolean }> {
  const found = await store.lookup(tk);
  if (found !== undefined) return { template: found, built: false };
  await opts.onMissing?.();
  let built = false;
  const template = await store.build(tk, (paths) => {
    built = true;
    return buildTemplate(paths, { ...opts, deadline: Date.now() + opts.bootTimeoutMs });
  }, { signal: opts.signal, timeoutMs: opts.bootTimeoutMs });
  return { template, built };
}

/** CloneOptions configure cloneTemplate. */
export interface CloneOptions {
  id: string;
  recipe: VmRecipe;
  hv: QemuHypervisor;
  vmDir: string;
  log: Logger;
  signal?: AbortSignal;
  deadline: number;
  mark: (name: 'qmp-ready' | 'state-loaded', fields?: Record<string, string | number>) => void;
  /** nice starts the clone at this niceness (the warm pool refills at low priority). */
  nice?: number;
}

/**
 * BadTemplateError marks a clone that failed because of the template itself (a state that does
 * not load, an agent that never answers), so the caller discards it and boots cold.
 */
export class BadTemplateError extends HakoError {}

/**
 * cloneTemplate starts a VM in vmDir from template: RAM mapped privately from the template's RAM
 * file, the saved state loaded, the agent answering. The share must exist in vmDir already.
 * On failure the VM is stopped; the caller removes vmDir.
 */
export async function cloneTemplate(template: Template, opts: CloneOptions): Promise<{ vm: Vm; agent: AgentClient }> {
  const { log } = opts;
  const state = await readFile(template.state);
  const sha = createHash('sha256').update(state).digest('hex');
  if (state.length !== template.meta.state.bytes || sha !== template.meta.state.sha256) {
    throw new BadTemplateError(Code.DATA_LOSS, `the template's state file does not match its meta.json (${state.length} bytes, sha256 ${sha.slice(0, 12)})`);
  }
  const desc = sandboxVmDescription(opts.id, opts.recipe, opts.vmDir, { memory: { kind: 'file', path: template.ram, shared: false }, incoming: true });
  const left = (): number => Math.max(1, opts.deadline - Date.now());
  const vm = await opts.hv.start(desc, { signal: opts.signal, timeoutMs: left(), ...(opts.nice !== undefined ? { nice: opts.nice } : {}) });
  opts.mark('qmp-ready', { qemuPid: vm.pid });
  try {
    if (!hasStateSave(vm)) throw errorf(Code.UNIMPLEMENTED, 'this hypervisor cannot restore a VM');
    const restoreDeadline = Math.min(opts.deadline, Date.now() + RESTORE_AGENT_TIMEOUT_MS);
    const agent = await connectAgent(vmDirPaths(opts.vmDir).agentSocket, vm, {
      deadline: restoreDeadline,
      callTimeoutMs: opts.recipe.config.agent.timeoutMs,
      what: `${RESTORE_AGENT_TIMEOUT_MS} ms of a restore`,
      log,
      signal: opts.signal,
      running: true,
      // Connected first, as the template was saved: the guest sees its host still there.
      dialed: async () => {
        await vm.loadState(state, { signal: opts.signal, timeoutMs: Math.max(1, restoreDeadline - Date.now()) });
        opts.mark('state-loaded');
      },
    });
    return { vm, agent };
  } catch (err) {
    await vm.stop({ signal: AbortSignal.abort() }).catch(() => {});
    const e = HakoError.from(err);
    if (opts.signal?.aborted || e.code === Code.CANCELLED) throw e;
    throw new BadTemplateError(e.code, `restoring template ${template.key.slice(0, 12)}: ${e.message}`, { cause: e });
  }
}
