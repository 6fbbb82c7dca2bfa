// Public surface of hako's guest asset builder: ensureAssets() builds what is
// missing (kernel, guest root image, busybox OCI image); assetStatus() only reports.

import { Code, HakoError, errorf } from '../errors/index.js';
import type { AccelPreference } from '../hypervisor/index.js';
import type { Logger } from '../log/index.js';
import { buildBusyboxImage, busyboxCurrent, busyboxInputs, busyboxPaths } from './busybox-image.js';
import { buildKernel, kernelInputs, kernelPaths } from './kernel.js';
import { cacheLayout } from './paths.js';
import type { AssetName, ProgressFn } from './progress.js';
import { buildRootImage, rootImagePath, rootInputs } from './root-image.js';
import { pathExists } from './install.js';
import { readIndex, writeIndex } from './assets-index.js';

export { BASE_KERNEL_CMDLINE } from './cmdline.js';
export { DEFAULT_CACHE_DIR, packageRoot } from './paths.js';
export { GUEST_AGENT_PATH, GUEST_AGENT_SNAPSHOT_PATH } from './root-image.js';
export { BUSYBOX_TAG } from './busybox-image.js';
export { formatElapsed } from './progress.js';
export { pruneAssets, type PruneOptions } from './prune.js';
export type { AssetName, ProgressEvent, ProgressFn } from './progress.js';

/** AssetOptions are shared by ensureAssets and assetStatus. */
export interface AssetOptions {
  /** cacheDir replaces /var/cache/hako (tests). */
  cacheDir?: string;
  /** agentFile replaces dist/guest/hako-agent.mjs as the guest agent (tests boot a test agent). */
  agentFile?: string;
  /** snapshotEntry names the CommonJS bundle to snapshot (default: hako's own, unless agentFile is set). */
  snapshotEntry?: string;
  /** accel is the sandboxes' accelerator preference (default auto); the agent snapshot is built under it. */
  accel?: AccelPreference;
  /** qemuBinary runs the VM that builds the agent snapshot (default qemu-system-x86_64). */
  qemuBinary?: string;
  signal?: AbortSignal;
}

/** EnsureAssetsOptions configures ensureAssets. */
export interface EnsureAssetsOptions extends AssetOptions {
  log: Logger;
  /** force rebuilds every asset even when a cached one matches its inputs. */
  force?: boolean;
  onProgress?: ProgressFn;
}

/** Assets are the absolute paths of the built guest assets. */
export interface Assets {
  /** kernel is /var/cache/hako/kernel/<hash>/bzImage. */
  kernel: string;
  /** rootImage is /var/cache/hako/root/<hash>/root.img (attach read-only). */
  rootImage: string;
  /** busyboxLayout is /var/cache/hako/images/busybox, an OCI image layout with tag "latest". */
  busyboxLayout: string;
  /** busyboxArchive is /var/cache/hako/images/busybox.tar, for `ctr image import --base-name localhost/busybox`. */
  busyboxArchive: string;
}

/**
 * ensureAssets returns the guest assets, building the missing ones. Each asset is
 * keyed by the hash of its inputs, so a cached asset is reused until an input
 * changes. It is idempotent and safe to run from two processes at once: each
 * asset is built under a file lock and installed by rename. The kernel and busybox
 * builds run side by side, and the root image follows the kernel (a VM boots it to
 * build the agent's snapshot); if one fails the others still finish (and stay
 * cached), then the first failure is thrown.
 */
export async function ensureAssets(opts: EnsureAssetsOptions): Promise<Assets> {
  const layout = cacheLayout(opts.cacheDir);
  const log = opts.log.child({ subsystem: 'image' });
  const indexKey = { agentFile: opts.agentFile, snapshotEntry: opts.snapshotEntry, accel: opts.accel, qemuBinary: opts.qemuBinary };
  if (!opts.force) {
    const known = await readIndex(layout, indexKey);
    if (known !== undefined) return known.assets;
  }
  // Fail fast on a missing agent bundle instead of after a six-minute kernel build.
  const { libraries } = await rootInputs(opts);
  const common = { layout, log, force: opts.force, signal: opts.signal, onProgress: opts.onProgress };
  const kernelBuilt = buildKernel(common);
  const results = await Promise.allSettled([
    kernelBuilt,
    kernelBuilt.then((kernel) => buildRootImage({
      ...common, kernel, agentFile: opts.agentFile, snapshotEntry: opts.snapshotEntry, accel: opts.accel, qemuBinary: opts.qemuBinary,
    })),
    buildBusyboxImage(common),
  ]);
  const names: AssetName[] = ['kernel', 'root', 'busybox'];
  const failed = results.findIndex((r) => r.status === 'rejected');
  if (failed >= 0) {
    throw HakoError.wrap((results[failed] as PromiseRejectedResult).reason, `building the ${names[failed]} asset`);
  }
  const [kernel, rootImage, busybox] = results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    string,
    string,
    { layout: string; archive: string },
  ];
  const assets = { kernel, rootImage, busyboxLayout: busybox.layout, busyboxArchive: busybox.archive };
  await writeIndex(layout, { assets, libraries }, indexKey);
  return assets;
}

/** AssetState is "ready" (built for the current inputs), "missing" (would be built) or "blocked" (an input is missing). */
export type AssetState = 'ready' | 'missing' | 'blocked';

/** AssetStatus reports one asset for `hako check`. */
export interface AssetStatus {
  asset: AssetName;
  state: AssetState;
  /** path is where the asset is (ready) or will be (missing); undefined when blocked. */
  path?: string;
  /** hash is the asset's input key; undefined when blocked. */
  hash?: string;
  /** detail explains the state in one line (for blocked: what to install or run). */
  detail: string;
}

/** assetStatus reports each asset's state without building anything. */
export async function assetStatus(opts: AssetOptions = {}): Promise<AssetStatus[]> {
  const layout = cacheLayout(opts.cacheDir);
  const kernel = probe('kernel', async () => {
    const { hash, sourceVersion } = await kernelInputs(opts);
    const path = kernelPaths(layout, hash).bzImage;
    const ready = await pathExists(path);
    return { hash, path, ready, detail: ready ? `built from linux-source ${sourceVersion}` : 'not built: run `hako image build` (about 6 minutes)' };
  });
  const root = probe('root', async () => {
    const { hash } = await rootInputs(opts);
    const path = rootImagePath(layout, hash);
    const ready = await pathExists(path);
    return { hash, path, ready, detail: ready ? 'guest root image built' : 'not built for the current agent/binaries: run `hako image build`' };
  });
  const busybox = probe('busybox', async () => {
    const { hash } = await busyboxInputs();
    const ready = await busyboxCurrent(layout, hash);
    return { hash, path: busyboxPaths(layout).layout, ready, detail: ready ? 'busybox:latest OCI layout and busybox.tar built' : 'not built: run `hako image build`' };
  });
  return Promise.all([kernel, root, busybox]);
}

async function probe(
  asset: AssetName,
  fn: () => Promise<{ hash: string; path: string; ready: boolean; detail: string }>,
): Promise<AssetStatus> {
  try {
    const r = await fn();
    return { asset, state: r.ready ? 'ready' : 'missing', path: r.path, hash: r.hash, detail: r.detail };
  } catch (err) {
    const e = HakoError.from(err);
    if (e.code !== Code.FAILED_PRECONDITION) throw HakoError.wrap(e, `checking the ${asset} asset`);
    return { asset, state: 'blocked', detail: e.message };
  }
}

/** assertReady throws FAILED_PRECONDITION naming every asset that is not ready. */
export function assertReady(status: readonly AssetStatus[]): void {
  const bad = status.filter((s) => s.state !== 'ready');
  if (bad.length > 0) {
    throw errorf(Code.FAILED_PRECONDITION, `guest assets not ready: ${bad.map((s) => `${s.asset} (${s.detail})`).join('; ')}`);
  }
}
