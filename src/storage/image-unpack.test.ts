// Unit tests of tar reading, layer application with whiteouts, and unpacking OCI layouts
// and archives into the rootfs cache (plain files in a temporary directory, no mounts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { nullLogger } from '../log/index.js';
import { applyLayer } from './apply-layer.js';
import { parseImageRef, unpackImage } from './image-unpack.js';
import { makeTar, writeLayout } from './tar-fixture.js';
import { parseNumeric, readTar, type TarEntry } from './tar-reader.js';

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hako-unpack-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function chunked(buf: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

test('readTar reads members, pax long names and bodies split across chunks', async () => {
  const long = 'd/' + 'x'.repeat(150);
  const tar = makeTar([
    { name: 'd/', type: 'dir' },
    { name: 'd/f', data: 'hello world' },
    { name: 'ignored', pax: { path: long }, data: 'long' },
    { name: 'd/l', type: 'symlink', linkName: '../f' },
  ]);
  const seen: Array<[TarEntry, string]> = [];
  await readTar(chunked(tar, 7), async (e, body) => {
    let s = '';
    if (e.name !== 'd/') await body.pipe((c) => void (s += c.toString()));
    seen.push([e, s]);
  });
  assert.deepEqual(seen.map(([e, s]) => [e.name, e.type, s]), [
    ['d/', 'dir', ''],
    ['d/f', 'file', 'hello world'],
    [long, 'file', 'long'],
    ['d/l', 'symlink', ''],
  ]);
  assert.equal(seen[3]![0].linkName, '../f');
  assert.equal(seen[1]![0].mtime.getTime(), 1_700_000_000_000);
});

test('readTar rejects garbage and truncated archives', async () => {
  await assert.rejects(readTar(Readable.from([Buffer.alloc(512, 1)]), async () => {}), /checksum/);
  const tar = makeTar([{ name: 'f', data: 'x'.repeat(1000) }]);
  await assert.rejects(readTar(Readable.from([tar.subarray(0, 700)]), async (_e, b) => b.pipe(() => {})), /ends inside/);
  const b = Buffer.alloc(12);
  b[0] = 0x80;
  b[11] = 5;
  assert.equal(parseNumeric(b, 0, 12), 5);
});

test('applyLayer applies files, links, whiteouts and opaque dirs; refuses escapes', async () => {
  await withTmp(async (root) => {
    await applyLayer(root, Readable.from([makeTar([
      { name: 'etc/', type: 'dir' },
      { name: 'etc/a', data: 'A' },
      { name: 'etc/b', data: 'B', mode: 0o4755 },
      { name: 'keep/', type: 'dir' },
      { name: 'keep/old', data: 'old' },
      { name: 'keep/sub/', type: 'dir' },
      { name: 'abs', type: 'symlink', linkName: '/' },
      { name: 'hl', type: 'hardlink', linkName: 'etc/a' },
    ])]));
    assert.equal(await readFile(join(root, 'hl'), 'utf8'), 'A');
    assert.equal((await stat(join(root, 'etc/b'))).mode & 0o7777, 0o4755);
    await applyLayer(root, Readable.from([makeTar([
      { name: 'etc/.wh.a', data: '' },
      { name: 'keep/new', data: 'new' },
      { name: 'keep/.wh..wh..opq', data: '' },
      { name: 'etc/b', data: 'B2' },
      // Through the absolute symlink: must land in root/tmp, never in the host's /tmp.
      { name: 'abs/tmp/', type: 'dir' },
      { name: 'abs/tmp/hako-escape-test', data: 'x' },
    ])]));
    await assert.rejects(lstat(join(root, 'etc/a')), /ENOENT/);
    assert.equal(await readFile(join(root, 'etc/b'), 'utf8'), 'B2');
    assert.deepEqual((await readdir(join(root, 'keep'))).sort(), ['new']);
    assert.equal(await readFile(join(root, 'tmp/hako-escape-test'), 'utf8'), 'x');
    await assert.rejects(lstat('/tmp/hako-escape-test'), /ENOENT/);
    assert.equal(await readlink(join(root, 'abs')), '/');
    await assert.rejects(applyLayer(root, Readable.from([makeTar([{ name: '../evil', data: 'x' }])])), /climbs out of the root/);
    await assert.rejects(applyLayer(root, Readable.from([makeTar([{ name: 'h', type: 'hardlink', linkName: '../../etc/passwd' }])])), /leaves the root/);
  });
});

test('unpackImage unpacks a layout once, keyed by manifest digest, and reads the config', async () => {
  await withTmp(async (dir) => {
    const layout = join(dir, 'img');
    const cache = join(dir, 'cache');
    const { manifestDigest } = await writeLayout(
      layout,
      [[{ name: 'bin/', type: 'dir' }, { name: 'bin/tool', data: '#!/bin/sh\n', mode: 0o755 }, { name: 'w/', type: 'dir' }, { name: 'w/gone', data: 'x' }],
       [{ name: 'w/.wh.gone', data: '' }, { name: 'w/here', data: 'y' }]],
      { Env: ['PATH=/bin', 'A=1'], Cmd: ['tool'], WorkingDir: '/w', User: '1000' },
    );
    const ref = await parseImageRef(layout);
    assert.equal(ref.kind, 'dir');
    const first = await unpackImage({ ref, cacheDir: cache, log: nullLogger });
    assert.equal(first.cached, false);
    assert.equal(first.manifestDigest, manifestDigest);
    assert.equal(first.rootfs, join(cache, 'rootfs', manifestDigest.slice(7)));
    assert.deepEqual(first.config.env, ['PATH=/bin', 'A=1']);
    assert.deepEqual(first.config.cmd, ['tool']);
    assert.equal(first.config.workingDir, '/w');
    assert.equal(first.config.user, '1000');
    assert.deepEqual((await readdir(join(first.rootfs, 'w'))).sort(), ['here']);
    const again = await unpackImage({ ref: await parseImageRef(`${layout}:latest`), cacheDir: cache, log: nullLogger });
    assert.equal(again.cached, true);
    assert.deepEqual(await readdir(join(cache, 'rootfs')), [manifestDigest.slice(7)]);
    await assert.rejects(unpackImage({ ref: { path: layout, tag: 'v2', kind: 'dir' }, cacheDir: cache, log: nullLogger }), /no tag "v2" \(tags: latest\)/);
  });
});

test('unpackImage reads an OCI archive and rejects corrupt blobs and non-layouts', async () => {
  await withTmp(async (dir) => {
    const layout = join(dir, 'img');
    await writeLayout(layout, [[{ name: 'hello', data: 'hi' }]], {}, { gzip: false });
    // Pack the layout into an archive the way `tar -C img -cf img.tar .` would.
    const entries = [{ name: './', type: 'dir' as const }];
    const files: Array<{ name: string; data: Buffer }> = [];
    const walk = async (rel: string): Promise<void> => {
      for (const name of await readdir(join(layout, rel))) {
        const p = rel === '' ? name : `${rel}/${name}`;
        if ((await stat(join(layout, p))).isDirectory()) {
          entries.push({ name: `./${p}/`, type: 'dir' });
          await walk(p);
        } else files.push({ name: `./${p}`, data: await readFile(join(layout, p)) });
      }
    };
    await walk('');
    await writeFile(join(dir, 'img.tar'), makeTar([...entries, ...files]));
    const ref = await parseImageRef(join(dir, 'img.tar'));
    assert.equal(ref.kind, 'archive');
    const img = await unpackImage({ ref, cacheDir: join(dir, 'cache'), log: nullLogger });
    assert.equal(await readFile(join(img.rootfs, 'hello'), 'utf8'), 'hi');
    assert.deepEqual(await readdir(join(dir, 'cache', 'tmp')), [], 'archive extraction is cleaned up');

    // Corrupt the layer blob: the digest check must catch it and leave no rootfs behind.
    const blobs = join(layout, 'blobs', 'sha256');
    for (const name of await readdir(blobs)) {
      const data = await readFile(join(blobs, name));
      if (data.length >= 1024) await writeFile(join(blobs, name), Buffer.concat([data.subarray(0, 600), Buffer.from('X'), data.subarray(601)]));
    }
    await assert.rejects(unpackImage({ ref: { path: layout, kind: 'dir' }, cacheDir: join(dir, 'cache2'), log: nullLogger }), /does not match its digest/);
    assert.deepEqual(await readdir(join(dir, 'cache2', 'rootfs')), []);

    await mkdir(join(dir, 'plain'));
    await assert.rejects(unpackImage({ ref: { path: join(dir, 'plain'), kind: 'dir' }, cacheDir: join(dir, 'c3'), log: nullLogger }), /not an OCI image layout/);
    await assert.rejects(parseImageRef(join(dir, 'nothing-here')), /no such file or directory/);
  });
});
