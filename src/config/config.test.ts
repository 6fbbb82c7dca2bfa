// Unit tests of the configuration schema and loader: defaults, validation messages,
// unknown keys and HAKO_CONFIG handling.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { Code, HakoError } from '../errors/index.js';
import { SCHEMA, defaultConfig, loadConfig, parseConfig, renderSchema } from './index.js';

function rejects(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseConfig(text, 'x.toml'),
    (err: unknown) => err instanceof HakoError && err.code === Code.INVALID_ARGUMENT && pattern.test(err.message),
  );
}

test('empty file gives the defaults', () => {
  const c = parseConfig('');
  assert.deepEqual(c, defaultConfig());
  assert.equal(c.hypervisor.accel, 'auto');
  assert.equal(c.runtime.stateDir, '/run/hako');
  assert.equal(c.runtime.cacheDir, '/var/cache/hako');
  assert.deepEqual(c.hypervisor.kernelParams, []);
  assert.deepEqual(c.network, { subnet: '10.213.0.0/16', bridge: 'hako0', pluginDirs: ['/opt/cni/bin', '/usr/lib/cni'] });
});

test('every key has a description and a default that validates', () => {
  for (const spec of SCHEMA) {
    assert.ok(spec.description.length > 10, `${spec.section}.${spec.key} needs a description`);
  }
  // The rendered schema is valid TOML that parses back to the defaults.
  const text = renderSchema();
  assert.deepEqual(parseConfig(text), defaultConfig());
  assert.ok(parse(text));
});

test('values are read and mapped to camelCase properties', () => {
  const c = parseConfig(`
[hypervisor]
accel = "tcg"
vcpus = 2
memory_mib = 512
kernel_params = "loglevel=7  debug"
[agent]
timeout_ms = 5000
boot_timeout_ms = 20000
[runtime]
state_dir = "/tmp/hako-state"
[factory]
template = false
pool = 3
[network]
subnet = "10.77.8.0/22"
bridge = "hakobr1"
plugin_dirs = ["/usr/local/cni", "/usr/lib/cni"]
[log]
level = "debug"
`);
  assert.equal(c.hypervisor.accel, 'tcg');
  assert.equal(c.hypervisor.vcpus, 2);
  assert.equal(c.hypervisor.memoryMiB, 512);
  assert.deepEqual(c.hypervisor.kernelParams, ['loglevel=7', 'debug']);
  assert.equal(c.agent.timeoutMs, 5000);
  assert.equal(c.agent.bootTimeoutMs, 20000);
  assert.equal(c.runtime.stateDir, '/tmp/hako-state');
  assert.equal(c.runtime.cacheDir, '/var/cache/hako');
  assert.equal(c.log.level, 'debug');
  assert.equal(c.factory.template, false);
  assert.equal(c.factory.pool, 3);
  assert.deepEqual(c.network, { subnet: '10.77.8.0/22', bridge: 'hakobr1', pluginDirs: ['/usr/local/cni', '/usr/lib/cni'] });
  assert.equal(defaultConfig().factory.template, true);
  assert.deepEqual(parseConfig('[hypervisor]\nkernel_params = ["a=1", "b"]').hypervisor.kernelParams, ['a=1', 'b']);
});

test('unknown keys and sections are rejected by name', () => {
  rejects('[hypervisor]\nmemory = 5', /unknown key hypervisor\.memory\b.*memory_mib/);
  rejects('[networking]\nx = 1', /unknown section \[networking\].*network/);
  rejects('[network]\nplugin_dir = "/x"', /unknown key network\.plugin_dir\b.*plugin_dirs/);
  rejects('top = 1', /unknown section \[top\]/);
});

test('bad values are rejected with the key and the reason', () => {
  rejects('[hypervisor]\naccel = "xen"', /hypervisor\.accel must be one of auto, kvm, tcg, not "xen"/);
  rejects('[hypervisor]\nvcpus = 0', /hypervisor\.vcpus must be between 1 and 64, not 0/);
  rejects('[hypervisor]\nvcpus = 1.5', /hypervisor\.vcpus must be an integer/);
  rejects('[hypervisor]\nvcpus = "2"', /hypervisor\.vcpus must be an integer, not "2"/);
  rejects('[hypervisor]\nmemory_mib = 64', /memory_mib must be between 128/);
  rejects('[hypervisor]\npath = "qemu"', /hypervisor\.path must be an absolute path/);
  rejects('[hypervisor]\nkernel_params = ["a b"]', /kernel_params must be a string or an array of words/);
  rejects('[runtime]\nstate_dir = ""', /state_dir must be a non-empty string/);
  rejects('[log]\nlevel = "trace"', /log\.level must be one of/);
  rejects('[factory]\ntemplate = "yes"', /factory\.template must be true or false, not "yes"/);
  rejects('[factory]\npool = 65', /factory\.pool must be between 0 and 64/);
  rejects('[network]\nsubnet = "10.213.0.0"', /network\.subnet must be an IPv4 network in CIDR form/);
  rejects('[network]\nsubnet = "10.213.0.0/31"', /network\.subnet must be .*prefix \/8 to \/30/);
  rejects('[network]\nsubnet = "300.1.0.0/16"', /network\.subnet must be an IPv4 network/);
  rejects('[network]\nsubnet = "10.213.0.1/16"', /network\.subnet has host bits set: the network is 10\.213\.0\.0\/16/);
  rejects('[network]\nbridge = "a-bridge-name-too-long"', /network\.bridge must be an interface name of 1-15/);
  rejects('[network]\nbridge = "br/0"', /network\.bridge must be an interface name/);
  rejects('[network]\nplugin_dirs = ["/opt/cni/bin", "cni"]', /network\.plugin_dirs must hold absolute paths, not "cni"/);
  rejects('hypervisor = 3', /hypervisor must be a table/);
  rejects('[hypervisor\n', /x\.toml: invalid TOML \(line 1/);
});

test('loadConfig: missing default file means defaults, HAKO_CONFIG must exist', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hako-config-'));
  try {
    const missing = join(dir, 'none.toml');
    await assert.rejects(loadConfig({ env: { HAKO_CONFIG: missing } }), (err: unknown) =>
      err instanceof HakoError && err.code === Code.NOT_FOUND && err.message.includes('HAKO_CONFIG') && err.message.includes(missing));
    const file = join(dir, 'c.toml');
    await writeFile(file, '[hypervisor]\nvcpus = 2\n');
    const loaded = await loadConfig({ env: { HAKO_CONFIG: file } });
    assert.equal(loaded.source, file);
    assert.equal(loaded.config.hypervisor.vcpus, 2);
    // Drop-ins in config.d next to the file apply in name order, each over the one before.
    await mkdir(join(dir, 'config.d'));
    await writeFile(join(dir, 'config.d', '20-b.toml'), '[factory]\npool = 4\n');
    await writeFile(join(dir, 'config.d', '10-a.toml'), '[factory]\ntemplate = false\npool = 2\n');
    await writeFile(join(dir, 'config.d', 'notes.txt'), 'not toml');
    const dropped = await loadConfig({ path: file });
    assert.deepEqual(dropped.dropIns, [join(dir, 'config.d', '10-a.toml'), join(dir, 'config.d', '20-b.toml')]);
    assert.equal(dropped.config.factory.template, false);
    assert.equal(dropped.config.factory.pool, 4);
    assert.equal(dropped.config.hypervisor.vcpus, 2);
    await writeFile(join(dir, 'config.d', '30-bad.toml'), '[factory]\ntemplate = 1\n');
    await assert.rejects(loadConfig({ path: file }), /30-bad\.toml: factory\.template must be true or false/);
    await writeFile(file, '[hypervisor]\nbogus = 2\n');
    await assert.rejects(loadConfig({ path: file }), /unknown key hypervisor\.bogus/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
