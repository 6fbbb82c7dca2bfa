// ttRPC client over any Duplex byte stream (unix socket, virtio-serial port): many calls
// in flight at once, odd increasing stream ids, per-call timeouts and cancellation.

import type { Duplex } from 'node:stream';
import { Code, HakoError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { nullLogger } from '../log/index.js';
import { decodeResponse, encodeRequest, type ResponseEnvelope } from './envelope.js';
import { encodeFrame, FrameReader, FrameType, MAX_MESSAGE_SIZE } from './frame.js';
import { errorFromStatus } from './status.js';

/** CallOptions tune one call. */
export interface CallOptions {
  /** signal cancels the call locally; the pending entry is dropped at once. */
  signal?: AbortSignal;
  /** timeoutMs bounds the call; it is also sent to the server as timeout_nano. */
  timeoutMs?: number;
  /** metadata is sent as ttRPC KeyValue pairs. */
  metadata?: Record<string, string>;
}

/** ClientOptions configure a Client. */
export interface ClientOptions {
  log?: Logger;
  /** defaultTimeoutMs applies when a call gives none; 0 means none. */
  defaultTimeoutMs?: number;
  maxMessageSize?: number;
}

interface Pending {
  resolve(data: Uint8Array): void;
  reject(err: HakoError): void;
  where: string;
}

/** Client issues unary ttRPC calls on one connection. */
export class Client {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly reader: FrameReader;
  private closedError: HakoError | null = null;
  private readonly closeWaiters: Array<(err: HakoError) => void> = [];
  private readonly log: Logger;
  private readonly defaultTimeoutMs: number;
  private readonly maxSize: number;

  constructor(private readonly stream: Duplex, opts: ClientOptions = {}) {
    this.log = opts.log ?? nullLogger;
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 0;
    this.maxSize = opts.maxMessageSize ?? MAX_MESSAGE_SIZE;
    this.reader = new FrameReader(
      {
        frame: (f) => {
          if (f.type !== FrameType.Response) return; // data frames belong to streaming, unused here
          this.settle(f.streamId, f.data);
        },
        oversized: (streamId, _type, length) => {
          const p = this.take(streamId);
          p?.reject(new HakoError(Code.RESOURCE_EXHAUSTED, `${p.where}: response of ${length} bytes exceeds the ${this.maxSize}-byte limit`));
        },
        corrupt: (reason) => this.shutdown(new HakoError(Code.UNAVAILABLE, `ttrpc: corrupt frame from server: ${reason}`)),
      },
      this.maxSize,
    );
    stream.on('data', (chunk: Buffer) => this.reader.push(chunk));
    stream.on('error', (err) => this.shutdown(new HakoError(Code.UNAVAILABLE, `ttrpc: connection error: ${err.message}`, { cause: err })));
    stream.on('close', () => this.shutdown(new HakoError(Code.UNAVAILABLE, 'ttrpc: connection closed')));
    stream.on('end', () => this.shutdown(new HakoError(Code.UNAVAILABLE, 'ttrpc: connection closed by peer')));
  }

  /** closed reports whether the connection is gone. */
  get closed(): boolean {
    return this.closedError !== null;
  }

  /** onClose calls fn once when the connection ends (at once if it already has). */
  onClose(fn: (err: HakoError) => void): void {
    if (this.closedError) fn(this.closedError);
    else this.closeWaiters.push(fn);
  }

  /** call sends one request and resolves with the response payload. */
  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    const where = `${service}/${method}`;
    if (this.closedError) return Promise.reject(new HakoError(Code.UNAVAILABLE, `${where}: ${this.closedError.message}`));
    if (opts.signal?.aborted) return Promise.reject(abortError(opts.signal, where));
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const id = this.nextId;
    this.nextId = this.nextId + 2 > 0x7fffffff ? 1 : this.nextId + 2;
    const data = encodeRequest({
      service,
      method,
      payload,
      timeoutNano: timeoutMs > 0 ? BigInt(Math.round(timeoutMs * 1e6)) : 0n,
      metadata: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    });
    if (data.length > this.maxSize) {
      return Promise.reject(new HakoError(Code.RESOURCE_EXHAUSTED, `${where}: request of ${data.length} bytes exceeds the ${this.maxSize}-byte limit`));
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      // Through the pending entry's reject, so that the timer is cleared too.
      const onAbort = () => this.take(id)?.reject(abortError(opts.signal!, where));
      const done = () => {
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      this.pending.set(id, {
        where,
        resolve: (d) => { done(); resolve(d); },
        reject: (e) => { done(); reject(e); },
      });
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          const p = this.take(id);
          p?.reject(new HakoError(Code.DEADLINE_EXCEEDED, `${where}: no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.stream.write(encodeFrame(id, FrameType.Request, 0, data), (err) => {
        if (err) this.take(id)?.reject(new HakoError(Code.UNAVAILABLE, `${where}: write failed: ${err.message}`, { cause: err }));
      });
    });
  }

  /** close ends the connection; pending calls fail with UNAVAILABLE. */
  close(): void {
    this.shutdown(new HakoError(Code.UNAVAILABLE, 'ttrpc: client closed'));
    this.stream.destroy();
  }

  private take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p) this.pending.delete(id);
    return p;
  }

  private settle(streamId: number, data: Buffer): void {
    const p = this.take(streamId);
    if (!p) {
      this.log.debug('ttrpc: response for unknown or abandoned stream', { streamId });
      return;
    }
    let resp: ResponseEnvelope;
    try {
      resp = decodeResponse(data);
    } catch (err) {
      p.reject(new HakoError(Code.INTERNAL, `${p.where}: malformed response: ${(err as Error).message}`));
      return;
    }
    if (resp.status && resp.status.code !== Code.OK) {
      p.reject(errorFromStatus(resp.status, p.where));
      return;
    }
    p.resolve(resp.payload);
  }

  private shutdown(err: HakoError): void {
    if (this.closedError) return;
    this.closedError = err;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(new HakoError(err.code, `${p.where}: ${err.message}`, { cause: err }));
    for (const w of this.closeWaiters.splice(0)) w(err);
    this.stream.destroy();
  }
}

function abortError(signal: AbortSignal, where: string): HakoError {
  const r: unknown = signal.reason;
  if (r instanceof HakoError) return r;
  if (r instanceof Error && r.name === 'TimeoutError') return new HakoError(Code.DEADLINE_EXCEEDED, `${where}: ${r.message}`);
  return new HakoError(Code.CANCELLED, `${where}: cancelled`);
}
