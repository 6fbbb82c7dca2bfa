// Unit tests of the JSON-lines logger: one parseable object per line, child fields,
// level filtering, error and bigint serialisation, and sinks that fail.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fdSink, Logger, memorySink, nullLogger, parseLevel, streamSink } from './index.js';

const parse = (lines: string[]) => lines.map((l) => {
  assert.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'), `one line each: ${JSON.stringify(l)}`);
  return JSON.parse(l) as Record<string, unknown>;
});

test('each record is one JSON line with time, level and msg', () => {
  const sink = memorySink();
  const log = new Logger(sink, 'debug');
  log.info('hello', { n: 1 });
  log.error('multi\nline message', { text: 'a\nb' });
  const [a, b] = parse(sink.lines);
  assert.equal(a!.level, 'info');
  assert.equal(a!.msg, 'hello');
  assert.equal(a!.n, 1);
  assert.ok(!Number.isNaN(Date.parse(a!.time as string)), 'time is ISO-8601');
  assert.equal(b!.msg, 'multi\nline message');
  assert.equal(b!.text, 'a\nb');
});

test('child loggers add fields; call fields override them; parents are unchanged', () => {
  const sink = memorySink();
  const root = new Logger(sink, 'info', { app: 'hako' });
  const sb = root.child({ sandbox: 's1', subsystem: 'qemu' });
  const ct = sb.child({ container: 'c1', subsystem: 'agent' });
  ct.info('start', { pid: 7 });
  root.info('plain');
  sb.warn('override', { sandbox: 's2' });
  const [a, b, c] = parse(sink.lines);
  assert.deepEqual({ ...a, time: undefined }, { time: undefined, level: 'info', msg: 'start', app: 'hako', sandbox: 's1', subsystem: 'agent', container: 'c1', pid: 7 });
  assert.deepEqual(Object.keys(b!).sort(), ['app', 'level', 'msg', 'time']);
  assert.equal(c!.sandbox, 's2');
});

test('the level filter drops lower levels, for children too', () => {
  const sink = memorySink();
  const log = new Logger(sink, 'warn');
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.error('e');
  log.child({ x: 1 }).info('child info');
  log.child({ x: 1 }).error('child error');
  assert.deepEqual(parse(sink.lines).map((r) => r.msg), ['w', 'e', 'child error']);
  assert.equal(log.enabled('info'), false);
  assert.equal(log.enabled('error'), true);
  assert.equal(new Logger(sink).enabled('info'), true, 'default level is info');
  assert.equal(new Logger(sink).enabled('debug'), false);
});

test('errors, causes and bigints serialise; unserialisable fields do not throw', () => {
  const sink = memorySink();
  const log = new Logger(sink, 'debug');
  const err = Object.assign(new Error('outer', { cause: new Error('inner') }), { code: 5 });
  log.error('failed', { err, big: 2n ** 70n });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  log.info('cyclic', { cyclic });
  const [a, b] = parse(sink.lines);
  assert.deepEqual(a!.err, { name: 'Error', message: 'outer', code: 5, cause: 'inner' });
  assert.equal(a!.big, (2n ** 70n).toString());
  assert.equal(b!.msg, 'cyclic');
  assert.equal(b!.note, 'unserializable fields');
});

test('a throwing sink never takes the caller down; streamSink and nullLogger', () => {
  const log = new Logger({ write: () => { throw new Error('EPIPE'); } }, 'debug');
  assert.doesNotThrow(() => log.error('x'));
  const chunks: string[] = [];
  new Logger(streamSink({ write: (c: string) => chunks.push(c) })).info('to stream');
  assert.equal(JSON.parse(chunks[0]!).msg, 'to stream');
  assert.doesNotThrow(() => nullLogger.error('dropped'));
});

test('parseLevel accepts known names and defaults to info', () => {
  assert.equal(parseLevel('debug'), 'debug');
  assert.equal(parseLevel('error'), 'error');
  assert.equal(parseLevel(undefined), 'info');
  assert.equal(parseLevel('verbose'), 'info');
  assert.equal(parseLevel('toString'), 'info');
});

test('fdSink writes whole lines to its fd and drops them once the fd is gone', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hako-fdsink-'));
  try {
    const path = join(dir, 'log');
    const fd = openSync(path, 'w');
    const log = new Logger(fdSink(fd), 'info');
    log.info('one', { text: 'ü'.repeat(5000) });
    log.info('two');
    closeSync(fd);
    assert.doesNotThrow(() => log.info('after close'));
    const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { msg: string }).msg), ['one', 'two']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
