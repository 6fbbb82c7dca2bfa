// Failure paths of `hako run` against real QEMU: QEMU killed mid-run, a hung VM (SIGSTOP),
// Ctrl-C during boot, a boot deadline, a broken QEMU binary. Each must end with a clear error
// and leave no QEMU, mount or sandbox directory behind.

import { test, afterEach, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { BOOT_MS, assertClean, hako, ourQemus, prefix, stateOf, sweep, waitFor } from './cli-harness.js';

let work = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'hako-cli-fail-'));
});
after(() => rmSync(work, { recursive: true, force: true }));
afterEach(async () => {
  await sweep();
  assertClean('after test');
});

function config(name: string, text: string): string {
  const path = join(work, `${name}.toml`);
  writeFileSync(path, text);
  return path;
}

/** runUntilStarted starts a long container and resolves once it printed "started". */
async function runUntilStarted(id: string, env: NodeJS.ProcessEnv = {}) {
  let child: ChildProcess | undefined;
  const done = hako(['run', '--rm', '--name', id, 'busybox', '--', 'sh', '-c', 'echo started; sleep 1000'], {
    env,
    onSpawn: (c) => (child = c),
  });
  let out = '';
  await waitFor(() => child !== undefined, 5000);
  child!.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  assert.ok(await waitFor(() => out.includes('started'), BOOT_MS), 'the container started');
  const qemuPid = stateOf(id)?.qemuPid ?? 0;
  assert.ok(qemuPid > 0, 'state.json names the QEMU pid');
  return { done, qemuPid };
}

test('QEMU killed mid-run: clear error at once, nothing left', { timeout: BOOT_MS * 2 }, async () => {
  const { done, qemuPid } = await runUntilStarted(`${prefix}-qkill`);
  const t = Date.now();
  process.kill(qemuPid, 'SIGKILL');
  const r = await done;
  assert.equal(r.code, 125);
  assert.match(r.stderr, /VM exited unexpectedly.*SIGKILL/);
  assert.ok(Date.now() - t < 15_000, `noticed promptly (${Date.now() - t} ms)`);
});

test('a hung VM (SIGSTOP) fails the health check within agent.timeout_ms, nothing left', { timeout: BOOT_MS * 2 }, async () => {
  const env = { HAKO_CONFIG: config('fast', '[agent]\ntimeout_ms = 3000\n') };
  const { done, qemuPid } = await runUntilStarted(`${prefix}-hung`, env);
  const t = Date.now();
  process.kill(qemuPid, 'SIGSTOP');
  const r = await done;
  assert.equal(r.code, 125);
  assert.match(r.stderr, /guest agent did not answer a health check within 3000 ms/);
  assert.ok(Date.now() - t < 30_000, `noticed within the timeout plus one heartbeat (${Date.now() - t} ms)`);
});

test('Ctrl-C while the VM boots cancels and cleans up (exit 130)', { timeout: BOOT_MS * 2 }, async () => {
  const id = `${prefix}-intr`;
  let child: ChildProcess | undefined;
  const done = hako(['run', '--rm', '--name', id, 'busybox', '--', 'true'], { onSpawn: (c) => (child = c) });
  assert.ok(await waitFor(() => (stateOf(id)?.qemuPid ?? 0) > 0, BOOT_MS), 'QEMU was started');
  assert.equal(ourQemus().length, 1);
  child!.kill('SIGINT');
  const r = await done;
  assert.equal(r.code, 130);
  assert.match(r.stderr, /interrupted by SIGINT/);
});

test('the agent not answering before agent.boot_timeout_ms is a clear error', { timeout: BOOT_MS }, async () => {
  // A cold boot: a template clone answers within a second.
  const env = { HAKO_CONFIG: config('boot', '[agent]\nboot_timeout_ms = 1000\n[factory]\ntemplate = false\n') };
  const r = await hako(['run', '--rm', '--name', `${prefix}-boot`, 'busybox', '--', 'true'], { env });
  assert.equal(r.code, 125);
  assert.match(r.stderr, /did not answer within agent\.boot_timeout_ms \(1000 ms\)/);
});

test('a QEMU that cannot start is a clear error', { timeout: BOOT_MS }, async () => {
  const env = { HAKO_CONFIG: config('qemu', '[hypervisor]\npath = "/bin/false"\n') };
  const r = await hako(['run', '--rm', '--name', `${prefix}-noqemu`, 'busybox', '--', 'true'], { env });
  assert.equal(r.code, 125);
  assert.match(r.stderr, /starting sandbox .*qemu exited with code 1/);
});
