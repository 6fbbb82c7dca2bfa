// Integration test of scripts/setup-cni.sh against temporary directories: it links plugins
// without overwriting anything, writes the hako conflist (from hako's configuration) only into
// a directory without CNI configurations, and a second run changes nothing.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConflist } from '../../src/network/cni-config.js';
import { hakoConflist } from '../../src/network/hako-network.js';

const script = new URL('../../../scripts/setup-cni.sh', import.meta.url).pathname;
const root = await mkdtemp(join(tmpdir(), 'hako-setup-cni-'));
after(() => rm(root, { recursive: true, force: true }));

// The conflist must follow hako's configuration: a test config with its own subnet and bridge.
const config = join(root, 'config.toml');
await writeFile(config, '[network]\nsubnet = "10.251.128.0/20"\nbridge = "hakotest9"\n');

function setupCni(...args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', [script, ...args], { timeout: 30_000, env: { ...process.env, HAKO_CONFIG: config } }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stderr });
    });
  });
}

let n = 0;
async function dirs(): Promise<{ bin: string; conf: string; src: string }> {
  const base = join(root, `case${++n}`);
  const d = { bin: join(base, 'opt-cni-bin'), conf: join(base, 'net.d'), src: join(base, 'usr-lib-cni') };
  await mkdir(d.src, { recursive: true });
  for (const p of ['bridge', 'portmap', 'loopback']) {
    await writeFile(join(d.src, p), '#!/bin/sh\n');
    await chmod(join(d.src, p), 0o755);
  }
  await writeFile(join(d.src, 'README'), 'not a plugin');
  await mkdir(join(d.src, 'subdir'));
  return d;
}

test('an empty host gets plugin links and the hako conflist; a second run changes nothing', async () => {
  const d = await dirs();
  const first = await setupCni(d.bin, d.conf, d.src);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual((await readdir(d.bin)).sort(), ['bridge', 'loopback', 'portmap']);
  assert.equal(await readlink(join(d.bin, 'bridge')), join(d.src, 'bridge'));
  assert.deepEqual(await readdir(d.conf), ['10-hako.conflist'], 'no temporary file left');
  const target = join(d.conf, '10-hako.conflist');
  const written = parseConflist(await readFile(target, 'utf8'), target);
  assert.deepEqual(written, hakoConflist({ subnet: '10.251.128.0/20', bridge: 'hakotest9' }));
  assert.equal((await stat(target)).mode & 0o777, 0o644);

  const before = (await stat(target)).mtimeMs;
  const second = await setupCni(d.bin, d.conf, d.src);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stderr, '', 'nothing to do, nothing said');
  assert.equal((await stat(target)).mtimeMs, before);
  assert.deepEqual((await readdir(d.bin)).sort(), ['bridge', 'loopback', 'portmap']);
});

test('existing plugins, dangling links and user configurations are never touched', async () => {
  const d = await dirs();
  await mkdir(d.bin, { recursive: true });
  await mkdir(d.conf, { recursive: true });
  await writeFile(join(d.bin, 'bridge'), 'a newer bridge');
  await symlink('/nonexistent/portmap', join(d.bin, 'portmap'));
  const user = join(d.conf, '99-user.conf');
  await writeFile(user, '{"cniVersion":"0.4.0","name":"mine","type":"bridge"}');
  const r = await setupCni(d.bin, d.conf, d.src);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await readFile(join(d.bin, 'bridge'), 'utf8'), 'a newer bridge');
  assert.equal(await readlink(join(d.bin, 'portmap')), '/nonexistent/portmap');
  assert.ok((await lstat(join(d.bin, 'loopback'))).isSymbolicLink(), 'the missing one is linked');
  assert.deepEqual(await readdir(d.conf), ['99-user.conf']);
  assert.match(r.stderr, /kept the existing CNI configuration .*99-user\.conf/);
  for (const other of ['50-x.json', '50-y.conflist']) {
    const e = await dirs();
    await mkdir(e.conf, { recursive: true });
    await writeFile(join(e.conf, other), '{}');
    assert.equal((await setupCni(e.bin, e.conf, e.src)).code, 0);
    assert.deepEqual(await readdir(e.conf), [other], `${other} counts as a configuration`);
  }
});

test('a changed [network] keeps the written conflist and says so; a used subnet and no plugin source are errors', async () => {
  const d = await dirs();
  assert.equal((await setupCni(d.bin, d.conf, d.src)).code, 0);
  const target = join(d.conf, '10-hako.conflist');
  const text = await readFile(target, 'utf8');
  await writeFile(config, '[network]\nsubnet = "10.251.144.0/20"\nbridge = "hakotest9"\n');
  try {
    const r = await setupCni(d.bin, d.conf, d.src);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /kept .*10-hako\.conflist, which differs from hako's \[network\] configuration/);
    assert.equal(await readFile(target, 'utf8'), text);
  } finally {
    await writeFile(config, '[network]\nsubnet = "10.251.128.0/20"\nbridge = "hakotest9"\n');
  }
  // A subnet the host already uses (every host has 127.0.0.1/8 on lo) is refused, nothing written.
  const e = await dirs();
  await writeFile(config, '[network]\nsubnet = "127.0.0.0/8"\n');
  try {
    const r = await setupCni(e.bin, e.conf, e.src);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /write-cni-conf: the hako network's subnet 127\.0\.0\.0\/8 overlaps an address of this host \(127\.0\.0\.1\/8 on lo\)/);
    assert.deepEqual(await readdir(e.conf), []);
  } finally {
    await writeFile(config, '[network]\nsubnet = "10.251.128.0/20"\nbridge = "hakotest9"\n');
  }
  const missing = await setupCni(join(root, 'b'), join(root, 'c'), join(root, 'no-such-dir'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no-such-dir does not exist \(apt-get install containernetworking-plugins\)/);
});
