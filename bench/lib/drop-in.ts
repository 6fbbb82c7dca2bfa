// The benchmark's configuration drop-in, /etc/hako/config.d/90-hako-bench.toml: written for one
// hako mode, removed after it (and swept at the start of a run), so that shims and CLIs pick the mode.

import { existsSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DEFAULT_CONFIG_PATH, dropInDir } from '../../src/config/load.js';
import type { HakoMode } from './hako-modes.js';

/** DROP_IN is the file the benchmark writes; late in name order so it overrides the usual drop-ins. */
export const DROP_IN = join(dropInDir(DEFAULT_CONFIG_PATH), '90-hako-bench.toml');

/** MARKER starts every drop-in the benchmark writes, so a sweep removes only its own file. */
export const MARKER = "# written by hako's benchmark (bench/lib/drop-in.ts)";

/** DIRS_FILE lists the directories the benchmark created for the drop-in, so even a later run can remove them again. */
export const DIRS_FILE = '/run/hako-bench/drop-in-dirs.json';

// Directories this process created for the drop-in, removed again when empty.
const created: string[] = [];

function readDirsFile(text: string | undefined): string[] {
  try {
    const v = JSON.parse(text ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((d): d is string => typeof d === 'string' && d.startsWith('/etc/')) : [];
  } catch {
    return [];
  }
}

// deepestFirst orders directories so that a child is removed before its parent.
const deepestFirst = (dirs: string[]): string[] => [...new Set(dirs)].sort((a, b) => b.length - a.length);

/** dropInText is the TOML the benchmark writes for mode. */
export function dropInText(mode: HakoMode): string {
  const template = mode === 'cold' ? 'false' : 'true';
  return `${MARKER} for hako mode "${mode}"; removed when the mode ends.\n[factory]\ntemplate = ${template}\n`;
}

/** writeDropIn writes the drop-in for mode (atomically, 0644), creating /etc/hako/config.d if needed. */
export async function writeDropIn(mode: HakoMode): Promise<string> {
  const dir = dirname(DROP_IN);
  for (const d of [dirname(dir), dir]) {
    if (!existsSync(d)) {
      await mkdir(d, { mode: 0o755 });
      created.push(d);
      await mkdir(dirname(DIRS_FILE), { recursive: true });
      await writeFile(DIRS_FILE, JSON.stringify(deepestFirst([...created, ...readDirsFile(await readFile(DIRS_FILE, 'utf8').catch(() => undefined))])) + '\n');
    }
  }
  const text = dropInText(mode);
  const tmp = `${DROP_IN}.${process.pid}.tmp`;
  // The name does not end in .toml until the rename: a CLI starting meanwhile never reads half a file.
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, DROP_IN);
  return text;
}

/** removeDropIn removes the drop-in if it is the benchmark's, and the directories this process made for it if empty. */
export async function removeDropIn(): Promise<boolean> {
  const text = await readFile(DROP_IN, 'utf8').catch(() => undefined);
  let removed = false;
  if (text !== undefined && text.startsWith(MARKER)) {
    await rm(DROP_IN, { force: true });
    removed = true;
  }
  for (const d of deepestFirst([...created, ...readDirsFile(await readFile(DIRS_FILE, 'utf8').catch(() => undefined))])) {
    if ((await readdir(d).catch(() => ['?'])).length === 0) await rmdir(d).catch(() => undefined);
  }
  created.length = 0;
  await rm(DIRS_FILE, { force: true });
  return removed;
}

/** removeDropInSync is removeDropIn for process exit handlers, which cannot wait. */
export function removeDropInSync(): void {
  try {
    if (readFileSync(DROP_IN, 'utf8').startsWith(MARKER)) rmSync(DROP_IN, { force: true });
  } catch {
    // none
  }
  let listed: string | undefined;
  try {
    listed = readFileSync(DIRS_FILE, 'utf8');
  } catch {
    // none
  }
  for (const d of deepestFirst([...created, ...readDirsFile(listed)])) {
    try {
      rmdirSync(d);
    } catch {
      // not empty, or gone
    }
  }
  rmSync(DIRS_FILE, { force: true });
}

/** laterDropIns lists drop-ins that sort after the benchmark's (they could override its mode). */
export async function laterDropIns(): Promise<string[]> {
  const dir = dirname(DROP_IN);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.toml')).sort();
  return names.filter((n) => n > '90-hako-bench.toml').map((n) => join(dir, n));
}
