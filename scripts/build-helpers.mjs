// Compiles hako's host-side C helpers (src/network/hako-netns.c) into dist/bin. They are
// rebuilt only when the source is newer than the binary. A missing C compiler is an error:
// setup installs build-essential.
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';

const helpers = [['src/network/hako-netns.c', 'dist/bin/hako-netns']];
mkdirSync('dist/bin', { recursive: true });
for (const [src, out] of helpers) {
  let fresh = false;
  try {
    fresh = statSync(out).mtimeMs >= statSync(src).mtimeMs;
  } catch {
    // not built yet
  }
  if (fresh) continue;
  try {
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, src], { stdio: 'inherit' });
  } catch (err) {
    console.error(`build-helpers: compiling ${src} failed (is a C compiler installed? setup installs build-essential): ${err.message}`);
    process.exit(1);
  }
}
