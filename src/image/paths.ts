// Where hako's guest assets live on the host (/var/cache/hako/...) and where the
// builder finds its own inputs (the kernel config fragment, guest init files, agent bundle).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** DEFAULT_CACHE_DIR is the root of all built assets. */
export const DEFAULT_CACHE_DIR = '/var/cache/hako';

/** CacheLayout names every path under one cache root. */
export interface CacheLayout {
  root: string;
  /** build holds the extracted kernel source and its incremental build tree. */
  build: string;
  kernelDir(hash: string): string;
  rootDir(hash: string): string;
  images: string;
  /** locks holds the flock files, one per asset. */
  locks: string;
}

/** cacheLayout returns the layout under root (default /var/cache/hako). */
export function cacheLayout(root: string = DEFAULT_CACHE_DIR): CacheLayout {
  const abs = resolve(root);
  return {
    root: abs,
    build: join(abs, 'build'),
    kernelDir: (hash) => join(abs, 'kernel', hash),
    rootDir: (hash) => join(abs, 'root', hash),
    images: join(abs, 'images'),
    locks: join(abs, 'locks'),
  };
}

let cachedRoot: string | undefined;

/**
 * packageRoot finds the hako checkout this code runs from (the directory whose
 * package.json is named "hako"), so the builder works from src/ and from dist/.
 */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'hako') {
          cachedRoot = dir;
          return dir;
        }
      } catch {
        // not ours; keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find hako's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** kernelFragmentPath is hako's kernel config fragment (applied on top of tinyconfig). */
export function kernelFragmentPath(): string {
  return join(packageRoot(), 'src', 'image', 'kernel', 'hako.config');
}

/** guestFilesDir holds the guest's init files (inittab, rcS, agent wrapper). */
export function guestFilesDir(): string {
  return join(packageRoot(), 'src', 'image', 'guest');
}

/** defaultAgentBundle is the bundled agent produced by `npm run build`. */
export function defaultAgentBundle(): string {
  return join(packageRoot(), 'dist', 'guest', 'hako-agent.mjs');
}

/** defaultAgentSnapshotEntry is the CommonJS agent bundle that the image builder snapshots. */
export function defaultAgentSnapshotEntry(): string {
  return join(packageRoot(), 'dist', 'guest', 'hako-agent-snapshot.cjs');
}
