// Runs one test tier with node's built-in runner over the compiled tests in dist/.
// Tiers: unit (src/**/*.test.js), integration (test/integration), e2e (test/e2e).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const tiers = { unit: 'dist/src', integration: 'dist/test/integration', e2e: 'dist/test/e2e' };
const tier = process.argv[2];
if (!(tier in tiers)) {
  console.error(`run-tests: unknown tier '${tier}' (want ${Object.keys(tiers).join(', ')})`);
  process.exit(2);
}
function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
  });
}
const files = walk(tiers[tier]).sort();
if (files.length === 0) {
  // A tier with no tests is a defect, not a pass: say so loudly.
  console.error(`run-tests: tier '${tier}' has no compiled tests under ${tiers[tier]} (did the build run?)`);
  process.exit(1);
}
const extra = process.argv.slice(3);
// Integration and e2e tests share QEMU, containerd and /run/hako: run their files one at a time.
const concurrency = tier === 'unit' ? [] : ['--test-concurrency=1'];
const r = spawnSync(process.execPath, ['--test', ...concurrency, ...extra, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
