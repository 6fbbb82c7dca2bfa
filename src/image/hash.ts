// Content keys for the cached assets: a sha256 over labelled inputs, so a change
// to any input (config fragment, agent bundle, a binary) yields a new asset directory.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/** HashInput is one labelled input of an asset key. */
export interface HashInput {
  label: string;
  value: string;
}

/** keyOf hashes labelled inputs into a hex sha256; order matters, labels prevent ambiguity. */
export function keyOf(inputs: readonly HashInput[]): string {
  const h = createHash('sha256');
  for (const { label, value } of inputs) {
    // Length-prefix both parts so ("ab","c") and ("a","bc") never collide.
    h.update(`${label.length}:${label}${value.length}:${value}\n`);
  }
  return h.digest('hex');
}

/** sha256File hashes a file's content. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/**
 * fileIdentity names a large binary cheaply by path, size and mtime: a package
 * upgrade changes at least the mtime, and hashing node's 99 MB on every
 * `hako check` would cost more than it buys.
 */
export async function fileIdentity(path: string): Promise<string> {
  const st = await stat(path);
  return `${path}:${st.size}:${Math.floor(st.mtimeMs)}`;
}

/** shortHash is the prefix used in log lines. */
export function shortHash(hash: string): string {
  return hash.slice(0, 12);
}
