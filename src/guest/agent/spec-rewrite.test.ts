// Unit tests for the guest's spec rewriting: share-relative paths, refusals, dropped host settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, HakoError } from '../../errors/index.js';
import { isUnderShare, parseJsonObject, resolveSharePath, rewriteProcess, rewriteSpec } from './spec-rewrite.js';

const base = () => ({
  ociVersion: '1.0.2',
  process: { args: ['sh'], cwd: '/', env: ['PATH=/bin'], apparmorProfile: 'x', terminal: false },
  root: { path: 'c1/rootfs', readonly: false },
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/data', type: 'bind', source: 'c1/volumes/0', options: ['rbind', 'rw'] },
    { destination: '/etc/hosts', source: 'c1/files/hosts', options: ['bind', 'ro'] },
  ],
  hooks: { prestart: [{ path: '/usr/bin/x' }] },
  linux: {
    cgroupsPath: '/k8s/pod1/c1',
    mountLabel: 'z',
    namespaces: [{ type: 'pid' }, { type: 'network', path: '/var/run/netns/cni-1' }, { type: 'ipc', path: '/proc/9/ns/ipc' }, { type: 'mount' }],
  },
});

function code(fn: () => unknown): Code {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HakoError);
    return err.code;
  }
  assert.fail('expected an error');
}

test('rewriteSpec maps root and bind sources under the share and drops host-only settings', () => {
  const { spec, paths, dropped } = rewriteSpec(base(), { containerId: 'c1', terminal: true });
  assert.equal((spec.root as { path: string }).path, '/run/hako/shared/c1/rootfs');
  const mounts = spec.mounts as Array<{ source: string }>;
  assert.equal(mounts[0]!.source, 'proc');
  assert.equal(mounts[1]!.source, '/run/hako/shared/c1/volumes/0');
  assert.equal(mounts[2]!.source, '/run/hako/shared/c1/files/hosts');
  assert.deepEqual(paths, ['/run/hako/shared/c1/rootfs', '/run/hako/shared/c1/volumes/0', '/run/hako/shared/c1/files/hosts']);
  assert.equal(spec.hooks, undefined);
  const linux = spec.linux as { cgroupsPath: string; namespaces: Array<{ type: string }>; mountLabel?: string };
  assert.equal(linux.cgroupsPath, '/c1/ctr');
  assert.deepEqual(linux.namespaces.map((n) => n.type), ['pid', 'mount']);
  assert.equal(linux.mountLabel, undefined);
  assert.deepEqual((spec.linux as { personality?: unknown }).personality, { domain: 'LINUX' }, 'crun resets its no-ASLR personality for the container');
  const proc = spec.process as { terminal: boolean; apparmorProfile?: string };
  assert.equal(proc.terminal, true);
  assert.equal(proc.apparmorProfile, undefined);
  assert.ok(dropped.includes('hooks') && dropped.includes('linux.namespaces[network]'));
});

test('rewriteSpec does not modify its input', () => {
  const input = base();
  rewriteSpec(input, { containerId: 'c1', terminal: false });
  assert.equal(input.root.path, 'c1/rootfs');
  assert.equal(input.mounts[1]!.source, 'c1/volumes/0');
});

test('absolute, escaping and empty share paths are refused', () => {
  for (const bad of ['/etc', '../x', 'c1/../../etc', 'c1/..', '', '.', './', 'a\0b']) {
    assert.equal(code(() => resolveSharePath(bad, 'p')), Code.INVALID_ARGUMENT, `path ${JSON.stringify(bad)}`);
  }
  assert.equal(resolveSharePath('c1//rootfs/', 'p'), '/run/hako/shared/c1/rootfs');
  assert.equal(resolveSharePath('./c1/rootfs', 'p'), '/run/hako/shared/c1/rootfs');
  const s = base();
  s.mounts[1]!.source = '/var/lib/data';
  assert.equal(code(() => rewriteSpec(s, { containerId: 'c1', terminal: false })), Code.INVALID_ARGUMENT);
  const r = base();
  r.root.path = '../../etc';
  assert.equal(code(() => rewriteSpec(r, { containerId: 'c1', terminal: false })), Code.INVALID_ARGUMENT);
});

test('unknown mount types and pseudo mounts with path sources are refused', () => {
  const s = base();
  (s.mounts as unknown[]).push({ destination: '/x', type: 'ext4', source: '/dev/vdb' });
  assert.equal(code(() => rewriteSpec(s, { containerId: 'c1', terminal: false })), Code.INVALID_ARGUMENT);
  const t = base();
  (t.mounts as unknown[]).push({ destination: '/x', type: 'tmpfs', source: '/etc' });
  assert.equal(code(() => rewriteSpec(t, { containerId: 'c1', terminal: false })), Code.INVALID_ARGUMENT);
});

test('isUnderShare accepts only paths strictly inside the share', () => {
  assert.ok(isUnderShare('/run/hako/shared/c1/rootfs'));
  assert.ok(!isUnderShare('/run/hako/shared'));
  assert.ok(!isUnderShare('/run/hako/sharedx/a'));
  assert.ok(!isUnderShare('/etc/passwd'));
});

test('rewriteProcess requires args and an absolute cwd, and sets terminal', () => {
  assert.equal(code(() => rewriteProcess({ args: [] }, false, 'p')), Code.INVALID_ARGUMENT);
  assert.equal(code(() => rewriteProcess({ args: ['sh', 1] }, false, 'p')), Code.INVALID_ARGUMENT);
  assert.equal(code(() => rewriteProcess({ args: ['sh'], cwd: 'tmp' }, false, 'p')), Code.INVALID_ARGUMENT);
  const p = rewriteProcess({ args: ['sh'], terminal: true, selinuxLabel: 'l' }, false, 'p');
  assert.equal(p.terminal, false);
  assert.equal(p.selinuxLabel, undefined);
});

test('parseJsonObject bounds and checks the JSON', () => {
  assert.equal(code(() => parseJsonObject(new Uint8Array(), 's')), Code.INVALID_ARGUMENT);
  assert.equal(code(() => parseJsonObject(Buffer.from('[1]'), 's')), Code.INVALID_ARGUMENT);
  assert.equal(code(() => parseJsonObject(Buffer.from('{'), 's')), Code.INVALID_ARGUMENT);
  assert.equal(code(() => parseJsonObject(new Uint8Array(3 << 20).fill(32), 's')), Code.INVALID_ARGUMENT);
  assert.deepEqual(parseJsonObject(Buffer.from('{"a":1}'), 's'), { a: 1 });
});

test('rewriteSpec keeps a personality the spec names', () => {
  const input = base();
  (input.linux as Record<string, unknown>).personality = { domain: 'LINUX32' };
  assert.deepEqual((rewriteSpec(input, { containerId: 'c1', terminal: false }).spec.linux as { personality: unknown }).personality, { domain: 'LINUX32' });
});
