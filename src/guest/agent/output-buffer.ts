// A bounded buffer between a child's stdout/stderr pipe and the host's ReadStdout/ReadStderr
// long polls. When it fills up it pauses the pipe (backpressure) instead of dropping output.

import { Code, HakoError } from '../../errors/index.js';

/** ReadResult is one answer to a read: some bytes, or eof once the stream ended and was drained. */
export interface ReadResult {
  data: Buffer;
  eof: boolean;
}

/** OutputBufferOptions tune an OutputBuffer. */
export interface OutputBufferOptions {
  /** limit is the buffered byte count at which the source is paused. */
  limit?: number;
  /** pause stops the source (e.g. stream.pause()); resume restarts it. */
  pause?: () => void;
  resume?: () => void;
  /**
   * coalesce holds a read back while less than `bytes` (or the reader's max_len) is buffered, for up
   * to `ms`, so a process writing many small chunks is sent in fewer, larger answers. Off by default.
   */
  coalesce?: { bytes: number; ms: number };
}

/**
 * OUTPUT_COALESCE is what the agent uses. The agent outranks containers for the CPU (see
 * container-cgroup.ts), so it answers a read as soon as a few KiB are there, and each answer costs
 * a round trip and a fixed share of guest CPU. Waiting up to 2 ms for 32 KiB raised stdout
 * throughput from 1.2-1.3 to 1.5-2.2 MB/s in the bench (with PIPE_PACE_MS).
 */
export const OUTPUT_COALESCE = { bytes: 32 * 1024, ms: 2 } as const;

/** DEFAULT_OUTPUT_LIMIT is how much output the agent keeps per stream before pausing the process. */
export const DEFAULT_OUTPUT_LIMIT = 1 << 20;

interface Waiter {
  maxLen: number;
  resolve(r: ReadResult): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/** OutputBuffer queues chunks from one stream and hands them out to readers in order. */
export class OutputBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private paused = false;
  private readonly waiters: Waiter[] = [];
  private readonly limit: number;
  private flushTimer: NodeJS.Timeout | null = null;
  private flushDue = false;

  constructor(private readonly opts: OutputBufferOptions = {}) {
    this.limit = opts.limit ?? DEFAULT_OUTPUT_LIMIT;
  }

  /** buffered is the number of bytes waiting to be read. */
  get buffered(): number {
    return this.size;
  }

  /** done reports whether the stream ended and every byte was read. */
  get done(): boolean {
    return this.ended && this.size === 0;
  }

  /** push appends a chunk from the source; past the limit the source is paused. */
  push(chunk: Buffer): void {
    if (this.ended || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.serve();
    if (this.size >= this.limit && !this.paused) {
      this.paused = true;
      this.opts.pause?.();
    }
  }

  /** end marks the source finished; readers get eof once the rest is read. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.serve();
  }

  /** read waits for data or the end; it returns at most maxLen bytes. */
  read(maxLen: number, signal?: AbortSignal): Promise<ReadResult> {
    if (!(maxLen > 0)) return Promise.reject(new HakoError(Code.INVALID_ARGUMENT, 'max_len must be positive'));
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.waiters.length === 0 && this.answerable(maxLen)) {
      const r = this.take(maxLen);
      if (r) return Promise.resolve(r);
    }
    const p = new Promise<ReadResult>((resolve, reject) => {
      const w: Waiter = {
        maxLen,
        signal,
        resolve,
        reject,
        onAbort: () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          if (this.waiters.length === 0) this.stopFlushTimer();
          reject(abortReason(signal!));
        },
      };
      signal?.addEventListener('abort', w.onAbort, { once: true });
      this.waiters.push(w);
    });
    this.serve();
    return p;
  }

  /** discard drops everything buffered and ends the stream (the process is being removed). */
  discard(): void {
    this.stopFlushTimer();
    this.chunks.length = 0;
    this.size = 0;
    this.end();
    this.maybeResume();
  }

  private serve(): void {
    while (this.waiters.length > 0) {
      const head = this.waiters[0]!;
      if (!this.answerable(head.maxLen)) {
        // Some bytes, but few: give the process a moment to write more (see coalesce).
        if (this.size > 0 && !this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), this.opts.coalesce!.ms);
        return;
      }
      const r = this.take(head.maxLen);
      if (!r) return;
      this.stopFlushTimer();
      this.flushDue = false;
      const w = this.waiters.shift()!;
      w.signal?.removeEventListener('abort', w.onAbort);
      w.resolve(r);
    }
  }

  /** answerable says whether a read of maxLen should be answered now rather than held back. */
  private answerable(maxLen: number): boolean {
    const c = this.opts.coalesce;
    if (!c || this.ended || this.flushDue) return true;
    return this.size >= Math.min(maxLen, c.bytes);
  }

  private flush(): void {
    this.flushTimer = null;
    this.flushDue = true;
    this.serve();
  }

  private stopFlushTimer(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }

  private take(maxLen: number): ReadResult | null {
    if (this.size === 0) return this.ended ? { data: Buffer.alloc(0), eof: true } : null;
    const parts: Buffer[] = [];
    let n = 0;
    while (n < maxLen && this.chunks.length > 0) {
      const c = this.chunks[0]!;
      const want = maxLen - n;
      if (c.length <= want) {
        parts.push(c);
        n += c.length;
        this.chunks.shift();
      } else {
        parts.push(c.subarray(0, want));
        this.chunks[0] = c.subarray(want);
        n += want;
      }
    }
    this.size -= n;
    this.maybeResume();
    return { data: parts.length === 1 ? parts[0]! : Buffer.concat(parts, n), eof: false };
  }

  private maybeResume(): void {
    // Resume at half the limit so a steady writer is not paused and resumed on every chunk.
    if (this.paused && this.size < this.limit / 2) {
      this.paused = false;
      this.opts.resume?.();
    }
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new HakoError(Code.CANCELLED, 'read cancelled');
}
