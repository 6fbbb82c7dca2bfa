// The hako commands that need no VM: version, help, check, image build (cached), and the error
// messages of ps/exec/kill/rm for containers that do not exist or bad arguments.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hako, prefix } from './cli-harness.js';

test('version and help', async () => {
  const v = await hako(['version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^hako \d+\.\d+\.\d+\nnode v\d+/);
  const h = await hako(['--help']);
  assert.equal(h.code, 0);
  for (const cmd of ['run', 'exec', 'ps', 'kill', 'rm', 'image', 'check', 'version']) assert.match(h.stdout, new RegExp(`^  ${cmd} `, 'm'));
  const rh = await hako(['run', '--help']);
  assert.equal(rh.code, 0);
  assert.match(rh.stdout, /--rootfs DIR/);
  const none = await hako([]);
  assert.equal(none.code, 125);
  const bad = await hako(['frobnicate']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /unknown command "frobnicate"/);
  const lvl = await hako(['--log-level', 'loud', 'ps']);
  assert.equal(lvl.code, 125);
  assert.match(lvl.stderr, /--log-level "loud" must be/);
});

test('check explains QEMU, the accelerator and the assets', { timeout: 60_000 }, async () => {
  const r = await hako(['check']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ok\s+qemu\s+QEMU emulator version \d/m);
  assert.match(r.stdout, /^(ok|warn)\s+accelerator\s+using (KVM|TCG).*: \S/m, 'names the accelerator and why');
  assert.match(r.stdout, /^\S+\s+asset kernel\s/m);
  assert.match(r.stdout, /^\S+\s+asset root\s/m);
  assert.match(r.stdout, /^ok\s+9p\s/m);
  assert.match(r.stdout, /^\S+\s+containerd\s/m);
  assert.match(r.stdout, /^\S+\s+\/dev\/net\/tun\s/m);
});

test('image build reports the built assets', { timeout: 900_000 }, async () => {
  const r = await hako(['image', 'build'], { timeoutMs: 900_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^kernel\s+\/\S+\/bzImage$/m);
  assert.match(r.stdout, /^root\s+\/\S+\/root\.img$/m);
  assert.match(r.stdout, /^busybox\s+\/\S+$/m);
  const bad = await hako(['image', 'frob']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /unknown subcommand "frob"/);
});

test('image prune removes stale kernels and root images, and --dry-run only lists them', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'hako-prune-'));
  try {
    const stale = [join(cache, 'kernel', 'feedface'), join(cache, 'root', 'deadbeef')];
    for (const d of stale) mkdirSync(d, { recursive: true });
    writeFileSync(join(cache, 'config.toml'), `[runtime]\ncache_dir = "${cache}"\n`);
    const env = { HAKO_CONFIG: join(cache, 'config.toml') };
    const dry = await hako(['image', 'prune', '--dry-run'], { env });
    assert.equal(dry.code, 0, dry.stderr);
    for (const d of stale) assert.match(dry.stdout, new RegExp(`^would remove ${d}$`, 'm'));
    for (const d of stale) assert.ok(existsSync(d), `--dry-run removed ${d}`);
    const real = await hako(['image', 'prune'], { env });
    assert.equal(real.code, 0, real.stderr);
    for (const d of stale) assert.ok(!existsSync(d), `${d} is still there`);
    const again = await hako(['image', 'prune'], { env });
    assert.match(again.stdout, /nothing to prune/);
    const bad = await hako(['image', 'prune', 'extra'], { env });
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /unexpected argument extra/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('ps, exec, kill and rm name what is wrong', async () => {
  const ps = await hako(['ps']);
  assert.equal(ps.code, 0);
  assert.match(ps.stdout, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS/);
  const ghost = `${prefix}-ghost`;
  for (const args of [['exec', ghost, 'true'], ['kill', ghost], ['rm', ghost]]) {
    const r = await hako(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, new RegExp(`no such container: "${ghost}"`), args.join(' '));
  }
  const noCmd = await hako(['exec', ghost]);
  assert.equal(noCmd.code, 125);
  assert.match(noCmd.stderr, /a CONTAINER and a COMMAND are required/);
  const badSig = await hako(['kill', ghost, 'SIGNOPE']);
  assert.equal(badSig.code, 125);
  assert.match(badSig.stderr, /unknown signal "SIGNOPE"/);
});
