// Unit tests of the ttRPC server's limits against hostile input: oversized frames, bad
// protobuf, corrupt headers, even or duplicate stream ids, and the in-flight bound.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { create, toBinary } from '@bufbuild/protobuf';
import { Code } from '../errors/index.js';
import { RequestSchema } from '../protocols/generated/ttrpc_pb.js';
import { listenTemp, waitFor } from '../../test/lib/ttrpc-harness.js';
import { encodeFrame, FrameType, HEADER_SIZE, MAX_MESSAGE_SIZE } from './frame.js';
import { Server } from './server.js';

const SVC = 'hako.test.v1.Test';
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function echoServer(opts: ConstructorParameters<typeof Server>[0] = {}): Server {
  const s = new Server(opts);
  s.register(SVC, 'Echo', async (p) => p);
  return s;
}

function header(length: number, streamId: number, type: number, flags = 0): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32BE(length, 0);
  h.writeUInt32BE(streamId, 4);
  h.writeUInt8(type, 8);
  h.writeUInt8(flags, 9);
  return h;
}

test('an oversized request is answered RESOURCE_EXHAUSTED at once, skipped unbuffered, and the connection lives on', async () => {
  const server = echoServer();
  const l = await listenTemp(server);
  try {
    const r = await l.raw();
    const length = 48 << 20; // 48 MiB: twelve times the limit
    await r.write(header(length, 1, FrameType.Request));
    // The answer comes before a single body byte is sent: nothing waits for the body.
    const early = await r.response(1);
    assert.equal(early.code, Code.RESOURCE_EXHAUSTED);
    assert.match(early.message, /exceeds the 4194304-byte limit/);

    gc();
    const base = process.memoryUsage();
    let peakArray = 0;
    let peakHeap = 0;
    const chunk = Buffer.alloc(256 << 10, 0x5a);
    for (let sent = 0; sent < length; sent += chunk.length) {
      await r.write(chunk);
      if ((sent & ((4 << 20) - 1)) === 0) {
        gc();
        const m = process.memoryUsage();
        peakArray = Math.max(peakArray, m.arrayBuffers - base.arrayBuffers);
        peakHeap = Math.max(peakHeap, m.heapUsed - base.heapUsed);
      }
    }
    // Had the server buffered the frame, retained memory would approach 48 MiB.
    assert.ok(peakArray < 8 << 20, `arrayBuffers grew by ${peakArray} bytes while streaming ${length}`);
    assert.ok(peakHeap < 8 << 20, `heap grew by ${peakHeap} bytes while streaming ${length}`);
    await r.request(3, SVC, 'Echo', enc('still alive'));
    const ok = await r.response(3);
    assert.equal(ok.code, 0);
    assert.equal(dec(ok.payload), 'still alive');
    assert.equal(r.isClosed, false);
  } finally {
    await l.close();
  }
});

test('a frame of exactly 4 MiB is accepted; oversized requests and responses are refused on both sides', async () => {
  const server = echoServer();
  server.register(SVC, 'Big', async () => new Uint8Array(MAX_MESSAGE_SIZE));
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    // The Request envelope adds a few bytes, so the largest payload is a little under 4 MiB.
    const fits = new Uint8Array(MAX_MESSAGE_SIZE - 64).fill(7);
    assert.equal((await c.call(SVC, 'Echo', fits)).length, fits.length);
    await assert.rejects(c.call(SVC, 'Echo', new Uint8Array(MAX_MESSAGE_SIZE + 1)), { code: Code.RESOURCE_EXHAUSTED, message: /request of/ });
    await assert.rejects(c.call(SVC, 'Big', new Uint8Array()), { code: Code.RESOURCE_EXHAUSTED, message: /response of/ });
    assert.equal(dec(await c.call(SVC, 'Echo', enc('ok'))), 'ok');
  } finally {
    await l.close();
  }
});

test('a request that is not a valid protobuf Request answers INVALID_ARGUMENT and the connection lives on', async () => {
  const server = echoServer();
  const l = await listenTemp(server);
  try {
    const r = await l.raw();
    const garbage = [
      Buffer.from([0xff, 0xff, 0xff, 0xff]), // field 0x1fffffff.. truncated varint tag
      Buffer.from([0x0a, 0x10, 0x41]), // string field 1 claims 16 bytes, has 1
      Buffer.from([0x20, 0x80, 0x80, 0x80]), // timeout_nano varint truncated
      Buffer.from([0x0f]), // wire type 7 does not exist
    ];
    let id = 1;
    for (const g of garbage) {
      await r.write(encodeFrame(id, FrameType.Request, 0, g));
      const resp = await r.response(id);
      assert.ok(resp.code !== 0, `garbage ${g.toString('hex')} answered OK`);
      assert.equal(resp.code, Code.INVALID_ARGUMENT, `garbage ${g.toString('hex')}: ${resp.message}`);
      id += 2;
    }
    // An empty body is a valid (empty) Request: service "" / method "" is UNIMPLEMENTED.
    await r.write(encodeFrame(id, FrameType.Request, 0, new Uint8Array()));
    assert.equal((await r.response(id)).code, Code.UNIMPLEMENTED);
    id += 2;
    await r.request(id, SVC, 'Echo', enc('fine'));
    assert.equal(dec((await r.response(id)).payload), 'fine');
  } finally {
    await l.close();
  }
});

test('a corrupt header closes only that connection; the others keep working', async () => {
  const server = echoServer();
  const l = await listenTemp(server);
  try {
    const bad = await l.raw();
    const good = await l.raw();
    const c = await l.client();
    await waitFor(() => server.connectionCount === 3, 2000, 'three connections');
    assert.equal(dec(await c.call(SVC, 'Echo', enc('before'))), 'before');
    await bad.write(Buffer.concat([header(3, 1, 7), Buffer.from('abc')]));
    await bad.closed;
    await waitFor(() => server.connectionCount === 2, 2000, 'bad connection dropped');
    await good.request(1, SVC, 'Echo', enc('good'));
    assert.equal(dec((await good.response(1)).payload), 'good');
    assert.equal(dec(await c.call(SVC, 'Echo', enc('after'))), 'after');
    // Stream id 0 is corrupt too.
    const zero = await l.raw();
    await zero.write(header(0, 0, FrameType.Request));
    await zero.closed;
    assert.equal(dec(await c.call(SVC, 'Echo', enc('still'))), 'still');
  } finally {
    await l.close();
  }
});

test('even stream ids close the connection; a stream id in use answers INVALID_ARGUMENT', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const server = echoServer();
  server.register(SVC, 'Gate', async () => {
    await gate;
    return enc('opened');
  });
  const l = await listenTemp(server);
  try {
    const r = await l.raw();
    await r.request(1, SVC, 'Gate');
    await r.request(1, SVC, 'Echo', enc('dup'));
    const dup = await r.response(1);
    assert.equal(dup.code, Code.INVALID_ARGUMENT);
    assert.match(dup.message, /already in use/);
    release();
    assert.equal(dec((await r.response(1)).payload), 'opened');

    const even = await l.raw();
    await even.request(2, SVC, 'Echo', enc('x'));
    await even.closed;
    assert.equal(even.frames.length, 0);
  } finally {
    await l.close();
  }
});

test('frames other than requests are ignored by the server', async () => {
  const server = echoServer();
  const l = await listenTemp(server);
  try {
    const r = await l.raw();
    await r.write(encodeFrame(1, FrameType.Data, 0, enc('data frame')));
    await r.write(encodeFrame(3, FrameType.Response, 0, enc('response frame')));
    await r.write(header(5 << 20, 5, FrameType.Data)); // oversized non-request: skipped silently
    await r.write(Buffer.alloc(5 << 20));
    await r.request(7, SVC, 'Echo', enc('req'));
    assert.equal(dec((await r.response(7)).payload), 'req');
    assert.deepEqual(r.frames, [], 'nothing answered the non-request frames');
  } finally {
    await l.close();
  }
});

test('maxInFlight bounds concurrent calls per connection with RESOURCE_EXHAUSTED', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const server = new Server({ maxInFlight: 3 });
  server.register(SVC, 'Gate', async () => {
    await gate;
    return enc('done');
  });
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    const held = [0, 1, 2].map(() => c.call(SVC, 'Gate', new Uint8Array()));
    await assert.rejects(c.call(SVC, 'Gate', new Uint8Array()), { code: Code.RESOURCE_EXHAUSTED, message: /more than 3 calls in flight/ });
    // The bound is per connection: another connection is not affected.
    const other = await l.client();
    const fourth = other.call(SVC, 'Gate', new Uint8Array());
    release();
    assert.deepEqual((await Promise.all([...held, fourth])).map(dec), ['done', 'done', 'done', 'done']);
    assert.equal(dec(await c.call(SVC, 'Gate', new Uint8Array())), 'done', 'slots are freed after completion');
  } finally {
    await l.close();
  }
});

test('a client that sends requests but never reads answers cannot make the server buffer without bound', async () => {
  const server = echoServer();
  const l = await listenTemp(server);
  try {
    const r = await l.raw();
    r.sock.pause(); // never read: every answer stays with the server or in the kernel
    // Zero-length requests are valid (empty) Requests, each answered UNIMPLEMENTED: ~5x amplification.
    const burst = Buffer.concat(Array.from({ length: 2000 }, (_, i) => encodeFrame(2 * i + 1, FrameType.Request, 0, new Uint8Array())));
    gc();
    const base = process.memoryUsage().arrayBuffers + process.memoryUsage().heapUsed;
    let sent = 0;
    let sentAtStall = -1;
    const t0 = Date.now();
    while (Date.now() - t0 < 2500) {
      if (sentAtStall < 0 && Date.now() - t0 > 1500) sentAtStall = sent;
      // Keep at most 256 KiB queued on our side; the rest is up to the server's reading.
      if (r.sock.writableLength > 256 << 10) {
        await new Promise((res) => setTimeout(res, 10));
        continue;
      }
      r.sock.write(burst);
      sent += burst.length;
      await new Promise((res) => setImmediate(res));
    }
    gc();
    const grown = process.memoryUsage().arrayBuffers + process.memoryUsage().heapUsed - base;
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    assert.equal(sent, sentAtStall, `the server kept reading (${mib(sentAtStall)} -> ${mib(sent)} MiB in the last second) while nobody read its answers`);
    assert.ok(grown < 16 << 20, `memory grew by ${mib(grown)} MiB after ${mib(sent)} MiB of requests nobody read answers to`);
    // Once the client reads again, the server resumes and answers everything.
    const want = (1 << 30) | 1;
    r.sock.resume();
    await r.request(want, SVC, 'Echo', enc('resumed'));
    await waitFor(() => {
      const hit = r.frames.some((f) => f.streamId === want);
      if (!hit) r.frames.length = 0; // drop the UNIMPLEMENTED answers as they come
      return hit;
    }, 30_000, 'the answer after resuming');
    assert.equal(dec((await r.response(want)).payload), 'resumed');
  } finally {
    await l.close();
  }
});

test('requests that follow a fatal frame in the same chunk are not dispatched', async () => {
  let calls = 0;
  const server = echoServer();
  server.register(SVC, 'Count', async () => {
    calls++;
    return new Uint8Array();
  });
  const l = await listenTemp(server);
  try {
    const r = await l.raw();
    const count = toBinary(RequestSchema, create(RequestSchema, { service: SVC, method: 'Count' }));
    // An even stream id closes the connection; the odd one after it must not run.
    await r.write(Buffer.concat([encodeFrame(2, FrameType.Request, 0, count), encodeFrame(3, FrameType.Request, 0, count), encodeFrame(5, FrameType.Request, 0, count)]));
    await r.closed;
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(calls, 0, 'no handler ran after the connection was condemned');
  } finally {
    await l.close();
  }
});
