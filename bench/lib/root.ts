// Locates the hako checkout the benchmark runs from (works from bench/ and dist/bench/),
// so the harness can find bin/hako, the compiled modules and bench/runsc-net-none.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** repoRoot returns the directory whose package.json is named "hako". */
export function repoRoot(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'hako') return (cached = dir);
      } catch {
        // not ours
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('bench: cannot find the hako checkout (package.json named "hako")');
    dir = up;
  }
}

/** importHako dynamically imports a compiled hako module (e.g. "src/hypervisor/accel.js") and returns undefined when it is not built yet. */
export async function importHako(rel: string): Promise<Record<string, unknown> | undefined> {
  const path = join(repoRoot(), 'dist', rel);
  if (!existsSync(path)) return undefined;
  return (await import(path)) as Record<string, unknown>;
}
