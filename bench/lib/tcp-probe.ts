// The host's side of the network suite's TCP measurements: a sink that times streams a container
// sends, a source that streams into a container's listener, and echo round trips; all bounded in time.

import { connect, type Socket } from 'node:net';
import { sleep } from './proc.js';

/** Transfer is one TCP stream as the host saw it: bytes and the hrtime (ms) of its first and last byte. */
export interface Transfer {
  bytes: number;
  firstMs: number;
  lastMs: number;
}

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** mibPerSecond is the aggregate rate of transfers that ran side by side: all bytes over first to last byte of any. */
export function mibPerSecond(transfers: readonly Transfer[]): number {
  const first = Math.min(...transfers.map((t) => t.firstMs));
  const last = Math.max(...transfers.map((t) => t.lastMs));
  const bytes = transfers.reduce((a, t) => a + t.bytes, 0);
  return bytes / 1048576 / (Math.max(last - first, 0.001) / 1000);
}

/** RECV_BUFFER is how much one read of a received stream may take (node's default is 64 KiB a read). */
const RECV_BUFFER = 1 << 20;

/**
 * receiveStream connects to a container's sender (a listener that writes a stream to whoever
 * connects, then closes) and times it from its first to its last byte; the first read's bytes
 * are left out of the count, since the clock starts when they arrive. Reads go into one 1 MiB
 * buffer, so the host's side costs little per byte.
 */
export async function receiveStream(host: string, port: number, timeoutMs: number): Promise<Transfer> {
  let bytes = 0;
  let firstMs: number | undefined;
  let lastMs = 0;
  const onread = {
    buffer: Buffer.allocUnsafe(RECV_BUFFER),
    callback: (n: number): boolean => {
      lastMs = nowMs();
      if (firstMs === undefined) firstMs = lastMs;
      else bytes += n;
      return true;
    },
  };
  const { socket } = await connectRetry(host, port, Math.min(timeoutMs, 60_000), onread);
  try {
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await withDeadline(closed, timeoutMs, 'the container did not end its stream');
    if (firstMs === undefined || bytes === 0) throw new Error(`the container's stream on port ${port} was empty`);
    return { bytes, firstMs, lastMs };
  } finally {
    socket.destroy();
  }
}

/** withDeadline settles like p, or rejects with what once ms have passed (the timer is always cleared). */
export async function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms); });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** connectRetry connects to host:port, retrying while nothing listens yet (a container's listener starting); connectMs is the successful attempt's. */
export async function connectRetry(host: string, port: number, timeoutMs: number, onread?: OnRead, allowHalfOpen = false): Promise<{ socket: Socket; connectMs: number }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await connectOnce(host, port, Math.max(until - Date.now(), 1), onread, allowHalfOpen);
    } catch (err) {
      if (Date.now() >= until) throw new Error(`connecting to ${host}:${port}: ${(err as Error).message}`);
      await sleep(100);
    }
  }
}

/** OnRead has node read a socket into one buffer and call back with each read's size. */
type OnRead = { buffer: Buffer; callback: (n: number, buf: Buffer) => boolean };

function connectOnce(host: string, port: number, timeoutMs: number, onread: OnRead | undefined, allowHalfOpen: boolean): Promise<{ socket: Socket; connectMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const s = connect({ host, port, allowHalfOpen, ...(onread !== undefined ? { onread } : {}) });
    s.setNoDelay(true);
    const t = setTimeout(() => { s.destroy(); reject(new Error(`no connection in ${timeoutMs} ms`)); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.removeAllListeners('error'); s.on('error', () => undefined); resolve({ socket: s, connectMs: nowMs() - t0 }); });
    s.once('error', (err) => { clearTimeout(t); s.destroy(); reject(err); });
  });
}

/** readBytes resolves with what the socket sent once it is at least n bytes, rejecting at the deadline or on close. */
function readBytes(s: Socket, n: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const finish = (err?: Error): void => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(parts));
    };
    const onData = (d: Buffer): void => { parts.push(d); got += d.length; if (got >= n) finish(); };
    const onClose = (): void => finish(new Error(`connection closed after ${got} of ${n} bytes`));
    const t = setTimeout(() => finish(new Error(`${got} of ${n} bytes in ${timeoutMs} ms`)), timeoutMs);
    s.on('data', onData);
    s.once('close', onClose);
  });
}

/**
 * sendStream streams bytes into a container's reader, a listener that reads to the end and then
 * closes. With ready, the reader first sends that line once the program that reads runs, and the
 * clock starts there; otherwise at the connection. It stops when the container closes, so it
 * covers the bytes reaching the reader, not only the host's buffers.
 */
export async function sendStream(host: string, port: number, bytes: number, timeoutMs: number, ready?: string): Promise<Transfer> {
  // A reader may shut its own sending side at once: keep ours open until everything is written.
  const { socket } = await connectRetry(host, port, Math.min(timeoutMs, 60_000), undefined, true);
  try {
    if (ready !== undefined) await readBytes(socket, ready.length, timeoutMs);
    const firstMs = nowMs();
    let wake: (() => void) | undefined;
    const closed = new Promise<number>((resolve) => socket.once('close', () => { wake?.(); resolve(nowMs()); }));
    socket.on('data', () => undefined);
    const chunk = Buffer.alloc(1 << 20);
    let left = bytes;
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!socket.write(piece)) await new Promise<void>((resolve) => { wake = resolve; socket.once('drain', resolve); });
      wake = undefined;
      if (socket.destroyed) throw new Error(`the container closed the stream with ${left} bytes unsent`);
    }
    socket.end();
    const lastMs = await withDeadline(closed, timeoutMs, 'the container did not close the stream');
    return { bytes, firstMs, lastMs };
  } finally {
    socket.destroy();
  }
}

/** EchoTimes are the sequential round trips on one connection to an echo server, after warm-up. */
export interface EchoTimes {
  rttMs: number[];
}

/** echoRoundTrips connects to an echo server and times messages of size bytes, one at a time on one connection. */
export async function echoRoundTrips(host: string, port: number, opts: { size: number; warmup: number; messages: number; timeoutMs: number }): Promise<EchoTimes> {
  const { socket } = await connectRetry(host, port, Math.min(opts.timeoutMs, 60_000));
  const until = Date.now() + opts.timeoutMs;
  try {
    const msg = Buffer.alloc(opts.size, 0x61);
    const rttMs: number[] = [];
    for (let i = 0; i < 1 + opts.warmup + opts.messages; i++) {
      const start = nowMs();
      socket.write(msg);
      await readBytes(socket, msg.length, Math.max(until - Date.now(), 1));
      // The first answer waits for the server to start its echo program after accepting.
      if (i > opts.warmup) rttMs.push(nowMs() - start);
    }
    return { rttMs };
  } finally {
    socket.destroy();
  }
}

/** ConnectTimes are fresh connections to an echo server: the TCP handshake, and handshake to first answer. */
export interface ConnectTimes {
  connectMs: number[];
  firstEchoMs: number[];
}

/**
 * connectTimes opens n connections one after another to an echo server, each timed to its
 * handshake and to the echo of one message, then closed. Each connects with retries, since a
 * server that serves one connection at a time may not listen again yet; only the successful
 * attempt is timed.
 */
export async function connectTimes(host: string, port: number, opts: { n: number; size: number; timeoutMs: number }): Promise<ConnectTimes> {
  const out: ConnectTimes = { connectMs: [], firstEchoMs: [] };
  const until = Date.now() + opts.timeoutMs;
  const msg = Buffer.alloc(opts.size, 0x62);
  for (let i = 0; i < opts.n; i++) {
    const left = (): number => Math.max(until - Date.now(), 1);
    const { socket, connectMs } = await connectRetry(host, port, left());
    try {
      const connected = nowMs();
      socket.write(msg);
      await readBytes(socket, msg.length, left());
      out.connectMs.push(connectMs);
      out.firstEchoMs.push(connectMs + nowMs() - connected);
    } finally {
      socket.destroy();
    }
  }
  return out;
}
