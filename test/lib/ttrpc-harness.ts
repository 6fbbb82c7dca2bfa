// Test helpers for the ttRPC layer: a Server listening on a temporary unix socket, and a
// raw connection that writes arbitrary bytes and collects response frames for wire checks.

import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { RequestSchema, ResponseSchema, type Response } from '../../src/protocols/generated/ttrpc_pb.js';
import { Client, type ClientOptions } from '../../src/ttrpc/client.js';
import { dialUnix } from '../../src/ttrpc/dial.js';
import { encodeFrame, FrameReader, FrameType, type Frame } from '../../src/ttrpc/frame.js';
import type { Server } from '../../src/ttrpc/server.js';

/** Listening is a Server bound to a socket in a fresh temporary directory. */
export interface Listening {
  path: string;
  /** client dials the socket and wraps it in a ttRPC Client. */
  client(opts?: ClientOptions): Promise<Client>;
  /** raw dials the socket for byte-level tests. */
  raw(): Promise<RawConn>;
  /** close stops the server and removes the directory. */
  close(): Promise<void>;
}

/** listenTemp serves server on `<tmp>/ttrpc.sock`. */
export async function listenTemp(server: Server): Promise<Listening> {
  const dir = mkdtempSync(join(tmpdir(), 'hako-ttrpc-'));
  const path = join(dir, 'ttrpc.sock');
  await server.listen(path);
  const clients: Client[] = [];
  const raws: RawConn[] = [];
  return {
    path,
    async client(opts) {
      const c = new Client(await dialUnix(path), opts);
      clients.push(c);
      return c;
    },
    async raw() {
      const r = await RawConn.dial(path);
      raws.push(r);
      return r;
    },
    async close() {
      for (const c of clients) c.close();
      for (const r of raws) r.sock.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** DecodedResponse is a response frame with its ttRPC Response decoded. */
export interface DecodedResponse {
  streamId: number;
  code: number;
  message: string;
  payload: Uint8Array;
}

/** RawConn is a unix socket that sends raw bytes and parses the response frames it receives. */
export class RawConn {
  readonly frames: Frame[] = [];
  /** closed resolves when the peer (or we) closed the socket. */
  readonly closed: Promise<void>;
  isClosed = false;
  corrupt: string | null = null;
  private waiters: Array<() => void> = [];

  constructor(readonly sock: Socket) {
    const reader = new FrameReader({
      frame: (f) => {
        this.frames.push(f);
        this.wake();
      },
      oversized: () => {},
      corrupt: (reason) => {
        this.corrupt = reason;
      },
    });
    sock.on('data', (c: Buffer) => reader.push(c));
    sock.on('error', () => {});
    this.closed = new Promise((resolve) =>
      sock.once('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  /** dial connects a RawConn to a unix socket path. */
  static async dial(path: string): Promise<RawConn> {
    return new RawConn(await dialUnix(path));
  }

  /** write sends bytes and resolves once they are handed to the kernel. */
  write(buf: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.sock.write(buf, (err) => (err ? reject(err) : resolve())));
  }

  /** request sends a well-formed request frame. */
  request(streamId: number, service: string, method: string, payload: Uint8Array = new Uint8Array(), extra: { timeoutNano?: bigint; metadata?: Array<{ key: string; value: string }> } = {}): Promise<void> {
    const data = toBinary(RequestSchema, create(RequestSchema, { service, method, payload, timeoutNano: extra.timeoutNano ?? 0n, metadata: extra.metadata ?? [] }));
    return this.write(encodeFrame(streamId, FrameType.Request, 0, data));
  }

  /** response waits for the response frame on streamId and decodes it. */
  async response(streamId: number, timeoutMs = 5000): Promise<DecodedResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex((f) => f.streamId === streamId);
      if (i >= 0) {
        const f = this.frames.splice(i, 1)[0]!;
        if (f.type !== FrameType.Response) throw new Error(`stream ${streamId}: frame type ${f.type}, want response`);
        const r: Response = fromBinary(ResponseSchema, f.data);
        return { streamId, code: r.status?.code ?? 0, message: r.status?.message ?? '', payload: r.payload };
      }
      if (this.isClosed) throw new Error(`stream ${streamId}: connection closed before a response`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`stream ${streamId}: no response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** rawServer is a plain unix socket server capturing what a Client writes; the test answers by hand. */
export async function rawServer(): Promise<{ path: string; conns: Socket[]; received: () => Buffer; conn: (i: number) => Promise<Socket>; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hako-raw-'));
  const path = join(dir, 'raw.sock');
  const conns: Socket[] = [];
  const chunks: Buffer[] = [];
  const srv = createServer((s) => {
    conns.push(s);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => srv.listen(path, resolve));
  return {
    path,
    conns,
    received: () => Buffer.concat(chunks),
    conn: async (i) => {
      await waitFor(() => conns.length > i, 5000, `raw connection ${i}`);
      return conns[i]!;
    },
    close: async () => {
      for (const s of conns) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** connectRaw opens a bare socket (no ttRPC parsing). */
export function connectRaw(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** waitFor polls cond every 5 ms until it holds or timeoutMs passes. */
export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
