// Unit tests of ttRPC deadlines, cancellation and connection loss: timeout_nano on the
// wire, local DEADLINE_EXCEEDED, the handler's abort signal, and failing pending calls.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Code, HakoError } from '../errors/index.js';
import { RequestSchema, ResponseSchema } from '../protocols/generated/ttrpc_pb.js';
import { listenTemp, rawServer, waitFor } from '../../test/lib/ttrpc-harness.js';
import { encodeFrame, FrameReader, FrameType, type Frame } from './frame.js';
import { Client } from './client.js';
import { dialUnix } from './dial.js';
import { Server, type CallContext } from './server.js';

const SVC = 'hako.test.v1.Test';
const empty = new Uint8Array();

function parseFrames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  new FrameReader({ frame: (f) => out.push(f), oversized: () => {}, corrupt: () => {} }).push(buf);
  return out;
}

/** blockUntilAbort is a handler that never answers on its own and records its abort reason. */
function blockUntilAbort(record: Array<{ at: number; reason: unknown }>) {
  return (_p: Uint8Array, ctx: CallContext) =>
    new Promise<Uint8Array>((_resolve, reject) => {
      ctx.signal.addEventListener('abort', () => {
        record.push({ at: Date.now(), reason: ctx.signal.reason });
        reject(ctx.signal.reason);
      });
    });
}

test('timeoutMs is sent as timeout_nano; a call without one sends 0', async () => {
  const raw = await rawServer();
  try {
    const c = new Client(await dialUnix(raw.path), { defaultTimeoutMs: 0 });
    void c.call(SVC, 'A', empty, { timeoutMs: 1500 }).catch(() => {});
    void c.call(SVC, 'B', empty).catch(() => {});
    await waitFor(() => parseFrames(raw.received()).length === 2, 2000, 'two requests');
    const [a, b] = parseFrames(raw.received()).map((f) => fromBinary(RequestSchema, f.data));
    assert.equal(a!.timeoutNano, 1_500_000_000n);
    assert.equal(b!.timeoutNano, 0n);
    c.close();
    const d = new Client(await dialUnix(raw.path), { defaultTimeoutMs: 250 });
    void d.call(SVC, 'C', empty).catch(() => {});
    const sock = await raw.conn(1);
    await waitFor(() => sock.bytesRead > 0, 2000, 'third request');
    const all = parseFrames(raw.received());
    assert.equal(fromBinary(RequestSchema, all[2]!.data).timeoutNano, 250_000_000n, 'defaultTimeoutMs applies');
    d.close();
  } finally {
    await raw.close();
  }
});

test('a call nobody answers fails locally with DEADLINE_EXCEEDED; a late answer is ignored', async () => {
  const raw = await rawServer();
  try {
    const c = new Client(await dialUnix(raw.path));
    const t0 = Date.now();
    await assert.rejects(c.call(SVC, 'Slow', empty, { timeoutMs: 80 }), (e: unknown) => e instanceof HakoError && e.code === Code.DEADLINE_EXCEEDED);
    const took = Date.now() - t0;
    assert.ok(took >= 75 && took < 1000, `deadline after ${took} ms`);
    assert.equal(c.closed, false, 'a timeout does not close the connection');
    // The answer arriving after the deadline is dropped, and the next call gets its own.
    const next = c.call(SVC, 'Next', empty, { timeoutMs: 2000 });
    const sock = await raw.conn(0);
    await waitFor(() => parseFrames(raw.received()).length === 2, 2000, 'second request');
    const answer = (id: number, text: string) =>
      sock.write(encodeFrame(id, FrameType.Response, 0, toBinary(ResponseSchema, create(ResponseSchema, { payload: new TextEncoder().encode(text) }))));
    answer(1, 'late');
    answer(3, 'on time');
    assert.equal(new TextDecoder().decode(await next), 'on time');
    c.close();
  } finally {
    await raw.close();
  }
});

test("the server handler's ctx.signal aborts at the wire deadline with DEADLINE_EXCEEDED", async () => {
  const aborted: Array<{ at: number; reason: unknown }> = [];
  const server = new Server();
  server.register(SVC, 'Block', blockUntilAbort(aborted));
  // A handler that uses a Node API with the signal rejects with an AbortError; the server
  // reports the deadline rather than a bare cancellation.
  server.register(SVC, 'Timer', async (_p, ctx) => {
    await sleep(60_000, undefined, { signal: ctx.signal });
    return empty;
  });
  const l = await listenTemp(server);
  try {
    const r = await l.raw();
    const t0 = Date.now();
    await r.request(1, SVC, 'Block', empty, { timeoutNano: 120_000_000n });
    const resp = await r.response(1);
    const took = Date.now() - t0;
    assert.equal(resp.code, Code.DEADLINE_EXCEEDED);
    assert.ok(took >= 110 && took < 1500, `server aborted after ${took} ms`);
    assert.equal(aborted.length, 1);
    assert.ok(aborted[0]!.reason instanceof HakoError && aborted[0]!.reason.code === Code.DEADLINE_EXCEEDED);
    await r.request(3, SVC, 'Timer', empty, { timeoutNano: 50_000_000n });
    assert.equal((await r.response(3)).code, Code.DEADLINE_EXCEEDED);
    // Both sides at once, through the Client: the local timer and the server agree.
    const c = await l.client();
    await assert.rejects(c.call(SVC, 'Block', empty, { timeoutMs: 100 }), { code: Code.DEADLINE_EXCEEDED });
    await waitFor(() => aborted.length === 2, 2000, 'server-side abort');
  } finally {
    await l.close();
  }
});

test('AbortSignal cancels a pending call at once; the reason decides the code', async () => {
  const aborted: Array<{ at: number; reason: unknown }> = [];
  const server = new Server();
  server.register(SVC, 'Block', blockUntilAbort(aborted));
  server.register(SVC, 'Echo', async (p) => p);
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    const ac = new AbortController();
    const p = c.call(SVC, 'Block', empty, { signal: ac.signal });
    await sleep(20);
    const t0 = Date.now();
    ac.abort();
    await assert.rejects(p, { code: Code.CANCELLED });
    assert.ok(Date.now() - t0 < 50);
    // Already aborted: rejected without a round trip.
    await assert.rejects(c.call(SVC, 'Echo', empty, { signal: AbortSignal.abort() }), { code: Code.CANCELLED });
    // AbortSignal.timeout() is a deadline, and a HakoError reason is passed through.
    await assert.rejects(c.call(SVC, 'Block', empty, { signal: AbortSignal.timeout(30) }), { code: Code.DEADLINE_EXCEEDED });
    const ac2 = new AbortController();
    const q = c.call(SVC, 'Block', empty, { signal: ac2.signal });
    ac2.abort(new HakoError(Code.UNAVAILABLE, 'sandbox gone'));
    await assert.rejects(q, { code: Code.UNAVAILABLE, message: 'sandbox gone' });
    // The connection is still fine afterwards.
    assert.deepEqual([...(await c.call(SVC, 'Echo', new Uint8Array([1, 2])))], [1, 2]);
  } finally {
    await l.close();
  }
});

test('closing the client fails every pending call at once with UNAVAILABLE', async () => {
  const aborted: Array<{ at: number; reason: unknown }> = [];
  const server = new Server();
  server.register(SVC, 'Block', blockUntilAbort(aborted));
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    const settled: number[] = [];
    const calls = Array.from({ length: 20 }, () =>
      c.call(SVC, 'Block', empty).then(
        () => assert.fail('resolved'),
        (e: HakoError) => {
          settled.push(Date.now());
          return e;
        },
      ),
    );
    await sleep(30); // let the requests reach the handlers
    const t0 = Date.now();
    c.close();
    const errs = await Promise.all(calls);
    for (const e of errs) assert.equal(e.code, Code.UNAVAILABLE);
    assert.ok(Math.max(...settled) - t0 < 20, 'all pending calls settle together');
    assert.equal(c.closed, true);
    await assert.rejects(c.call(SVC, 'Block', empty), { code: Code.UNAVAILABLE });
    // The server notices and aborts the handlers of that connection with CANCELLED.
    await waitFor(() => aborted.length === 20, 2000, 'handlers aborted');
    assert.ok(aborted.every((a) => a.reason instanceof HakoError && a.reason.code === Code.CANCELLED));
    await waitFor(() => server.connectionCount === 0, 2000, 'connection dropped');
  } finally {
    await l.close();
  }
});

test('the server closing the connection fails pending client calls with UNAVAILABLE', async () => {
  const server = new Server();
  server.register(SVC, 'Block', blockUntilAbort([]));
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    let closeErr: HakoError | undefined;
    c.onClose((e) => (closeErr = e));
    const calls = Array.from({ length: 5 }, () => c.call(SVC, 'Block', empty));
    await waitFor(() => server.connectionCount === 1, 2000);
    await sleep(20);
    await server.close();
    for (const p of calls) await assert.rejects(p, { code: Code.UNAVAILABLE });
    assert.equal(closeErr?.code, Code.UNAVAILABLE);
    let late: HakoError | undefined;
    c.onClose((e) => (late = e));
    assert.equal(late, closeErr, 'onClose after the fact fires at once');
  } finally {
    await l.close();
  }
});

test('dialUnix: missing socket is UNAVAILABLE; an aborted signal is CANCELLED', async () => {
  await assert.rejects(dialUnix('unix:///nonexistent/hako.sock'), { code: Code.UNAVAILABLE });
  await assert.rejects(dialUnix('/nonexistent/hako.sock', { signal: AbortSignal.abort() }), { code: Code.CANCELLED });
});

test('an aborted call leaves no timer behind, so a process can exit', async () => {
  const server = new Server();
  server.register(SVC, 'Block', blockUntilAbort([]));
  const l = await listenTemp(server);
  try {
    const c = await l.client();
    const timers = () => process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    const before = timers();
    const ac = new AbortController();
    const p = c.call(SVC, 'Block', empty, { signal: ac.signal, timeoutMs: 600_000 });
    assert.equal(timers(), before + 1, 'the call arms one timer');
    ac.abort();
    await assert.rejects(p, { code: Code.CANCELLED });
    assert.equal(timers(), before, 'the timer is cleared when the call is cancelled');
  } finally {
    await l.close();
  }
});
