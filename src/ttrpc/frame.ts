// ttRPC framing: a 10-byte big-endian header (length u32, stream id u32, type u8,
// flags u8) followed by the data. FrameReader parses a byte stream into frames.

/** HEADER_SIZE is the fixed ttRPC frame header length. */
export const HEADER_SIZE = 10;
/** MAX_MESSAGE_SIZE is ttRPC's largest frame payload (4 MiB), as in containerd/ttrpc. */
export const MAX_MESSAGE_SIZE = 4 << 20;

/** FrameType is the third header field. */
export enum FrameType {
  Request = 1,
  Response = 2,
  Data = 3,
}

/** Frame is one parsed message. */
export interface Frame {
  streamId: number;
  type: FrameType;
  flags: number;
  data: Buffer;
}

/** encodeFrame returns header and data as one buffer, ready for a single write. */
export function encodeFrame(streamId: number, type: FrameType, flags: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + data.length);
  out.writeUInt32BE(data.length, 0);
  out.writeUInt32BE(streamId >>> 0, 4);
  out.writeUInt8(type, 8);
  out.writeUInt8(flags & 0xff, 9);
  out.set(data, HEADER_SIZE);
  return out;
}

/** FrameEvents are what a FrameReader reports while it parses. */
export interface FrameEvents {
  /** frame is a complete frame within the size limit. */
  frame(f: Frame): void;
  /** oversized is a frame whose data exceeds the limit; its bytes are skipped, never buffered. */
  oversized(streamId: number, type: FrameType, length: number): void;
  /** corrupt is a header that cannot be valid; the stream cannot be resynchronised. */
  corrupt(reason: string): void;
}

function isFrameType(t: number): t is FrameType {
  return t === FrameType.Request || t === FrameType.Response || t === FrameType.Data;
}

/**
 * FrameReader turns arbitrary chunks into frames. Memory is bounded by
 * HEADER_SIZE + maxSize: an oversized frame is skipped while it streams past.
 */
export class FrameReader {
  private header = Buffer.alloc(HEADER_SIZE);
  private headerFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  private skip = 0;
  private current: { streamId: number; type: FrameType; flags: number } | null = null;
  private dead = false;

  constructor(private readonly events: FrameEvents, private readonly maxSize = MAX_MESSAGE_SIZE) {}

  /** push feeds the next chunk of the byte stream. */
  push(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length && !this.dead) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        off += n;
        continue;
      }
      if (this.body !== null) {
        const n = Math.min(this.body.length - this.bodyFill, chunk.length - off);
        this.body.set(chunk.subarray(off, off + n), this.bodyFill);
        this.bodyFill += n;
        off += n;
        if (this.bodyFill === this.body.length) this.finishBody();
        continue;
      }
      const n = Math.min(HEADER_SIZE - this.headerFill, chunk.length - off);
      this.header.set(chunk.subarray(off, off + n), this.headerFill);
      this.headerFill += n;
      off += n;
      if (this.headerFill === HEADER_SIZE) this.finishHeader();
    }
  }

  private finishHeader(): void {
    this.headerFill = 0;
    const length = this.header.readUInt32BE(0);
    const streamId = this.header.readUInt32BE(4);
    const type = this.header.readUInt8(8);
    const flags = this.header.readUInt8(9);
    if (!isFrameType(type)) {
      this.dead = true;
      this.events.corrupt(`unknown frame type ${type}`);
      return;
    }
    if (streamId === 0) {
      this.dead = true;
      this.events.corrupt('stream id 0');
      return;
    }
    if (length > this.maxSize) {
      this.skip = length;
      this.events.oversized(streamId, type, length);
      return;
    }
    this.current = { streamId, type, flags };
    this.body = Buffer.allocUnsafe(length);
    this.bodyFill = 0;
    if (length === 0) this.finishBody();
  }

  private finishBody(): void {
    const cur = this.current!;
    const data = this.body!;
    this.body = null;
    this.current = null;
    this.events.frame({ ...cur, data });
  }
}
