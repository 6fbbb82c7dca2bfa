// ttRPC server: registered handlers by full service and method name, served over any
// Duplex. Calls on one connection run concurrently and answer in completion order.

import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { chmod, unlink } from 'node:fs/promises';
import { Code, HakoError } from '../errors/index.js';
import { nullLogger, type Logger } from '../log/index.js';
import { CallState } from './call-state.js';
import { decodeRequest, encodeResponse, type RequestEnvelope } from './envelope.js';
import { encodeFrame, FrameReader, FrameType, MAX_MESSAGE_SIZE } from './frame.js';
import { statusFromError } from './status.js';

/** NAMESPACE_KEY is the metadata key containerd uses for the namespace. */
export const NAMESPACE_KEY = 'containerd-namespace-ttrpc';

/** CallContext describes the call a handler serves. */
export interface CallContext {
  service: string;
  method: string;
  /** metadata with lower-cased keys; a key may repeat. */
  metadata: Map<string, string[]>;
  /** namespace is containerd's namespace from the metadata, if sent. */
  namespace: string | undefined;
  /** signal aborts when the deadline passes or the connection closes (made when first read). */
  readonly signal: AbortSignal;
}

/** Handler serves one method: decoded bytes in, encoded bytes out. */
export type Handler = (payload: Uint8Array, ctx: CallContext) => Promise<Uint8Array>;

/** ServerOptions configure a Server. */
export interface ServerOptions {
  log?: Logger;
  maxMessageSize?: number;
  /** maxInFlight bounds concurrent calls per connection; more answer RESOURCE_EXHAUSTED. */
  maxInFlight?: number;
}

/** Server dispatches ttRPC requests to registered handlers. */
export class Server {
  private readonly handlers = new Map<string, Handler>();
  private readonly connections = new Set<ServerConnection>();
  private readonly listeners = new Set<NetServer>();
  readonly log: Logger;
  readonly maxSize: number;
  readonly maxInFlight: number;

  constructor(opts: ServerOptions = {}) {
    this.log = opts.log ?? nullLogger;
    this.maxSize = opts.maxMessageSize ?? MAX_MESSAGE_SIZE;
    this.maxInFlight = opts.maxInFlight ?? 1024;
  }

  /** register adds a handler for service (full name) and method (bare name). */
  register(service: string, method: string, handler: Handler): void {
    const key = `${service}/${method}`;
    if (this.handlers.has(key)) throw new HakoError(Code.ALREADY_EXISTS, `ttrpc: ${key} is already registered`);
    this.handlers.set(key, handler);
  }

  /** handler returns the handler for service/method, if registered. */
  handler(service: string, method: string): Handler | undefined {
    return this.handlers.get(`${service}/${method}`);
  }

  /** serve handles one connection until it closes. */
  serve(stream: Duplex): ServerConnection {
    const conn = new ServerConnection(this, stream);
    this.connections.add(conn);
    stream.once('close', () => this.connections.delete(conn));
    return conn;
  }

  /** connectionCount is the number of open connections (for health checks and leak tests). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** listen serves a unix socket at path (mode 0600), replacing a stale socket file. */
  async listen(path: string): Promise<NetServer> {
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    const srv = createServer((sock: Socket) => this.serve(sock));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(path, () => {
        srv.off('error', reject);
        resolve();
      });
    });
    await chmod(path, 0o600);
    this.listeners.add(srv);
    srv.once('close', () => this.listeners.delete(srv));
    return srv;
  }

  /** close stops listening and drops every connection. */
  async close(): Promise<void> {
    // net.Server.close() only calls back once every connection has ended, so the
    // connections must be dropped before waiting, not after.
    const closing = [...this.listeners].map((l) => new Promise<void>((r) => l.close(() => r())));
    for (const c of this.connections) c.close();
    await Promise.all(closing);
  }
}

/** ServerConnection serves the calls of one byte stream. */
export class ServerConnection {
  private readonly inFlight = new Map<number, CallState>();
  private closed = false;
  private paused = false;

  constructor(private readonly server: Server, private readonly stream: Duplex) {
    const reader = new FrameReader(
      {
        frame: (f) => {
          if (f.type !== FrameType.Request) {
            server.log.debug('ttrpc: ignoring non-request frame', { streamId: f.streamId, type: f.type });
            return;
          }
          this.dispatch(f.streamId, f.data);
        },
        oversized: (streamId, type, length) => {
          if (type !== FrameType.Request) return;
          this.respondError(streamId, new HakoError(Code.RESOURCE_EXHAUSTED, `message of ${length} bytes exceeds the ${server.maxSize}-byte limit`));
        },
        corrupt: (reason) => {
          server.log.warn('ttrpc: closing connection after corrupt frame', { reason });
          this.close();
        },
      },
      server.maxSize,
    );
    stream.on('data', (chunk: Buffer) => reader.push(chunk));
    stream.on('error', (err) => {
      server.log.debug('ttrpc: connection error', { err });
      this.close();
    });
    stream.on('close', () => this.close());
    stream.on('end', () => this.close());
  }

  /** close aborts every call in flight and destroys the stream. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const call of this.inFlight.values()) call.abort(new HakoError(Code.CANCELLED, 'connection closed'));
    this.inFlight.clear();
    this.stream.destroy();
  }

  private dispatch(streamId: number, data: Buffer): void {
    if (this.closed) return; // later frames of the chunk that condemned the connection
    if (streamId % 2 === 0) {
      this.server.log.warn('ttrpc: closing connection after request on an even stream id', { streamId });
      this.close();
      return;
    }
    let req: RequestEnvelope;
    try {
      req = decodeRequest(data);
    } catch (err) {
      this.respondError(streamId, new HakoError(Code.INVALID_ARGUMENT, `malformed request: ${(err as Error).message}`));
      return;
    }
    if (this.inFlight.has(streamId)) {
      this.respondError(streamId, new HakoError(Code.INVALID_ARGUMENT, `stream ${streamId} is already in use`));
      return;
    }
    if (this.inFlight.size >= this.server.maxInFlight) {
      this.respondError(streamId, new HakoError(Code.RESOURCE_EXHAUSTED, `more than ${this.server.maxInFlight} calls in flight`));
      return;
    }
    const handler = this.server.handler(req.service, req.method);
    if (!handler) {
      this.respondError(streamId, new HakoError(Code.UNIMPLEMENTED, `${req.service}/${req.method} is not implemented`));
      return;
    }
    const ms = req.timeoutNano > 0n ? Number(req.timeoutNano / 1_000_000n) : 0;
    const call = new CallState(req.timeoutNano > 0n ? Date.now() + ms : null, ms, req.method);
    this.inFlight.set(streamId, call);
    const ctx = makeContext(req, call);
    const finish = (payload: Uint8Array | null, err?: unknown) => {
      call.end();
      if (this.inFlight.get(streamId) !== call) return; // connection closed meanwhile
      this.inFlight.delete(streamId);
      if (err !== undefined) this.respondError(streamId, call.aborted && !(err instanceof HakoError) ? call.abortReason : err);
      else this.respond(streamId, payload!);
    };
    let p: Promise<Uint8Array>;
    try {
      p = handler(req.payload, ctx);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then((out) => finish(out), (err) => finish(null, err));
  }

  private respond(streamId: number, payload: Uint8Array): void {
    const data = encodeResponse({ status: { code: Code.OK, message: '' }, payload });
    if (data.length > this.server.maxSize) {
      this.respondError(streamId, new HakoError(Code.RESOURCE_EXHAUSTED, `response of ${data.length} bytes exceeds the ${this.server.maxSize}-byte limit`));
      return;
    }
    this.write(streamId, data);
  }

  private respondError(streamId: number, err: unknown): void {
    const data = encodeResponse({ status: statusFromError(err), payload: new Uint8Array(0) });
    this.write(streamId, data);
  }

  private write(streamId: number, data: Uint8Array): void {
    if (this.closed) return;
    const ok = this.stream.write(encodeFrame(streamId, FrameType.Response, 0, data), (err) => {
      if (err) this.close();
    });
    // A peer that sends requests but does not read the answers would make us buffer
    // without bound: stop reading its requests until our answers drain.
    if (!ok && !this.paused) {
      this.paused = true;
      this.stream.pause();
      this.stream.once('drain', () => {
        this.paused = false;
        this.stream.resume();
      });
    }
  }
}

function makeContext(req: RequestEnvelope, call: CallState): CallContext {
  const metadata = new Map<string, string[]>();
  for (const kv of req.metadata) {
    const k = kv.key.toLowerCase();
    const list = metadata.get(k);
    if (list) list.push(kv.value);
    else metadata.set(k, [kv.value]);
  }
  return {
    service: req.service,
    method: req.method,
    metadata,
    namespace: metadata.get(NAMESPACE_KEY)?.[0],
    get signal() {
      return call.signal;
    },
  };
}
