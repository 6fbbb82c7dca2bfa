// Locates the hako checkout the benchmark runs from (works from bench/ and dist/bench/),
// so the harness can find the CLI, the shim and bench/runsc-net-none.

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
