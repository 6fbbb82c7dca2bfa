// A fast path for ensureAssets: the paths of the current assets are remembered with the
// identities (path, size, mtime) of every input, so a start that changes nothing pays a few
// stats instead of ldd, dpkg-query and hashing the agent bundle (~100 ms here).

import { createHash } from 'node:crypto';
import { open, readdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KERNEL_TARBALL } from './kernel.js';
import type { CacheLayout } from './paths.js';
import { packageRoot } from './paths.js';
import { GUEST_BINARIES } from './root-image.js';

/**
 * IndexKey is what else than files the assets depend on: which agent and snapshot bundle, and the
 * accelerator and QEMU the agent's snapshot is built under. Each combination has its own entry.
 */
export interface IndexKey {
  agentFile?: string;
  snapshotEntry?: string;
  accel?: string;
  qemuBinary?: string;
}

/** IndexedAssets is what the index remembers: the asset paths and the libraries ldd listed. */
export interface IndexedAssets {
  assets: { kernel: string; rootImage: string; busyboxLayout: string; busyboxArchive: string };
  libraries: string[];
}

const INDEX_VERSION = 1;
const MAX_INDEX_BYTES = 256 * 1024;

/** HOST_INPUTS are the host files the assets are built from, besides the libraries. */
const HOST_INPUTS = [...Object.values(GUEST_BINARIES), KERNEL_TARBALL];

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * fingerprint names every input by identity: hako's own image builder (its sources, the
 * compiled builder and the agent bundle), the host binaries and libraries, and agentFile.
 * Any change to any of them, the builder's code included, gives a new fingerprint.
 */
export async function fingerprint(layout: CacheLayout, libraries: readonly string[], key: IndexKey = {}): Promise<string> {
  const root = packageRoot();
  const files = [
    ...(await filesUnder(join(root, 'src', 'image'))),
    ...(await filesUnder(join(root, 'dist', 'src', 'image'))),
    ...(await filesUnder(join(root, 'dist', 'guest'))),
    ...HOST_INPUTS,
    ...libraries,
    ...[key.agentFile, key.snapshotEntry, key.qemuBinary].filter((f): f is string => f !== undefined && f.includes('/')),
  ].sort();
  const h = createHash('sha256');
  h.update(`v${INDEX_VERSION}\n${layout.root}\n${JSON.stringify(key)}\n`);
  for (const f of files) {
    const st = await stat(f).catch(() => undefined);
    h.update(`${f}:${st ? `${st.size}:${st.mtimeMs}` : 'missing'}\n`);
  }
  return h.digest('hex');
}

function indexPath(layout: CacheLayout, key: IndexKey): string {
  const tag = Object.values(key).every((v) => v === undefined) ? 'default' : createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 16);
  return join(layout.root, `assets-index-${tag}.json`);
}

/** readIndex returns the remembered assets if every input is as it was and every asset exists. */
export async function readIndex(layout: CacheLayout, key: IndexKey = {}): Promise<IndexedAssets | undefined> {
  let rec: { version?: unknown; fingerprint?: unknown } & Partial<IndexedAssets>;
  try {
    const fh = await open(indexPath(layout, key), 'r');
    try {
      if ((await fh.stat()).size > MAX_INDEX_BYTES) return undefined;
      rec = JSON.parse(await fh.readFile('utf8')) as typeof rec;
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
  const a = rec.assets;
  if (rec.version !== INDEX_VERSION || a === undefined || !Array.isArray(rec.libraries) || !rec.libraries.every((l) => typeof l === 'string')) return undefined;
  const paths = [a.kernel, a.rootImage, a.busyboxLayout, a.busyboxArchive];
  if (!paths.every((p) => typeof p === 'string' && p.startsWith(layout.root))) return undefined;
  for (const p of paths) if (!(await stat(p).then(() => true, () => false))) return undefined;
  if (rec.fingerprint !== (await fingerprint(layout, rec.libraries, key))) return undefined;
  return { assets: a, libraries: rec.libraries };
}

/** writeIndex remembers assets for the current inputs (atomically; failures are ignored). */
export async function writeIndex(layout: CacheLayout, entry: IndexedAssets, key: IndexKey = {}): Promise<void> {
  const path = indexPath(layout, key);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(JSON.stringify({ version: INDEX_VERSION, fingerprint: await fingerprint(layout, entry.libraries, key), ...entry }) + '\n');
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch {
    // Only a cache of a cache: the next start computes the inputs again.
  }
}
