// Builds the agent's startup snapshot from the CommonJS bundle with the host's node and starts
// node from it in check mode: no builtin outside Node's snapshot list, and the check passes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SNAPSHOT_CHECK_ENV } from './snapshot-check.js';

// dist/src/guest/agent/ -> dist/guest/hako-agent-snapshot.cjs (written by scripts/bundle-agent.mjs).
const bundle = fileURLToPath(new URL('../../../guest/hako-agent-snapshot.cjs', import.meta.url));

test('the snapshot bundle builds a snapshot that loads and passes its self-check', async () => {
  assert.ok(existsSync(bundle), `${bundle} is missing: npm run build makes it`);
  const dir = await mkdtemp(join(tmpdir(), 'hako-snapshot-main-'));
  try {
    const blob = join(dir, 'agent.snapshot');
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const built = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', bundle], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(built.status, 0, built.stderr);
    // Node warns about builtins it does not support in snapshots; the bundle must load those lazily.
    assert.doesNotMatch(built.stderr, /not yet fully verified/);
    const checked = spawnSync(process.execPath, ['--snapshot-blob', blob], { env: { ...env, [SNAPSHOT_CHECK_ENV]: '1' }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(checked.status, 0, checked.stderr);
    const result = JSON.parse(checked.stdout.trim()) as { ok: boolean; methods: number };
    assert.equal(result.ok, true);
    assert.ok(result.methods > 10);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
