// Unit tests of the CLI's argument parser and value parsers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flagBool, flagList, flagString, parseArgs, type FlagSpec } from './args.js';
import { parseCpus, parseEnv, parseMemoryMiB, parseName, parseSignal, parseVolume } from './values.js';

const RUN: FlagSpec[] = [
  { name: 'rm' }, { name: 'detach', short: 'd' }, { name: 'interactive', short: 'i' }, { name: 'tty', short: 't' },
  { name: 'name', value: true }, { name: 'env', short: 'e', value: true, repeat: true }, { name: 'volume', short: 'v', value: true, repeat: true },
];

test('parseArgs: bundled shorts, values, repeats, and the command after the image', () => {
  const p = parseArgs(['--rm', '-it', '-e', 'A=1', '-eB=2', '--name=x', '-v', '/a:/b', 'busybox', 'sh', '-c', 'echo -e'], RUN, { command: 'hako run', stopAfter: 1 });
  assert.ok(flagBool(p, 'rm') && flagBool(p, 'interactive') && flagBool(p, 'tty'));
  assert.ok(!flagBool(p, 'detach'));
  assert.deepEqual(flagList(p, 'env'), ['A=1', 'B=2']);
  assert.equal(flagString(p, 'name'), 'x');
  assert.deepEqual(p.positionals, ['busybox']);
  assert.deepEqual(p.rest, ['sh', '-c', 'echo -e']);
  const q = parseArgs(['busybox', '--', 'ls', '--', '-l'], RUN, { command: 'hako run', stopAfter: 1 });
  assert.deepEqual(q.rest, ['ls', '--', '-l']);
  assert.ok(q.dashdash);
  const r = parseArgs(['-d', '--', 'echo'], RUN, { command: 'hako run', stopAfter: 1 });
  assert.deepEqual(r.positionals, []);
  assert.deepEqual(r.rest, ['echo']);
});

test('parseArgs: unknown flags and missing values are named', () => {
  assert.throws(() => parseArgs(['--bogus'], RUN, { command: 'hako run' }), /hako run: unknown flag --bogus/);
  assert.throws(() => parseArgs(['-x'], RUN, { command: 'hako run' }), /unknown flag -x/);
  assert.throws(() => parseArgs(['-iz'], RUN, { command: 'hako run' }), /unknown flag -z \(in -iz\)/);
  assert.throws(() => parseArgs(['--name'], RUN, { command: 'hako run' }), /flag --name needs a value/);
  assert.throws(() => parseArgs(['--rm=1'], RUN, { command: 'hako run' }), /--rm takes no value/);
});

test('value parsers', () => {
  assert.equal(parseMemoryMiB('512m'), 512);
  assert.equal(parseMemoryMiB('1g'), 1024);
  assert.equal(parseMemoryMiB('1GiB'), 1024);
  assert.equal(parseMemoryMiB(String(256 * 1024 * 1024)), 256);
  assert.throws(() => parseMemoryMiB('512'), /less than the minimum of 128 MiB/);
  assert.throws(() => parseMemoryMiB('lots'), /invalid memory size "lots"/);
  assert.equal(parseCpus('2'), 2);
  assert.throws(() => parseCpus('1.5'), /whole number/);
  assert.throws(() => parseCpus('0'), /between 1 and 64/);
  assert.equal(parseSignal('KILL'), 9);
  assert.equal(parseSignal('sigterm'), 15);
  assert.equal(parseSignal('10'), 10);
  assert.throws(() => parseSignal('NOPE'), /unknown signal "NOPE"/);
  assert.deepEqual(parseEnv(['A=1', 'HOME', 'UNSET_X'], { HOME: '/root' }), ['A=1', 'HOME=/root']);
  assert.throws(() => parseEnv(['=x']), /invalid environment variable/);
  assert.deepEqual(parseVolume('data:/d:ro', '/w'), { source: '/w/data', destination: '/d', readonly: true });
  assert.deepEqual(parseVolume('/a:/b'), { source: '/a', destination: '/b', readonly: false });
  assert.throws(() => parseVolume('/a'), /want HOST:CONTAINER/);
  assert.throws(() => parseVolume('/a:b'), /container path must be absolute/);
  assert.throws(() => parseVolume('/a:/b:rx'), /invalid volume mode "rx"/);
  assert.equal(parseName('web-1'), 'web-1');
  assert.throws(() => parseName('-x'), /invalid name "-x"/);
});

test('readChunk: long-poll reads from a Readable, split at maxLen, eof at the end, abortable', async () => {
  const { Readable } = await import('node:stream');
  const { readChunk } = await import('./read-chunk.js');
  const r = new Readable({ read() {} });
  const first = readChunk(r, 4);
  r.push(Buffer.from('abcdef'));
  assert.equal(Buffer.from((await first).data).toString(), 'abcd');
  assert.equal(Buffer.from((await readChunk(r, 4)).data).toString(), 'ef');
  const ac = new AbortController();
  const pending = readChunk(r, 4, ac.signal);
  ac.abort();
  await assert.rejects(pending, /cancelled/);
  r.push(null);
  assert.deepEqual(await readChunk(r, 4), { data: new Uint8Array(0), eof: true });
});
