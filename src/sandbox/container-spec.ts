// Turning a container's host-side spec into the guest's: the rootfs and every bind source are
// shared with the guest over 9p and the spec points at their share paths instead; the sandbox's
// /etc files are added where the spec has none of its own.

import { Code, errorf } from '../errors/index.js';
import type { Share } from '../storage/index.js';
import { etcMounts } from './etc-files.js';
import { isBindMount, type OciSpec } from './spec.js';

/**
 * shareSpec rewrites spec in place (root.path and bind sources become share paths) and returns
 * the host mount points it made, for state.json. etc holds the sandbox's generated /etc files.
 */
export async function shareSpec(share: Share, cid: string, spec: OciSpec, rootfs: string, etc: Parameters<typeof etcMounts>[1] | undefined): Promise<string[]> {
  const mounts: string[] = [];
  spec.root = { ...spec.root, path: await share.addRootfs(cid, rootfs) };
  mounts.push(`${share.path}/${spec.root.path}`);
  if (etc) spec.mounts = [...(spec.mounts ?? []), ...etcMounts(spec, etc)];
  let n = 0;
  for (const m of spec.mounts ?? []) {
    if (!isBindMount(m)) continue;
    if (typeof m.source !== 'string' || !m.source.startsWith('/')) {
      throw errorf(Code.INVALID_ARGUMENT, `bind mount ${m.destination}: source ${JSON.stringify(m.source)} must be an absolute host path`);
    }
    const ro = (m.options ?? []).includes('ro');
    m.source = await share.addVolume(cid, n++, m.source, ro);
    mounts.push(`${share.path}/${m.source}`);
  }
  return mounts;
}
