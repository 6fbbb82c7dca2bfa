// Unit tests of the capped console log: the cap, the one truncation line, discarding after it,
// and the socket reader draining a peer that writes far more than the cap (local socket, no VM).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CappedLogWriter, ConsoleReader, CONSOLE_LOG_MAX_BYTES, truncationLine } from './console.js';

const root = await mkdtemp(join(tmpdir(), 'hako-console-'));
after(() => rm(root, { recursive: true, force: true }));

test('the default cap is 4 MiB', () => {
  assert.equal(CONSOLE_LOG_MAX_BYTES, 4 * 1024 * 1024);
});

test('output past the cap is cut, marked with one line, and the rest discarded', async () => {
  const path = join(root, 'cut.log');
  const cap = 1000;
  const w = await CappedLogWriter.open(path, cap);
  // 30 chunks of 70 bytes, no newlines: the cap falls in the middle of chunk 15.
  for (let i = 0; i < 30; i++) w.write(Buffer.alloc(70, 0x41 + (i % 26)));
  await w.close();
  const text = await readFile(path, 'utf8');
  const line = truncationLine(cap);
  assert.equal(line, `[hako: console output truncated at ${cap} bytes]\n`);
  // The guest's last line was cut mid-way, so the mark starts on a line of its own.
  assert.equal((await stat(path)).size, cap + 1 + Buffer.byteLength(line));
  assert.ok(text.endsWith(`\n${line}`));
  assert.equal(text.split(line).length, 2, 'exactly one truncation line');
  assert.equal(w.written, cap);
  assert.equal(w.discarded, 30 * 70 - cap);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
});

test('a cap reached at a line end adds no blank line; writes after close are ignored', async () => {
  const path = join(root, 'lines.log');
  const w = await CappedLogWriter.open(path, 8);
  w.write(Buffer.from('abc\ndef\nghi\n'));
  w.write(Buffer.from('more\n'));
  await w.close();
  w.write(Buffer.from('late\n'));
  await w.close();
  assert.equal(await readFile(path, 'utf8'), `abc\ndef\n${truncationLine(8)}`);
});

test('under the cap everything is kept as is', async () => {
  const path = join(root, 'small.log');
  await writeFile(path, 'stale contents from an earlier VM\n');
  const w = await CappedLogWriter.open(path, 100);
  w.write(Buffer.from('hello\n'));
  w.write(Buffer.from('world'));
  await w.close();
  assert.equal(await readFile(path, 'utf8'), 'hello\nworld');
});

test('the log is not opened through a symlink', async () => {
  const target = join(root, 'target');
  await writeFile(target, 'keep');
  const link = join(root, 'link.log');
  await symlink(target, link);
  await assert.rejects(CappedLogWriter.open(link, 10), /console log/);
  assert.equal(await readFile(target, 'utf8'), 'keep');
});

test('the reader drains a peer writing far past the cap, so the peer never blocks', async () => {
  const sock = join(root, 'console.sock');
  const path = join(root, 'reader.log');
  const total = 8 * 1024 * 1024;
  let peerDone!: Promise<void>;
  const server = createServer((conn) => {
    peerDone = new Promise<void>((resolve, reject) => {
      conn.on('error', reject);
      // end() only calls back once every byte was taken by the reader.
      conn.end(Buffer.alloc(total, 0x78), () => resolve());
    });
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  try {
    const reader = await ConsoleReader.attach(sock, path, { maxBytes: 64 * 1024, timeoutMs: 2000 });
    await reader.ended;
    await peerDone;
    assert.equal(reader.written, 64 * 1024);
    const text = await readFile(path, 'utf8');
    assert.equal(text.length, 64 * 1024 + 1 + truncationLine(64 * 1024).length);
    assert.ok(text.endsWith(`x\n${truncationLine(64 * 1024)}`));
    await reader.close();
  } finally {
    server.close();
  }
});

test('attach fails when nothing listens, and leaves the log closed', async () => {
  await assert.rejects(ConsoleReader.attach(join(root, 'nobody.sock'), join(root, 'nobody.log'), { timeoutMs: 500 }), /attach guest console/);
});
