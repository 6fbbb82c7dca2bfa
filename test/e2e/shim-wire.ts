// An independent ttRPC client for testing the shim's socket: frames and protobuf are
// encoded by hand here (not with hako's ttrpc or protobuf code), so both sides are checked.

import { connect, type Socket } from 'node:net';

/** varint encodes an unsigned integer as a protobuf varint. */
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n >>> 0;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/** field encodes one length-delimited protobuf field. */
export function pbBytes(num: number, data: Uint8Array | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
  return Buffer.concat([varint((num << 3) | 2), varint(b.length), b]);
}

/** pbVarint encodes one varint protobuf field. */
export function pbVarint(num: number, v: number): Buffer {
  return Buffer.concat([varint(num << 3), varint(v)]);
}

/** pbFields decodes a flat protobuf message into field number -> values (varints as numbers, bytes as Buffers). */
export function pbFields(buf: Buffer): Map<number, Array<number | Buffer>> {
  const out = new Map<number, Array<number | Buffer>>();
  let i = 0;
  const readVarint = (): number => {
    let shift = 0;
    let v = 0;
    for (;;) {
      const b = buf[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const key = readVarint();
    const num = Math.floor(key / 8);
    const wt = key & 7;
    let val: number | Buffer;
    if (wt === 0) val = readVarint();
    else if (wt === 2) {
      const len = readVarint();
      val = buf.subarray(i, i + len);
      i += len;
    } else if (wt === 1) { val = buf.subarray(i, i + 8); i += 8; }
    else if (wt === 5) { val = buf.subarray(i, i + 4); i += 4; }
    else throw new Error(`unsupported wire type ${wt}`);
    const list = out.get(num) ?? [];
    list.push(val);
    out.set(num, list);
  }
  return out;
}

/** frame builds a ttRPC frame: u32 length, u32 stream id, u8 type, u8 flags, data. */
export function frame(streamId: number, type: number, data: Buffer, lengthOverride?: number): Buffer {
  const h = Buffer.alloc(10);
  h.writeUInt32BE(lengthOverride ?? data.length, 0);
  h.writeUInt32BE(streamId, 4);
  h.writeUInt8(type, 8);
  h.writeUInt8(0, 9);
  return Buffer.concat([h, data]);
}

/** request encodes a ttrpc.Request with the containerd namespace in its metadata. */
export function request(service: string, method: string, payload: Buffer, namespace = 'default'): Buffer {
  const kv = Buffer.concat([pbBytes(1, 'containerd-namespace-ttrpc'), pbBytes(2, namespace)]);
  return Buffer.concat([pbBytes(1, service), pbBytes(2, method), pbBytes(3, payload), pbBytes(5, kv)]);
}

/** WireResponse is one decoded response frame. */
export interface WireResponse {
  streamId: number;
  type: number;
  code: number;
  message: string;
  payload: Buffer;
}

/** WireConn is a raw connection collecting response frames. */
export class WireConn {
  readonly responses: WireResponse[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  private constructor(readonly sock: Socket) {
    sock.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      while (this.buf.length >= 10) {
        const len = this.buf.readUInt32BE(0);
        if (this.buf.length < 10 + len) break;
        const streamId = this.buf.readUInt32BE(4);
        const type = this.buf.readUInt8(8);
        const data = this.buf.subarray(10, 10 + len);
        this.buf = this.buf.subarray(10 + len);
        const f = pbFields(Buffer.from(data));
        const status = f.get(1)?.[0] as Buffer | undefined;
        const sf = status ? pbFields(status) : new Map();
        this.responses.push({
          streamId, type,
          code: (sf.get(1)?.[0] as number | undefined) ?? 0,
          message: ((sf.get(2)?.[0] as Buffer | undefined) ?? Buffer.alloc(0)).toString(),
          payload: (f.get(2)?.[0] as Buffer | undefined) ?? Buffer.alloc(0),
        });
      }
      this.wake();
    });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => {});
  }

  static dial(path: string): Promise<WireConn> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new WireConn(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(b: Buffer): void {
    this.sock.write(b);
  }

  /** until waits for a condition on the collected responses (or the close). */
  async until(cond: (c: WireConn) => boolean, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond(this)) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`wire: condition not met within ${ms} ms (${this.responses.length} responses, closed=${this.closed})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  response(streamId: number): WireResponse | undefined {
    return this.responses.find((r) => r.streamId === streamId);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** TASK is the shim's service name. */
export const TASK = 'containerd.task.v2.Task';
