// Unit tests of config.json reading and validation: every rejection names its field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, HakoError } from '../errors/index.js';
import { fromBinary } from '@bufbuild/protobuf';
import { UInt32ValueSchema } from '@bufbuild/protobuf/wkt';
import { podNetns, readBundleSpec, validateSpec } from './bundle-spec.js';
import { GUEST_PID_TYPE_URL, guestProcessInfo } from './task-service.js';

const good = { ociVersion: '1.0.2', process: { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 } }, root: { path: 'rootfs' }, mounts: [{ destination: '/proc', type: 'proc' }] };

function rejects(spec: unknown, field: string) {
  assert.throws(() => validateSpec(spec), (e: unknown) => {
    assert.ok(e instanceof HakoError);
    assert.equal(e.code, Code.INVALID_ARGUMENT);
    assert.ok(e.message.includes(field), `"${e.message}" names ${field}`);
    return true;
  });
}

test('accepts a plain spec', () => {
  validateSpec(good);
});

test('names the offending field', () => {
  rejects({ ...good, process: undefined }, 'process');
  rejects({ ...good, process: { ...good.process, args: [] } }, 'process.args');
  rejects({ ...good, process: { ...good.process, args: ['a', 1] } }, 'process.args');
  rejects({ ...good, process: { ...good.process, cwd: 'rel' } }, 'process.cwd');
  rejects({ ...good, process: { ...good.process, env: 'PATH=/' } }, 'process.env');
  rejects({ ...good, process: { ...good.process, user: { uid: -1, gid: 0 } } }, 'process.user.uid');
  rejects({ ...good, root: { path: '' } }, 'root.path');
  rejects({ ...good, mounts: [{ destination: 'proc' }] }, 'mounts[0].destination');
  rejects({ ...good, annotations: { a: 1 } }, 'annotations["a"]');
  rejects({ ...good, linux: { namespaces: [{}] } }, 'linux.namespaces[0].type');
  rejects([], '(root)');
});

test('readBundleSpec reports bad JSON and a missing file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hako-spec-'));
  try {
    await assert.rejects(readBundleSpec(dir), /config\.json/);
    writeFileSync(join(dir, 'config.json'), '{"process":');
    await assert.rejects(readBundleSpec(dir), (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT && /not valid JSON/.test(e.message));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(good));
    assert.deepEqual(await readBundleSpec(dir), good);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('podNetns: a path joins, no path makes one, no entry is the host network (isolated anyway)', () => {
  const withNs = (ns: unknown[]) => ({ ...good, linux: { namespaces: ns } });
  assert.deepEqual(podNetns(withNs([{ type: 'pid' }, { type: 'network', path: '/var/run/netns/cni-1' }])), { kind: 'join', path: '/var/run/netns/cni-1', hostNetwork: false });
  assert.deepEqual(podNetns(withNs([{ type: 'network' }])), { kind: 'new', hostNetwork: false });
  assert.deepEqual(podNetns(withNs([{ type: 'pid' }])), { kind: 'new', hostNetwork: true });
  assert.throws(() => podNetns(withNs([{ type: 'network', path: 'rel' }])), /linux.namespaces\[network\].path "rel" must be absolute/);
});

test('guestProcessInfo reports the host pid with the guest pid in info', () => {
  const [p] = guestProcessInfo([67], 4242);
  assert.equal(p!.pid, 4242);
  assert.equal(p!.info!.typeUrl, GUEST_PID_TYPE_URL);
  assert.equal(fromBinary(UInt32ValueSchema, p!.info!.value).value, 67);
  assert.deepEqual(guestProcessInfo([5], 0), [{ pid: 5 }]);
});
