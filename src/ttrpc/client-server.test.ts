// Unit tests of the ttRPC client and server over unix sockets: concurrency and ordering,
// stream ids on the wire, metadata, status codes, UNIMPLEMENTED and the typed bindings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, HakoError } from '../errors/index.js';
import { RequestSchema, ResponseSchema } from '../protocols/generated/ttrpc_pb.js';
import { Events, ForwardRequestSchema } from '../protocols/generated/containerd/events-service_pb.js';
import { Task } from '../protocols/generated/containerd/shim_pb.js';
import { listenTemp, rawServer } from '../../test/lib/ttrpc-harness.js';
import { encodeFrame, FrameReader, FrameType, HEADER_SIZE, type Frame } from './frame.js';
import { Client } from './client.js';
import { dialUnix } from './dial.js';
import { NAMESPACE_KEY, Server } from './server.js';
import { createClient, registerService } from './typed.js';

const SVC = 'hako.test.v1.Test';
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function parseFrames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  const r = new FrameReader({ frame: (f) => out.push(f), oversized: () => assert.fail('oversized'), corrupt: (why) => assert.fail(why) });
  r.push(buf);
  return out;
}

test('many concurrent calls on one connection complete out of order, each with its own answer', async () => {
  const server = new Server();
  server.register(SVC, 'Sleep', async (payload) => {
    await sleep(Number(dec(payload)));
    return enc(`slept ${dec(payload)}`);
  });
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    const n = 25;
    const order: number[] = [];
    // The first call sleeps longest: a server that answered in order would finish them in order.
    const calls = Array.from({ length: n }, (_, i) =>
      c.call(SVC, 'Sleep', enc(String((n - i) * 8))).then((out) => {
        order.push(i);
        assert.equal(dec(out), `slept ${(n - i) * 8}`);
      }),
    );
    await Promise.all(calls);
    assert.deepEqual(order, Array.from({ length: n }, (_, i) => n - 1 - i));
  } finally {
    await l.close();
  }
});

test('a blocked call does not block the next one on the same connection (Wait before Start)', async () => {
  const server = new Server();
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  server.register(SVC, 'Wait', async () => {
    await startedP;
    return enc('exited');
  });
  server.register(SVC, 'Start', async () => {
    started();
    return enc('started');
  });
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    const wait = c.call(SVC, 'Wait', new Uint8Array(), { timeoutMs: 2000 });
    assert.equal(dec(await c.call(SVC, 'Start', new Uint8Array(), { timeoutMs: 2000 })), 'started');
    assert.equal(dec(await wait), 'exited');
  } finally {
    await l.close();
  }
});

test('client stream ids are odd and increasing; header bytes and Request fields are exact', async () => {
  const raw = await rawServer();
  try {
    const c = new Client(await dialUnix(raw.path));
    const results = [0, 1, 2, 3].map((i) => c.call('svc.A', `M${i}`, enc(`p${i}`)));
    const sock = await raw.conn(0);
    const deadline = Date.now() + 2000;
    while (parseFrames(raw.received()).length < 4 && Date.now() < deadline) await sleep(5);
    const bytes = raw.received();
    const frames = parseFrames(bytes);
    assert.deepEqual(frames.map((f) => f.streamId), [1, 3, 5, 7]);
    for (const f of frames) {
      assert.equal(f.type, FrameType.Request);
      assert.equal(f.flags, 0);
    }
    // The first header, byte for byte: length (BE u32), stream id 1 (BE u32), type 1, flags 0.
    const len0 = frames[0]!.data.length;
    assert.deepEqual([...bytes.subarray(0, HEADER_SIZE)], [len0 >>> 24, (len0 >>> 16) & 0xff, (len0 >>> 8) & 0xff, len0 & 0xff, 0, 0, 0, 1, 1, 0]);
    const req = fromBinary(RequestSchema, frames[2]!.data);
    assert.equal(req.service, 'svc.A');
    assert.equal(req.method, 'M2');
    assert.equal(dec(req.payload), 'p2');
    assert.equal(req.timeoutNano, 0n);
    // Answer in reverse order; each call gets the payload sent on its own stream id.
    for (const id of [7, 5, 3, 1]) {
      const resp = toBinary(ResponseSchema, create(ResponseSchema, { status: { code: 0 }, payload: enc(`r${id}`) }));
      sock.write(encodeFrame(id, FrameType.Response, 0, resp));
    }
    assert.deepEqual((await Promise.all(results)).map(dec), ['r1', 'r3', 'r5', 'r7']);
    c.close();
  } finally {
    await raw.close();
  }
});

test('metadata round trip: keys match case-insensitively; the containerd namespace key is recognised', async () => {
  assert.equal(NAMESPACE_KEY, 'containerd-namespace-ttrpc');
  const server = new Server();
  server.register(SVC, 'Meta', async (_p, ctx) =>
    enc(JSON.stringify({ ns: ctx.namespace ?? null, md: Object.fromEntries(ctx.metadata), svc: ctx.service, m: ctx.method })),
  );
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    const out = JSON.parse(dec(await c.call(SVC, 'Meta', new Uint8Array(), { metadata: { 'Containerd-Namespace-TTRPC': 'k8s.io', 'X-Trace': 'abc' } })));
    assert.deepEqual(out, { ns: 'k8s.io', md: { 'containerd-namespace-ttrpc': ['k8s.io'], 'x-trace': ['abc'] }, svc: SVC, m: 'Meta' });
    const none = JSON.parse(dec(await c.call(SVC, 'Meta', new Uint8Array())));
    assert.equal(none.ns, null);
    // A key repeated under different cases keeps every value, in wire order.
    const r = await l.raw();
    await r.request(1, SVC, 'Meta', new Uint8Array(), { metadata: [{ key: 'X-A', value: '1' }, { key: 'x-a', value: '2' }, { key: NAMESPACE_KEY.toUpperCase(), value: 'default' }] });
    const got = JSON.parse(dec((await r.response(1)).payload));
    assert.deepEqual(got.md['x-a'], ['1', '2']);
    assert.equal(got.ns, 'default');
  } finally {
    await l.close();
  }
});

test('handler errors reach the client as HakoError with the same code and message', async () => {
  const server = new Server();
  server.register(SVC, 'Fail', async (payload) => {
    const code = Number(dec(payload));
    throw new HakoError(code, `failed with ${code}`);
  });
  server.register(SVC, 'Plain', async () => {
    throw new Error('plain error');
  });
  server.register(SVC, 'Enoent', async () => {
    throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  });
  server.register(SVC, 'Sync', () => {
    throw new HakoError(Code.FAILED_PRECONDITION, 'thrown synchronously');
  });
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    for (let code = 1; code <= 16; code++) {
      const err = await c.call(SVC, 'Fail', enc(String(code))).then(() => assert.fail('resolved'), (e: unknown) => e);
      assert.ok(err instanceof HakoError);
      assert.equal(err.code, code);
      assert.equal(err.message, `failed with ${code}`);
    }
    await assert.rejects(c.call(SVC, 'Plain', new Uint8Array()), { name: 'HakoError', code: Code.UNKNOWN, message: 'plain error' });
    await assert.rejects(c.call(SVC, 'Enoent', new Uint8Array()), { code: Code.NOT_FOUND });
    await assert.rejects(c.call(SVC, 'Sync', new Uint8Array()), { code: Code.FAILED_PRECONDITION, message: 'thrown synchronously' });
  } finally {
    await l.close();
  }
});

test('client bounds and sanitises statuses from the peer', async () => {
  const raw = await rawServer();
  try {
    const c = new Client(await dialUnix(raw.path));
    const a = c.call('s', 'm', new Uint8Array());
    const b = c.call('s', 'm', new Uint8Array());
    const d = c.call('s', 'm', new Uint8Array());
    const sock = await raw.conn(0);
    const answer = (id: number, status: { code: number; message: string } | undefined, payload = new Uint8Array()) =>
      sock.write(encodeFrame(id, FrameType.Response, 0, toBinary(ResponseSchema, create(ResponseSchema, { status, payload }))));
    answer(1, { code: 99, message: 'x'.repeat(100_000) });
    answer(3, { code: -4, message: 'negative' });
    sock.write(encodeFrame(5, FrameType.Response, 0, Buffer.from([0xff, 0xff, 0xff])));
    const ea = await a.then(() => assert.fail('resolved'), (e: HakoError) => e);
    assert.equal(ea.code, Code.UNKNOWN, 'unknown codes become UNKNOWN');
    assert.ok(ea.message.length <= 4100, `message bounded, got ${ea.message.length}`);
    await assert.rejects(b, { code: Code.UNKNOWN });
    await assert.rejects(d, { code: Code.INTERNAL, message: /malformed response/ });
    // A response on a stream nobody waits for is dropped; the connection stays usable.
    answer(99, { code: 0, message: '' });
    const e = c.call('s', 'm', new Uint8Array());
    answer(7, undefined, enc('ok without status'));
    assert.equal(dec(await e), 'ok without status');
    c.close();
  } finally {
    await raw.close();
  }
});

test('unknown service or method answers UNIMPLEMENTED', async () => {
  const server = new Server();
  server.register(SVC, 'Known', async () => enc('yes'));
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    await assert.rejects(c.call(SVC, 'Unknown', new Uint8Array()), { code: Code.UNIMPLEMENTED, message: /hako.test.v1.Test\/Unknown/ });
    await assert.rejects(c.call('no.such.Service', 'Known', new Uint8Array()), { code: Code.UNIMPLEMENTED });
    // The method name is the bare name: "Svc/Known" as method is not the same.
    await assert.rejects(c.call(SVC, `${SVC}/Known`, new Uint8Array()), { code: Code.UNIMPLEMENTED });
    assert.equal(dec(await c.call(SVC, 'Known', new Uint8Array())), 'yes');
    assert.throws(() => server.register(SVC, 'Known', async () => new Uint8Array()), { code: Code.ALREADY_EXISTS });
  } finally {
    await l.close();
  }
});

test('typed bindings: a containerd Events.Forward round trip, UNIMPLEMENTED for missing methods', async () => {
  const server = new Server();
  const seen: unknown[] = [];
  registerService(server, Events, {
    async forward(req, ctx) {
      seen.push({ topic: req.envelope?.topic, ns: req.envelope?.namespace, ctxNs: ctx.namespace, url: req.envelope?.event?.typeUrl });
      return {};
    },
  });
  registerService(server, Task, {
    async connect(req) {
      return { shimPid: 42, taskPid: 0, version: `v-${req.id}` };
    },
  });
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    const events = createClient(Events, c);
    await events.forward(
      { envelope: { timestamp: timestampFromDate(new Date()), namespace: 'ns1', topic: '/tasks/exit', event: { typeUrl: 'containerd.events.TaskExit', value: new Uint8Array([8, 1]) } } },
      { metadata: { [NAMESPACE_KEY]: 'ns1' } },
    );
    assert.deepEqual(seen, [{ topic: '/tasks/exit', ns: 'ns1', ctxNs: 'ns1', url: 'containerd.events.TaskExit' }]);
    const task = createClient(Task, c);
    const resp = await task.connect({ id: 'c1' });
    assert.equal(resp.shimPid, 42);
    assert.equal(resp.version, 'v-c1');
    await assert.rejects(task.state({ id: 'c1' }), { code: Code.UNIMPLEMENTED, message: /containerd.task.v2.Task\/State/ });
    // A payload that is not the method's input message is INVALID_ARGUMENT, not a crash.
    await assert.rejects(c.call(Events.typeName, 'Forward', new Uint8Array([0x0a, 0x05, 0x01])), { code: Code.INVALID_ARGUMENT });
    // The typed client encodes exactly what a hand-encoded request carries.
    const payload = toBinary(ForwardRequestSchema, create(ForwardRequestSchema, { envelope: { topic: '/x' } }));
    await c.call(Events.typeName, 'Forward', payload);
    assert.equal((seen[1] as { topic: string }).topic, '/x');
  } finally {
    await l.close();
  }
});

test('client and server work over any Duplex: an in-memory pair, as for a virtio-serial port', async () => {
  const ab = new PassThrough();
  const ba = new PassThrough();
  const server = new Server();
  server.register(SVC, 'Echo', async (p) => p);
  server.register(SVC, 'Block', (_p, ctx) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))));
  server.serve(Duplex.from({ readable: ab, writable: ba }));
  const c = new Client(Duplex.from({ readable: ba, writable: ab }));
  const answers = await Promise.all([1, 2, 3].map((i) => c.call(SVC, 'Echo', enc(`m${i}`))));
  assert.deepEqual(answers.map(dec), ['m1', 'm2', 'm3']);
  const pending = c.call(SVC, 'Block', new Uint8Array());
  assert.equal(server.connectionCount, 1);
  await server.close();
  await assert.rejects(pending, { code: Code.UNAVAILABLE });
  assert.equal(server.connectionCount, 0);
});
