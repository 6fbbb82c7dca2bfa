// The throw-away container a VM template or a warm pool VM runs once before it is saved or
// held: the built-in busybox image with the spec `hako run` would give it.

import type { HakoConfig } from '../config/index.js';
import type { Logger } from '../log/index.js';
import type { Assets } from '../image/index.js';
import type { WarmUpInputs } from '../factory/index.js';
import { unpackImage } from '../storage/index.js';
import { defaultSpec } from './spec.js';

/** warmUpInputs unpacks the built-in busybox (cached) and describes a container for it. */
export async function warmUpInputs(config: HakoConfig, assets: Assets, log: Logger, signal?: AbortSignal): Promise<WarmUpInputs> {
  const image = await unpackImage({ ref: { path: assets.busyboxLayout, kind: 'dir' }, cacheDir: config.runtime.cacheDir, log, signal });
  const spec = defaultSpec({ args: ['true'], env: image.config.env, cwd: '/', user: { uid: 0, gid: 0 }, terminal: false, hostname: 'hako', volumes: [] });
  return { lower: image.rootfs, spec: spec as WarmUpInputs['spec'] };
}
