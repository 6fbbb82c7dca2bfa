// Unit tests of the template store on a tmpfs directory: atomic install, one build among
// concurrent builders, broken templates discarded, failed builds cleaned up and remembered.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nullLogger } from '../log/index.js';
import { Code, HakoError } from '../errors/index.js';
import { FACTORY_FORMAT, type TemplateKey } from './key.js';
import { TemplateStore, type BuildPaths } from './store.js';

// /dev/shm is tmpfs, so the store needs no mount of its own.
const root = await mkdtemp('/dev/shm/hako-store-test-');
after(() => rm(root, { recursive: true, force: true }));

const tk = (c: string): TemplateKey => ({ key: c.repeat(64), inputs: { format: FACTORY_FORMAT, kernel: 'k', rootImage: 'r', vcpus: 1, memoryMiB: 1, accel: 'tcg', kernelParams: [], qemu: 'q', devices: 'd', cpu: '', warmUp: '1' } });

async function fakeBuild(p: BuildPaths): Promise<{ buildMs: number; state: { bytes: number; sha256: string }; ramBytes: number; guest: Record<string, string> }> {
  await writeFile(p.ram, Buffer.alloc(1024 * 1024));
  await writeFile(p.state, 'state!');
  return { buildMs: 1, state: { bytes: 6, sha256: 'x' }, ramBytes: 1024 * 1024, guest: {} };
}

test('a built template is installed whole and found again', async () => {
  const store = new TemplateStore(join(root, 'a'), nullLogger);
  assert.equal(await store.lookup(tk('a')), undefined);
  const t = await store.build(tk('a'), fakeBuild, { timeoutMs: 10_000 });
  assert.equal(t.dir, join(root, 'a', 'templates', 'a'.repeat(64)));
  assert.equal(t.meta.state.bytes, 6);
  assert.deepEqual((await readdir(t.dir)).sort(), ['meta.json', 'ram', 'state']);
  assert.equal((await store.lookup(tk('a')))?.key, 'a'.repeat(64));
  const listed = await store.list();
  assert.equal(listed.length, 1);
  assert.equal(listed[0]!.problem, undefined);
  // ram + state + meta.json; tmpfs really holds the RAM file's zero-filled MiB.
  assert.ok(listed[0]!.fileBytes > 1024 * 1024 + 6, `fileBytes ${listed[0]!.fileBytes}`);
  assert.ok(listed[0]!.residentBytes >= 1024 * 1024, `residentBytes ${listed[0]!.residentBytes}`);
});

test('concurrent builders make one template between them', async () => {
  const store = new TemplateStore(join(root, 'b'), nullLogger);
  let builds = 0;
  const slow = async (p: BuildPaths) => {
    builds++;
    await new Promise((r) => setTimeout(r, 300));
    return fakeBuild(p);
  };
  const got = await Promise.all([1, 2, 3, 4].map(() => new TemplateStore(join(root, 'b'), nullLogger).build(tk('b'), slow, { timeoutMs: 30_000 })));
  assert.equal(builds, 1);
  assert.ok(got.every((t) => t.key === 'b'.repeat(64)));
  assert.deepEqual(await readdir(store.templatesDir), ['b'.repeat(64)]);
});

test('a truncated file makes the template unusable: it is discarded', async () => {
  const store = new TemplateStore(join(root, 'c'), nullLogger);
  const t = await store.build(tk('c'), fakeBuild, { timeoutMs: 10_000 });
  await truncate(t.state, 3);
  assert.match((await store.list())[0]!.problem ?? '', /state file is 3 bytes, not 6/);
  assert.equal(await store.lookup(tk('c')), undefined);
  assert.deepEqual(await readdir(store.templatesDir), []);
  const t2 = await store.build(tk('c'), fakeBuild, { timeoutMs: 10_000 });
  await truncate(t2.ram, 4096);
  assert.equal(await store.lookup(tk('c')), undefined);
});

test('a failed build leaves nothing, and two failures in a row pause the builds', async () => {
  const store = new TemplateStore(join(root, 'd'), nullLogger);
  const failing = async (p: BuildPaths): Promise<never> => {
    await writeFile(p.ram, 'partial');
    throw new HakoError(Code.UNKNOWN, 'qemu was killed while saving');
  };
  await assert.rejects(store.build(tk('d'), failing, { timeoutMs: 10_000 }), /killed while saving/);
  assert.equal(await store.recentFailure('d'.repeat(64)), undefined, 'one failure is retried');
  assert.deepEqual((await readdir(store.templatesDir)).filter((n) => !n.startsWith('.failed-')), []);
  await assert.rejects(store.build(tk('d'), failing, { timeoutMs: 10_000 }), /killed while saving/);
  assert.match((await store.recentFailure('d'.repeat(64))) ?? '', /killed while saving/);
  // A success clears the memo.
  await store.build(tk('d'), fakeBuild, { timeoutMs: 10_000 });
  assert.equal(await store.recentFailure('d'.repeat(64)), undefined);
});

test('a new template of the same VM shape supersedes the old one; other shapes stay', async () => {
  const store = new TemplateStore(join(root, 'g'), nullLogger);
  const bigger: TemplateKey = { key: 'b'.repeat(63) + '1', inputs: { ...tk('x').inputs, memoryMiB: 2 } };
  await store.build(tk('1'), fakeBuild, { timeoutMs: 10_000 });
  await store.build(bigger, fakeBuild, { timeoutMs: 10_000 });
  const newer: TemplateKey = { key: '2'.repeat(64), inputs: { ...tk('x').inputs, rootImage: 'r2' } };
  await store.build(newer, fakeBuild, { timeoutMs: 10_000 });
  assert.deepEqual((await readdir(store.templatesDir)).sort(), ['2'.repeat(64), 'b'.repeat(63) + '1']);
});

test('destroy unlinks every template; a mapped file would survive it', async () => {
  const store = new TemplateStore(join(root, 'e'), nullLogger);
  await store.build(tk('e'), fakeBuild, { timeoutMs: 10_000 });
  await store.build({ key: 'f'.repeat(64), inputs: { ...tk('f').inputs, vcpus: 2 } }, fakeBuild, { timeoutMs: 10_000 });
  assert.equal(await store.destroy(), 2);
  assert.deepEqual(await readdir(store.templatesDir), []);
  assert.throws(() => store.pathsOf('../x'), /not a sha256/);
});
