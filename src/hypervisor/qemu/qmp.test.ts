// Unit tests of the QMP wire format and client against a fake QMP server on a unix socket.
// No QEMU: the fake server scripts greetings, replies, events and misbehaviour.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, HakoError } from '../../errors/index.js';
import { QmpClient, qmpErrorOf } from './qmp.js';
import { LineSplitter, parseQmpLine } from './qmp-wire.js';

const GREETING = JSON.stringify({ QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: 'test' }, capabilities: ['oob'] } });

type Handler = (cmd: { execute: string; id: unknown; arguments?: Record<string, unknown> }, sock: Socket) => void;

async function fakeQmp(handler: Handler, opts: { greet?: boolean } = {}): Promise<{ path: string; server: Server; seen: string[]; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'hako-qmp-'));
  const path = join(dir, 'qmp.sock');
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    if (opts.greet !== false) sock.write(GREETING + '\r\n');
    const splitter = new LineSplitter(1 << 20);
    sock.on('data', (chunk) => {
      for (const line of splitter.push(chunk)) {
        const cmd = JSON.parse(line) as Parameters<Handler>[0];
        seen.push(cmd.execute);
        if (cmd.execute === 'qmp_capabilities') sock.write(JSON.stringify({ return: {}, id: cmd.id }) + '\r\n');
        else handler(cmd, sock);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    server,
    seen,
    done: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const reply = (sock: Socket, obj: unknown): void => void sock.write(JSON.stringify(obj) + '\r\n');

test('LineSplitter joins chunks, strips CRLF and bounds lines', () => {
  const s = new LineSplitter(10);
  assert.deepEqual(s.push(Buffer.from('ab')), []);
  assert.deepEqual(s.push(Buffer.from('c\r\nde\n\nf')), ['abc', 'de']);
  assert.deepEqual(s.push(Buffer.from('g\n')), ['fg']);
  assert.throws(() => s.push(Buffer.from('0123456789x')), (e: unknown) => e instanceof HakoError && e.code === Code.RESOURCE_EXHAUSTED);
  assert.throws(() => new LineSplitter(4).push(Buffer.from('12345\n')), /longer than 4 bytes/);
});

test('parseQmpLine sorts messages and rejects garbage', () => {
  assert.equal(parseQmpLine(GREETING).type, 'greeting');
  assert.deepEqual(parseQmpLine('{"return": {"a": 1}, "id": 3}'), { type: 'return', id: 3, value: { a: 1 } });
  assert.deepEqual(parseQmpLine('{"error": {"class": "CommandNotFound", "desc": "x"}, "id": 4}'), {
    type: 'error',
    id: 4,
    error: { class: 'CommandNotFound', desc: 'x' },
  });
  assert.deepEqual(parseQmpLine('{"event": "STOP", "timestamp": {"seconds": 2, "microseconds": 5000}}'), {
    type: 'event',
    event: { event: 'STOP', data: {}, timestampMs: 2005 },
  });
  assert.throws(() => parseQmpLine('not json'), /not JSON/);
  assert.throws(() => parseQmpLine('[1]'), /non-object/);
  assert.throws(() => parseQmpLine('{"hello": 1}'), /unknown message/);
});

test('handshake, command with arguments, and error replies carry class and desc', async () => {
  const fake = await fakeQmp((cmd, sock) => {
    if (cmd.execute === 'query-status') reply(sock, { return: { running: true, status: 'running' }, id: cmd.id });
    else if (cmd.execute === 'echo') reply(sock, { return: cmd.arguments, id: cmd.id });
    else reply(sock, { error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` }, id: cmd.id });
  });
  const qmp = await QmpClient.connect(fake.path, { timeoutMs: 2000 });
  try {
    assert.equal(qmp.greeting.version.qemu.major, 7);
    assert.deepEqual(await qmp.execute('query-status'), { running: true, status: 'running' });
    assert.deepEqual(await qmp.execute('echo', { x: 'y' }), { x: 'y' });
    const err = await qmp.execute('nope').catch((e: unknown) => e);
    assert.ok(err instanceof HakoError);
    assert.equal(err.code, Code.UNIMPLEMENTED);
    assert.match(err.message, /QMP nope: CommandNotFound: The command nope has not been found/);
    assert.deepEqual(qmpErrorOf(HakoError.wrap(err, 'outer')), { class: 'CommandNotFound', desc: 'The command nope has not been found' });
    assert.equal(qmpErrorOf(new Error('plain')), undefined);
    assert.deepEqual(fake.seen, ['qmp_capabilities', 'query-status', 'echo', 'nope']);
  } finally {
    qmp.close();
    await fake.done();
  }
});

test('replies are matched by id even out of order', async () => {
  const held: Array<{ id: unknown; sock: Socket; n: number }> = [];
  const fake = await fakeQmp((cmd, sock) => {
    held.push({ id: cmd.id, sock, n: cmd.arguments?.n as number });
    if (held.length === 2) for (const h of held.reverse()) reply(h.sock, { return: h.n, id: h.id });
  });
  const qmp = await QmpClient.connect(fake.path);
  try {
    const [a, b] = await Promise.all([qmp.execute('x', { n: 1 }), qmp.execute('x', { n: 2 })]);
    assert.deepEqual([a, b], [1, 2]);
  } finally {
    qmp.close();
    await fake.done();
  }
});

test('events reach listeners and waitForEvent', async () => {
  const fake = await fakeQmp((cmd, sock) => {
    reply(sock, { return: {}, id: cmd.id });
    reply(sock, { event: 'STOP', timestamp: { seconds: 1, microseconds: 0 } });
    reply(sock, { event: 'SHUTDOWN', data: { guest: false, reason: 'host-qmp-quit' }, timestamp: { seconds: 1, microseconds: 1 } });
  });
  const qmp = await QmpClient.connect(fake.path);
  try {
    const names: string[] = [];
    const off = qmp.onEvent((ev) => names.push(ev.event));
    qmp.onEvent(() => {
      throw new Error('a bad listener must not break the client');
    });
    const shutdown = qmp.waitForEvent('SHUTDOWN', { timeoutMs: 2000 });
    await qmp.execute('stop');
    const ev = await shutdown;
    assert.deepEqual(ev.data, { guest: false, reason: 'host-qmp-quit' });
    assert.deepEqual(names, ['STOP', 'SHUTDOWN']);
    off();
    await assert.rejects(qmp.waitForEvent('NEVER', { timeoutMs: 30 }), (e: unknown) => e instanceof HakoError && e.code === Code.DEADLINE_EXCEEDED);
  } finally {
    qmp.close();
    await fake.done();
  }
});

test('timeout and abort fail one call; late replies are dropped and the client keeps working', async () => {
  const late: Array<() => void> = [];
  const fake = await fakeQmp((cmd, sock) => {
    if (cmd.execute === 'slow') late.push(() => reply(sock, { return: 'late', id: cmd.id }));
    else reply(sock, { return: 'ok', id: cmd.id });
  });
  const qmp = await QmpClient.connect(fake.path);
  try {
    await assert.rejects(qmp.execute('slow', undefined, { timeoutMs: 20 }), (e: unknown) => e instanceof HakoError && e.code === Code.DEADLINE_EXCEEDED && /QMP slow: timed out after 20 ms/.test(e.message));
    const ac = new AbortController();
    const p = qmp.execute('slow', undefined, { signal: ac.signal });
    ac.abort();
    await assert.rejects(p, (e: unknown) => e instanceof HakoError && e.code === Code.CANCELLED);
    const pre = AbortSignal.abort();
    await assert.rejects(qmp.execute('fast', undefined, { signal: pre }), (e: unknown) => e instanceof HakoError && e.code === Code.CANCELLED);
    for (const f of late) f();
    assert.equal(await qmp.execute('fast'), 'ok');
  } finally {
    qmp.close();
    await fake.done();
  }
});

test('an overlong message closes the connection and fails pending calls', async () => {
  const fake = await fakeQmp((cmd, sock) => void sock.write('{"return": "' + 'x'.repeat(5000)));
  const qmp = await QmpClient.connect(fake.path, { maxLineBytes: 1024 });
  try {
    await assert.rejects(qmp.execute('big'), (e: unknown) => e instanceof HakoError && e.code === Code.RESOURCE_EXHAUSTED);
    await qmp.closed;
    assert.equal(qmp.isClosed, true);
    await assert.rejects(qmp.execute('after'), /QMP after: .*longer than 1024 bytes/);
  } finally {
    qmp.close();
    await fake.done();
  }
});

test('server hang-up fails pending calls with UNAVAILABLE', async () => {
  const fake = await fakeQmp((_cmd, sock) => sock.destroy());
  const qmp = await QmpClient.connect(fake.path);
  try {
    await assert.rejects(qmp.execute('quit'), (e: unknown) => e instanceof HakoError && e.code === Code.UNAVAILABLE && /QMP quit: QMP connection closed/.test(e.message));
    await qmp.closed;
  } finally {
    await fake.done();
  }
});

test('handshake fails cleanly: no greeting (timeout), no socket, abort', async () => {
  const fake = await fakeQmp(() => {}, { greet: false });
  try {
    await assert.rejects(QmpClient.connect(fake.path, { timeoutMs: 50 }), (e: unknown) => e instanceof HakoError && e.code === Code.DEADLINE_EXCEEDED && /QMP handshake/.test(e.message));
    await assert.rejects(QmpClient.connect(fake.path, { signal: AbortSignal.abort() }), (e: unknown) => e instanceof HakoError && e.code === Code.CANCELLED);
    await assert.rejects(QmpClient.connect(fake.path + '.missing', { timeoutMs: 1000 }), (e: unknown) => e instanceof HakoError && e.code === Code.NOT_FOUND);
  } finally {
    await fake.done();
  }
});
