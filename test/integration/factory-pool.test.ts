// The warm pool against real QEMU: `hako factory serve` keeps N warm VMs, a start takes one and
// owns it (it outlives the daemon, even a SIGKILLed one), an empty or absent pool falls back at
// once, a restarted daemon removes what a dead one left, and a stopped daemon leaves nothing.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Logger, memorySink } from '../../src/log/index.js';
import { defaultConfig, type HakoConfig } from '../../src/config/index.js';
import { ensureAssets, type Assets } from '../../src/image/index.js';
import { TemplateStore, factoryDir, poolSocket, poolStatus, poolVmsDir, unmountOwnTmpfs } from '../../src/factory/index.js';
import { Sandbox, cleanupSandbox, listSandboxIds } from '../../src/sandbox/index.js';
import { BOOT_MS, HAKO, waitFor } from './cli-harness.js';
import { factoryStateDir, runIn } from './factory-harness.js';

const stateDir = factoryStateDir('fp');
const configFile = `${stateDir}.toml`;
let config: HakoConfig;
let assets: Assets;
const sink = memorySink();
const log = new Logger(sink, 'info');
let n = 0;
const create = (): Promise<Sandbox> => Sandbox.create({ id: `fp${process.pid}-${n++}`, config, log, assets });

/** poolQemus lists the QEMU processes started as pool VMs of this state directory. */
function poolQemus(): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const cmd = (() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    })();
    if (/qemu-system-/.test(cmd.split('\0')[0] ?? '') && cmd.includes(`${poolVmsDir(stateDir)}/`)) out.push(Number(pid));
  }
  return out;
}

function serve(size: number): ChildProcess {
  const child = spawn(process.execPath, [HAKO, '--log-level', 'info', 'factory', 'serve', '--pool', String(size)], { env: { ...process.env, HAKO_CONFIG: configFile }, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (c: Buffer) => sink.write(`daemon: ${c.toString()}`));
  return child;
}

const ready = (want: number) => async (): Promise<boolean> => ((await poolStatus(poolSocket(stateDir)).catch(() => undefined))?.ready ?? -1) === want;
const exited = (c: ChildProcess): Promise<void> => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

before(async () => {
  config = defaultConfig();
  config.runtime.stateDir = stateDir;
  await mkdir(stateDir, { recursive: true });
  await writeFile(configFile, `[runtime]\nstate_dir = "${stateDir}"\n`);
  assets = await ensureAssets({ log, cacheDir: config.runtime.cacheDir });
});

after(async () => {
  for (const pid of poolQemus()) process.kill(pid, 'SIGKILL');
  for (const id of await listSandboxIds(stateDir)) await cleanupSandbox(id, { stateDir, log }).catch(() => {});
  await new TemplateStore(factoryDir(stateDir), log).destroy().catch(() => {});
  await unmountOwnTmpfs(factoryDir(stateDir)).catch(() => {});
  await rm(stateDir, { recursive: true, force: true });
  await rm(configFile, { force: true });
});

test('no daemon: a start clones the template at once', { timeout: BOOT_MS }, async () => {
  const sb = await create();
  await sb.stop();
  assert.equal(sb.vmSource, 'template');
});

test('the pool hands out warm VMs, holds exactly N, and a handed-out VM outlives a SIGKILLed daemon', { timeout: BOOT_MS * 4 }, async () => {
  let daemon = serve(1);
  let sb: Sandbox | undefined;
  let second: Sandbox | undefined;
  try {
    assert.ok(await waitFor(ready(1), BOOT_MS), 'the pool filled');
    assert.equal(poolQemus().length, 1, 'exactly one pool VM');
    sb = await create();
    assert.equal(sb.vmSource, 'pool');
    assert.ok(sb.timings.get('vm-adopted') !== undefined);
    // The pool is empty until it refills: the next start does not wait for it.
    const t = Date.now();
    second = await create();
    assert.equal(second.vmSource, 'template');
    assert.ok(Date.now() - t < BOOT_MS / 4);
    await second.stop();
    assert.ok(await waitFor(ready(1), BOOT_MS), 'the pool refilled');
    const status = await poolStatus(poolSocket(stateDir));
    assert.equal(status?.handedOut, 1);
    assert.equal(status?.size, 1);

    daemon.kill('SIGKILL');
    await exited(daemon);
    const r = await runIn(sb, 'after-daemon', ['sh', '-c', 'echo still here']);
    assert.equal(r.stdout, 'still here\n', 'the VM the daemon handed out outlived it');
    assert.equal(poolQemus().length, 2, 'the dead daemon left its refill (and the handed-out VM still runs)');

    // A new daemon removes what the dead one left, then fills again; stopping it leaves nothing.
    daemon = serve(1);
    assert.ok(await waitFor(ready(1), BOOT_MS), 'the new pool filled');
    assert.ok(sink.lines.some((l) => l.includes('removing a pool VM nobody holds')));
    daemon.kill('SIGTERM');
    await exited(daemon);
    assert.equal(daemon.exitCode, 0);
    assert.deepEqual(readdirSync(poolVmsDir(stateDir)), [], 'no pool VM directory is left');
    assert.equal(await poolStatus(poolSocket(stateDir)), undefined, 'the socket is gone');
    const r2 = await runIn(sb, 'after-stop', ['true']);
    assert.equal(r2.status, 0, 'the handed-out VM still works after the daemon stopped');
  } finally {
    daemon.kill('SIGKILL');
    await sb?.stop().catch(() => {});
    await second?.stop().catch(() => {});
  }
  assert.equal(await waitFor(() => poolQemus().length === 0, 10_000), true, 'no pool QEMU is left');
});

test('a second daemon is refused while one runs', { timeout: BOOT_MS }, async () => {
  const first = serve(1);
  try {
    assert.ok(await waitFor(async () => (await poolStatus(poolSocket(stateDir)).catch(() => undefined)) !== undefined, BOOT_MS));
    const second = spawn(process.execPath, [HAKO, 'factory', 'serve', '--pool', '1'], { env: { ...process.env, HAKO_CONFIG: configFile }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    second.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    await exited(second);
    assert.notEqual(second.exitCode, 0);
    assert.match(err, /another `hako factory serve` is running/);
  } finally {
    first.kill('SIGTERM');
    await exited(first);
  }
  assert.deepEqual(readdirSync(poolVmsDir(stateDir)), []);
  assert.deepEqual(poolQemus(), []);
  assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(join(stateDir, 'pool')));
});
