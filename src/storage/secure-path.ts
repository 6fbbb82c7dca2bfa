// Resolving paths inside a root directory the way the container will see them: symlinks
// are followed relative to the root, never out of it. Image unpacking and command lookup use it.

import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, errorf } from '../errors/index.js';

// Linux gives up after 40 nested links; a few more costs nothing and still stops loops.
const MAX_LINKS = 64;

/**
 * secureJoin resolves unsafePath inside root: `..` stops at root, and every existing
 * symlink is followed as if root were `/`. Components that do not exist are appended
 * as they are. The result is always root or a path below it.
 */
export async function secureJoin(root: string, unsafePath: string): Promise<string> {
  let pending = unsafePath.split('/');
  let resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = join(root, ...resolved, part);
    let isLink = false;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw errorf(Code.INVALID_ARGUMENT, `too many levels of symbolic links in ${unsafePath}`);
    const target = await readlink(candidate);
    if (target.startsWith('/')) resolved = [];
    pending = [...target.split('/'), ...pending];
  }
  return join(root, ...resolved);
}

/** cleanRelative normalizes an archive member name to a relative path: '' for the root itself, null when it climbs out with `..`. */
export function cleanRelative(name: string): string | null {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return null;
    parts.push(part);
  }
  return parts.join('/');
}
