// Unit tests of ttRPC framing: exact header bytes, parsing across arbitrary chunk
// boundaries, zero-length frames, oversized frames skipped unbuffered, corrupt headers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, FrameReader, FrameType, HEADER_SIZE, MAX_MESSAGE_SIZE, type Frame } from './frame.js';
import { mulberry32 } from '../../test/lib/prng.js';

interface Seen {
  frames: Frame[];
  oversized: Array<{ streamId: number; type: number; length: number }>;
  corrupt: string[];
}

function reader(max?: number): { r: FrameReader; seen: Seen } {
  const seen: Seen = { frames: [], oversized: [], corrupt: [] };
  const r = new FrameReader(
    {
      frame: (f) => seen.frames.push(f),
      oversized: (streamId, type, length) => seen.oversized.push({ streamId, type, length }),
      corrupt: (reason) => seen.corrupt.push(reason),
    },
    max,
  );
  return { r, seen };
}

test('constants: 10-byte header, 4 MiB limit', () => {
  assert.equal(HEADER_SIZE, 10);
  assert.equal(MAX_MESSAGE_SIZE, 4 * 1024 * 1024);
});

test('encodeFrame writes length, stream id, type and flags big-endian', () => {
  const out = encodeFrame(0x01020305, FrameType.Response, 0x7f, Buffer.from('abc'));
  assert.deepEqual([...out], [0, 0, 0, 3, 0x01, 0x02, 0x03, 0x05, 2, 0x7f, 0x61, 0x62, 0x63]);
  const big = encodeFrame(0xfffffffd, FrameType.Request, 0, new Uint8Array(0x0102));
  assert.deepEqual([...big.subarray(0, HEADER_SIZE)], [0, 0, 0x01, 0x02, 0xff, 0xff, 0xff, 0xfd, 1, 0]);
  assert.equal(big.length, HEADER_SIZE + 0x0102);
  const empty = encodeFrame(1, FrameType.Data, 1, new Uint8Array());
  assert.deepEqual([...empty], [0, 0, 0, 0, 0, 0, 0, 1, 3, 1]);
});

test('FrameReader parses a single frame pushed at once', () => {
  const { r, seen } = reader();
  r.push(encodeFrame(7, FrameType.Request, 0, Buffer.from('hello')));
  assert.equal(seen.frames.length, 1);
  const f = seen.frames[0]!;
  assert.equal(f.streamId, 7);
  assert.equal(f.type, FrameType.Request);
  assert.equal(f.flags, 0);
  assert.equal(f.data.toString(), 'hello');
});

test('FrameReader handles byte-by-byte input and merged frames in one chunk', () => {
  const a = encodeFrame(1, FrameType.Request, 0, Buffer.from('first'));
  const b = encodeFrame(3, FrameType.Response, 2, Buffer.alloc(0));
  const c = encodeFrame(5, FrameType.Data, 0, Buffer.from('third!'));
  const all = Buffer.concat([a, b, c]);

  const one = reader();
  for (const byte of all) one.r.push(Buffer.from([byte]));
  const merged = reader();
  merged.r.push(all);
  for (const { seen } of [one, merged]) {
    assert.deepEqual(
      seen.frames.map((f) => [f.streamId, f.type, f.flags, f.data.toString()]),
      [[1, 1, 0, 'first'], [3, 2, 2, ''], [5, 3, 0, 'third!']],
    );
    assert.equal(seen.corrupt.length, 0);
  }
});

test('FrameReader: a zero-length frame is delivered immediately, with an empty body', () => {
  const { r, seen } = reader();
  r.push(encodeFrame(9, FrameType.Request, 0, new Uint8Array()));
  assert.equal(seen.frames.length, 1);
  assert.equal(seen.frames[0]!.data.length, 0);
  // And a header split right before its (empty) end still completes on the last byte.
  const h = encodeFrame(11, FrameType.Request, 0, new Uint8Array());
  r.push(h.subarray(0, 9));
  assert.equal(seen.frames.length, 1);
  r.push(h.subarray(9));
  assert.equal(seen.frames.length, 2);
});

test('FrameReader: random frames split at random boundaries parse identically (seeded)', () => {
  const seed = 0x5eed1;
  const rand = mulberry32(seed);
  const frames: Array<[number, number, number, Buffer]> = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < 500; i++) {
    const len = rand() < 0.2 ? 0 : Math.floor(rand() * 3000);
    const body = Buffer.alloc(len);
    for (let j = 0; j < len; j++) body[j] = Math.floor(rand() * 256);
    const id = 1 + 2 * i;
    const type = 1 + Math.floor(rand() * 3);
    const flags = Math.floor(rand() * 256);
    frames.push([id, type, flags, body]);
    parts.push(encodeFrame(id, type, flags, body));
  }
  const all = Buffer.concat(parts);
  const { r, seen } = reader();
  for (let off = 0; off < all.length; ) {
    const n = 1 + Math.floor(rand() * 4000);
    r.push(all.subarray(off, off + n));
    off += n;
  }
  assert.equal(seen.frames.length, frames.length, `seed ${seed}`);
  seen.frames.forEach((f, i) => {
    const [id, type, flags, body] = frames[i]!;
    assert.equal(f.streamId, id);
    assert.equal(f.type, type);
    assert.equal(f.flags, flags);
    assert.ok(f.data.equals(body), `frame ${i} body (seed ${seed})`);
  });
});

test('FrameReader: a frame exactly at the limit is delivered; one byte over is skipped', () => {
  const { r, seen } = reader(16);
  r.push(encodeFrame(1, FrameType.Request, 0, Buffer.alloc(16, 1)));
  assert.equal(seen.frames.length, 1);
  r.push(encodeFrame(3, FrameType.Request, 0, Buffer.alloc(17, 2)));
  assert.deepEqual(seen.oversized, [{ streamId: 3, type: 1, length: 17 }]);
  r.push(encodeFrame(5, FrameType.Request, 0, Buffer.from('next')));
  assert.equal(seen.frames.length, 2);
  assert.equal(seen.frames[1]!.data.toString(), 'next');
});

test('FrameReader: an oversized frame is reported at its header and skipped without buffering', () => {
  const { r, seen } = reader();
  const length = 64 << 20; // 64 MiB, sixteen times the limit
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32BE(length, 0);
  header.writeUInt32BE(41, 4);
  header.writeUInt8(FrameType.Request, 8);
  r.push(header);
  assert.deepEqual(seen.oversized, [{ streamId: 41, type: 1, length }], 'reported before any body byte arrives');
  const chunk = Buffer.alloc(64 << 10, 0xab);
  global.gc?.();
  const before = process.memoryUsage().arrayBuffers;
  let peak = before;
  for (let sent = 0; sent < length; sent += chunk.length) {
    r.push(chunk);
    if ((sent & 0xfffff) === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }
  assert.ok(peak - before < 8 << 20, `arrayBuffers grew by ${peak - before} bytes while skipping ${length}`);
  assert.equal(seen.frames.length, 0);
  r.push(encodeFrame(43, FrameType.Request, 0, Buffer.from('after')));
  assert.equal(seen.frames.length, 1);
  assert.equal(seen.frames[0]!.streamId, 43);
});

test('FrameReader: an unknown frame type is corrupt and stops all parsing', () => {
  for (const type of [0, 4, 0xff]) {
    const { r, seen } = reader();
    const bad = encodeFrame(1, FrameType.Request, 0, Buffer.from('x'));
    bad.writeUInt8(type, 8);
    r.push(Buffer.concat([bad, encodeFrame(3, FrameType.Request, 0, Buffer.from('y'))]));
    assert.equal(seen.corrupt.length, 1);
    assert.match(seen.corrupt[0]!, new RegExp(`unknown frame type ${type}`));
    assert.equal(seen.frames.length, 0, 'nothing after a corrupt header is trusted');
    r.push(encodeFrame(5, FrameType.Request, 0, Buffer.from('z')));
    assert.equal(seen.frames.length, 0);
  }
});

test('FrameReader: stream id 0 is corrupt', () => {
  const { r, seen } = reader();
  r.push(encodeFrame(0, FrameType.Request, 0, Buffer.from('x')));
  assert.deepEqual(seen.corrupt, ['stream id 0']);
  assert.equal(seen.frames.length, 0);
});
