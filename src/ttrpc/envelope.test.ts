// Unit tests for the hand-written ttRPC envelope codec, checked against protobuf-es (the generated
// schema) in both directions on seeded random messages, plus unknown fields and malformed input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { RequestSchema, ResponseSchema } from '../protocols/generated/ttrpc_pb.js';
import { mulberry32 } from '../../test/lib/prng.js';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, EnvelopeError, type RequestEnvelope, type ResponseEnvelope } from './envelope.js';

const SEED = 20261202;

function gen(rand: () => number) {
  const int = (n: number) => Math.floor(rand() * n);
  const str = (): string => {
    const alphabet = ['a', 'Z', '/', '.', 'é', '€', '𝄞', '\ufeff', '\0', ' '];
    let s = '';
    for (let i = int(rand() < 0.2 ? 0 : 40); i > 0; i--) s += alphabet[int(alphabet.length)]!;
    return s;
  };
  const bytes = (): Uint8Array => {
    const n = rand() < 0.1 ? 200_000 + int(100) : int(300);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i += 97) b[i] = int(256);
    return b;
  };
  const timeouts = [0n, 1n, 127n, 128n, 1_500_000_000n, -1n, -(2n ** 63n), 2n ** 63n - 1n, 30_000_000_000n];
  const codes = [0, 1, 5, 13, 16, -1, 2 ** 31 - 1, -(2 ** 31)];
  return {
    request: (): RequestEnvelope => ({
      service: str(), method: str(), payload: bytes(), timeoutNano: timeouts[int(timeouts.length)]!,
      metadata: Array.from({ length: int(4) }, () => ({ key: str(), value: str() })),
    }),
    response: (): ResponseEnvelope => ({
      status: rand() < 0.2 ? undefined : { code: codes[int(codes.length)]!, message: str() },
      payload: bytes(),
    }),
  };
}

function plainRequest(r: { service: string; method: string; payload: Uint8Array; timeoutNano: bigint; metadata: Array<{ key: string; value: string }> }): RequestEnvelope {
  return { service: r.service, method: r.method, payload: r.payload, timeoutNano: r.timeoutNano, metadata: r.metadata.map((kv) => ({ key: kv.key, value: kv.value })) };
}

test('requests: byte-identical to protobuf-es, and each side decodes the other', () => {
  const g = gen(mulberry32(SEED));
  for (let i = 0; i < 300; i++) {
    const r = g.request();
    const ours = encodeRequest(r);
    const theirs = toBinary(RequestSchema, create(RequestSchema, r));
    assert.deepEqual(Buffer.from(ours), Buffer.from(theirs), `seed ${SEED} case ${i}`);
    assert.deepEqual(decodeRequest(theirs), plainRequest(fromBinary(RequestSchema, ours)), `seed ${SEED} case ${i}`);
    assert.deepEqual(decodeRequest(ours), r);
  }
});

test('responses: byte-identical to protobuf-es, and each side decodes the other', () => {
  const g = gen(mulberry32(SEED + 1));
  for (let i = 0; i < 300; i++) {
    const r = g.response();
    const ours = encodeResponse(r);
    const theirs = toBinary(ResponseSchema, create(ResponseSchema, r));
    assert.deepEqual(Buffer.from(ours), Buffer.from(theirs), `seed ${SEED + 1} case ${i}`);
    const back = fromBinary(ResponseSchema, ours);
    assert.deepEqual(decodeResponse(theirs), { status: back.status ? { code: back.status.code, message: back.status.message } : undefined, payload: back.payload });
    assert.deepEqual(decodeResponse(ours), r);
  }
});

test('an OK status is sent as an empty status message, as before', () => {
  assert.deepEqual([...encodeResponse({ status: { code: 0, message: '' }, payload: new Uint8Array([7]) })], [0x0a, 0x00, 0x12, 0x01, 0x07]);
  assert.deepEqual(decodeResponse(new Uint8Array([0x0a, 0x00])).status, { code: 0, message: '' });
});

test('unknown fields are skipped, status details ignored, a repeated status merged', () => {
  const status = create(ResponseSchema, {
    status: { code: 5, message: 'nope', details: [{ typeUrl: 'type.googleapis.com/x', value: new Uint8Array([1, 2]) }] },
    payload: new Uint8Array([9]),
  });
  const unknown = new Uint8Array([
    (7 << 3) | 0, 0x96, 0x01, // varint
    (8 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8, // fixed64
    (9 << 3) | 5, 1, 2, 3, 4, // fixed32
    (10 << 3) | 2, 2, 0xaa, 0xbb, // bytes
  ]);
  const bytes = new Uint8Array(Buffer.concat([toBinary(ResponseSchema, status), unknown, new Uint8Array([0x0a, 0x02, 0x08, 0x07])]));
  assert.deepEqual(decodeResponse(bytes), { status: { code: 7, message: 'nope' }, payload: new Uint8Array([9]) });
  const req = new Uint8Array(Buffer.concat([unknown, encodeRequest({ service: 's', method: 'm', payload: new Uint8Array(), timeoutNano: 5n, metadata: [] })]));
  assert.deepEqual(decodeRequest(req), { service: 's', method: 'm', payload: new Uint8Array(), timeoutNano: 5n, metadata: [] });
});

test('malformed envelopes throw EnvelopeError, never read past the end', () => {
  const bad: Array<[string, number[]]> = [
    ['truncated tag varint', [0x80]],
    ['field number 0', [0x02, 0x00]],
    ['length past the end', [0x0a, 0x05, 0x61]],
    ['huge length', [0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f]],
    ['truncated fixed64', [(8 << 3) | 1, 1, 2, 3]],
    ['truncated fixed32', [(8 << 3) | 5, 1]],
    ['group wire type', [(8 << 3) | 3]],
    ['wire type 7', [(8 << 3) | 7]],
    ['wrong wire type for service', [(1 << 3) | 0, 1]],
    ['eleven-byte varint', [(4 << 3) | 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ['tag overflowing 32 bits', [0xff, 0xff, 0xff, 0xff, 0x7f]],
    ['truncated metadata entry', [0x2a, 0x03, 0x0a, 0x05, 0x61]],
  ];
  for (const [what, bytes] of bad) {
    assert.throws(() => decodeRequest(new Uint8Array(bytes)), EnvelopeError, `request: ${what}`);
    assert.throws(() => fromBinary(RequestSchema, new Uint8Array(bytes)), `protobuf-es agrees: ${what}`);
  }
  assert.throws(() => decodeResponse(new Uint8Array([0x0a, 0x03, 0x08])), EnvelopeError, 'truncated status');
});

test('random garbage never escapes as anything but EnvelopeError', () => {
  const rand = mulberry32(SEED + 2);
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(Math.floor(rand() * 40));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
    for (const decode of [decodeRequest, decodeResponse]) {
      try {
        decode(b);
      } catch (err) {
        assert.ok(err instanceof EnvelopeError, `seed ${SEED + 2} case ${i}: ${String(err)}`);
      }
    }
  }
});
