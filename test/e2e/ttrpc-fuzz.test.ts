// Fuzz: thousands of random, truncated and garbled ttRPC frames over many connections
// against a Server in its own process; it must never crash, keep answering, and not leak.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { create, toBinary } from '@bufbuild/protobuf';
import { RequestSchema } from '../../src/protocols/generated/ttrpc_pb.js';
import { Client, dialUnix, encodeFrame, FrameType, HEADER_SIZE, MAX_MESSAGE_SIZE } from '../../src/ttrpc/index.js';
import { PEER_SERVICE } from './peers/test-service.js';
import { mulberry32 } from '../lib/prng.js';

const serverScript = fileURLToPath(new URL('./peers/ttrpc-test-server.js', import.meta.url));
const CONNECTIONS = 4000;
const PARALLEL = 16;
const TIME_BUDGET_MS = 14_000;

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const bytes = (r: Rand, n: number) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 256);
  return b;
};
const str = (r: Rand, n: number) => bytes(r, n).toString('latin1');

function header(length: number, streamId: number, type: number, flags: number): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32BE(length >>> 0, 0);
  h.writeUInt32BE(streamId >>> 0, 4);
  h.writeUInt8(type & 0xff, 8);
  h.writeUInt8(flags & 0xff, 9);
  return h;
}

function randomRequest(r: Rand, id: number): Buffer {
  const req = create(RequestSchema, {
    service: pick(r, [PEER_SERVICE, PEER_SERVICE, 'containerd.task.v2.Task', '', str(r, int(r, 40))]),
    method: pick(r, ['Echo', 'Echo', 'Sleep', 'Namespace', 'Stats', 'Nope', '', str(r, int(r, 20))]),
    payload: r() < 0.3 ? Buffer.from(String(int(r, 30))) : bytes(r, int(r, 2000)),
    timeoutNano: pick(r, [0n, 0n, 1n, 5_000_000n, 1_000_000_000n, -1n, 2n ** 63n - 1n]),
    metadata: Array.from({ length: int(r, 4) }, () => ({ key: pick(r, ['containerd-namespace-ttrpc', 'X-A', str(r, 8)]), value: str(r, int(r, 30)) })),
  });
  return encodeFrame(id, FrameType.Request, int(r, 4) === 0 ? int(r, 256) : 0, toBinary(RequestSchema, req));
}

/** oneConnection builds the byte stream of one fuzzed connection; 'final' entries end it early. */
function plan(r: Rand): { pieces: Buffer[]; frames: number } {
  const pieces: Buffer[] = [];
  let frames = 0;
  let id = 1;
  const n = 1 + int(r, 24);
  for (let k = 0; k < n; k++) {
    frames++;
    const kind = int(r, 10);
    const next = () => ((id += 2), id - 2);
    if (kind <= 2) {
      pieces.push(randomRequest(r, next())); // well-formed envelope, random content
    } else if (kind === 3) {
      const body = bytes(r, int(r, 4096)); // valid header, random payload
      pieces.push(header(body.length, next(), FrameType.Request, 0), body);
    } else if (kind === 4) {
      const f = randomRequest(r, next()); // a valid frame with bytes flipped anywhere
      for (let j = 0; j < 1 + int(r, 4); j++) f[int(r, f.length)] ^= 1 << int(r, 8);
      pieces.push(f);
    } else if (kind === 5) {
      const len = pick(r, [0, int(r, 100), int(r, 70_000), MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE + 1 + int(r, 1 << 20), 0xffffffff]);
      const type = pick(r, [0, 1, 2, 3, 4, 255, int(r, 256)]);
      const sid = pick(r, [0, 1, 2, id, id + 1, 0xffffffff, int(r, 2 ** 32)]);
      pieces.push(header(len, sid, type, int(r, 256)), bytes(r, Math.min(len, int(r, 3000))));
    } else if (kind === 6) {
      pieces.push(bytes(r, 1 + int(r, 3000))); // pure noise
    } else if (kind === 7) {
      // Oversized request: header, part of the body (up to 64 KiB), and rarely all of it.
      const len = MAX_MESSAGE_SIZE + 1 + int(r, 2 << 20);
      const part = r() < 0.03 ? len : int(r, 64 << 10);
      pieces.push(header(len, next(), FrameType.Request, 0), Buffer.alloc(part, int(r, 256)));
    } else if (kind === 8) {
      // A call in flight when the connection drops.
      const p = toBinary(RequestSchema, create(RequestSchema, { service: PEER_SERVICE, method: 'Sleep', payload: Buffer.from(String(int(r, 300))) }));
      pieces.push(encodeFrame(next(), FrameType.Request, 0, p));
    } else {
      // Truncated mid-header or mid-body: nothing may follow on this connection.
      const f = randomRequest(r, next());
      pieces.push(f.subarray(0, r() < 0.5 ? 1 + int(r, HEADER_SIZE - 1) : HEADER_SIZE + int(r, Math.max(1, f.length - HEADER_SIZE))));
      break;
    }
  }
  return { pieces, frames };
}

async function runConnection(path: string, r: Rand, totals: { frames: number; bytes: number; received: number }): Promise<void> {
  const { pieces, frames } = plan(r);
  const sock = connect(path);
  sock.on('error', () => {});
  sock.on('data', (d: Buffer) => (totals.received += d.length));
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  totals.frames += frames;
  // Split the stream at random points so headers and bodies straddle writes.
  const all = Buffer.concat(pieces);
  for (let off = 0; off < all.length && !sock.destroyed; ) {
    const n = r() < 0.3 ? 1 + int(r, 16) : 1 + int(r, 256 << 10);
    const chunk = all.subarray(off, off + n);
    off += n;
    totals.bytes += chunk.length;
    if (!sock.write(chunk)) await Promise.race([new Promise((res) => sock.once('drain', res)), closed]);
  }
  if (r() < 0.5) await sleep(int(r, 15));
  if (r() < 0.5) sock.end();
  else sock.destroy();
  await Promise.race([closed, sleep(2000).then(() => sock.destroy())]);
}

async function stats(path: string): Promise<{ connections: number; heapUsed: number; rss: number; arrayBuffers: number }> {
  const c = new Client(await dialUnix(path), { defaultTimeoutMs: 5000 });
  try {
    return JSON.parse(new TextDecoder().decode(await c.call(PEER_SERVICE, 'Stats', new Uint8Array()))) as never;
  } finally {
    c.close();
  }
}

test('fuzzed frames never crash the server, which keeps answering and does not leak', { timeout: 120_000 }, async (t) => {
  const seed = process.env.HAKO_FUZZ_SEED ? Number(process.env.HAKO_FUZZ_SEED) : Date.now() % 2 ** 32;
  console.log(`ttrpc fuzz seed ${seed} (rerun with HAKO_FUZZ_SEED=${seed})`);
  t.diagnostic(`seed ${seed}`);
  const dir = mkdtempSync(join(tmpdir(), 'hako-fuzz-'));
  const path = join(dir, 'fuzz.sock');
  const child = spawn(process.execPath, [serverScript, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d.length < 100_000 ? d : ''));
  let exit: string | null = null;
  child.once('exit', (code, sig) => (exit = `server exited (${sig ?? code})`));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => d.includes('ready') && resolve());
    child.once('exit', () => reject(new Error(`server did not start: ${stderr}`)));
  });

  const before = await stats(path);
  const totals = { frames: 0, bytes: 0, received: 0 };
  const t0 = Date.now();
  let started = 0;
  let liveness = 0;
  const worker = async () => {
    while (started < CONNECTIONS && Date.now() - t0 < TIME_BUDGET_MS) {
      const i = started++;
      try {
        await runConnection(path, mulberry32((seed ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0), totals);
      } catch (err) {
        await sleep(200); // let a crash be reported before describing it
        assert.fail(`connection ${i} (seed ${seed}): ${(err as Error).message}; server: ${exit ?? 'running'}\n${stderr.slice(-4000)}`);
      }
      assert.equal(exit, null, `after connection ${i} (seed ${seed}): ${exit}\n${stderr}`);
      if (i % 100 === 99) {
        // A well-formed call on a fresh connection is answered while the fuzzing goes on.
        const c = new Client(await dialUnix(path), { defaultTimeoutMs: 5000 });
        assert.equal(new TextDecoder().decode(await c.call(PEER_SERVICE, 'Echo', new TextEncoder().encode(`live ${i}`))), `live ${i}`);
        c.close();
        liveness++;
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  const elapsed = Date.now() - t0;

  assert.equal(exit, null, `server crashed (seed ${seed}): ${exit}\n${stderr}`);
  // Every fuzz connection is gone: only the stats call's own connection remains.
  let after = await stats(path);
  for (let k = 0; k < 100 && after.connections !== 1; k++) {
    await sleep(50);
    after = await stats(path);
  }
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  const summary =
    `fuzz volume: ${started} connections, ${totals.frames} frames, ${mib(totals.bytes)} MiB sent, ${mib(totals.received)} MiB received, ` +
    `${liveness} liveness calls in ${elapsed} ms; server heap ${mib(before.heapUsed)} -> ${mib(after.heapUsed)} MiB, rss ${mib(before.rss)} -> ${mib(after.rss)} MiB`;
  t.diagnostic(summary);
  assert.equal(after.connections, 1, `connections left open in the server (seed ${seed})`);
  assert.ok(started >= 500, `only ${started} connections in the time budget`);
  assert.ok(after.heapUsed - before.heapUsed < 16 << 20, `heap grew by ${mib(after.heapUsed - before.heapUsed)} MiB (seed ${seed})`);
  assert.ok(after.arrayBuffers - before.arrayBuffers < 16 << 20, `arrayBuffers grew by ${mib(after.arrayBuffers - before.arrayBuffers)} MiB (seed ${seed})`);
  assert.ok(after.rss < 400 << 20, `server rss ${mib(after.rss)} MiB (seed ${seed})`);
  assert.doesNotMatch(stderr, /Uncaught|TypeError|RangeError|ReferenceError/, 'no exceptions logged by the server');

  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (c) => resolve(c))));
  assert.equal(code, 0, 'the server shuts down cleanly after the fuzzing');
});
