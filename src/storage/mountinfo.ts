// Reading the host's mount table (/proc/self/mountinfo) to find every mount under a
// sandbox directory, so cleanup unmounts exactly what is there, deepest first.

import { readFile } from 'node:fs/promises';

/** MountEntry is one line of /proc/self/mountinfo. */
export interface MountEntry {
  id: number;
  parentId: number;
  /** mountPoint is absolute, with the kernel's octal escapes decoded. */
  mountPoint: string;
  fsType: string;
  source: string;
  options: string[];
}

/** unescapeMountPath decodes the kernel's `\040`-style octal escapes. */
export function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** parseMountInfo parses the text of /proc/<pid>/mountinfo; malformed lines are skipped. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 6 || right.length < 2) continue;
    out.push({
      id: Number(left[0]),
      parentId: Number(left[1]),
      mountPoint: unescapeMountPath(left[4]!),
      options: left[5]!.split(','),
      fsType: right[0]!,
      source: unescapeMountPath(right[1]!),
    });
  }
  return out;
}

/** readMounts returns the mount table of this process. */
export async function readMounts(): Promise<MountEntry[]> {
  return parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** isUnder reports whether path is dir itself or inside it (both absolute and normalized). */
export function isUnder(path: string, dir: string): boolean {
  const d = dir.endsWith('/') ? dir.slice(0, -1) : dir;
  return path === d || path.startsWith(d + '/');
}

/**
 * mountsUnder lists the mount points at or below dir in the order they must be
 * unmounted: children before parents (later mounts first when they stack).
 */
export function mountsUnder(entries: MountEntry[], dir: string): string[] {
  const hits = entries.map((e, i) => ({ e, i })).filter(({ e }) => isUnder(e.mountPoint, dir));
  hits.sort((a, b) => {
    const da = a.e.mountPoint.split('/').length;
    const db = b.e.mountPoint.split('/').length;
    return db - da || b.i - a.i;
  });
  return hits.map(({ e }) => e.mountPoint);
}
