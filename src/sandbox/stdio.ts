// Process stdio over the agent: an output pump turns ReadStdout/ReadStderr long polls into a
// Readable (with backpressure), and stdin becomes a Writable over WriteStdin/CloseStdin.

import { Readable, Writable } from 'node:stream';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';

/** READ_CHUNK is the largest chunk asked of the agent per read (well under the 4 MiB frame limit). */
export const READ_CHUNK = 256 * 1024;
const WRITE_CHUNK = 256 * 1024;
// Output buffered on the host before the pump stops asking the guest for more.
const OUTPUT_HIGH_WATER = 1024 * 1024;

/** ReadFn fetches the next output chunk (a long poll). */
export type ReadFn = (maxLen: number) => Promise<{ data: Uint8Array; eof: boolean }>;

/**
 * OutputPump moves one output stream of a guest process into a Readable. It reads ahead up
 * to OUTPUT_HIGH_WATER bytes, then waits for the consumer; a destroyed stream is drained
 * and discarded so the guest process never blocks on it.
 */
export class OutputPump {
  readonly stream: Readable;
  /** drained settles when the guest said EOF (or the pump stopped) and everything was pushed. */
  readonly drained: Promise<void>;
  private resolveDrained!: () => void;
  private wanted = true;
  private demand: (() => void) | null = null;
  private stopped = false;
  private running = false;

  constructor(private readonly what: string, private readonly fetch: ReadFn, private readonly log: Logger) {
    this.drained = new Promise((r) => (this.resolveDrained = r));
    this.stream = new Readable({
      highWaterMark: OUTPUT_HIGH_WATER,
      read: () => this.wake(),
    });
    this.stream.once('close', () => this.wake());
  }

  /** start begins pumping (once the process runs). */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    void this.loop();
  }

  /** stop ends the stream now (the process or the VM is gone). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.wake();
    if (!this.running) this.finish();
  }

  private wake(): void {
    this.wanted = true;
    const d = this.demand;
    this.demand = null;
    d?.();
  }

  private finish(): void {
    if (!this.stream.destroyed && !this.stream.readableEnded) this.stream.push(null);
    this.resolveDrained();
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopped) {
        const discarding = this.stream.destroyed;
        if (!this.wanted && !discarding) {
          await new Promise<void>((r) => (this.demand = r));
          continue;
        }
        const { data, eof } = await this.fetch(READ_CHUNK);
        if (data.length > READ_CHUNK) throw errorf(Code.INTERNAL, `${this.what}: agent returned ${data.length} bytes for a ${READ_CHUNK}-byte read`);
        if (data.length > 0 && !this.stream.destroyed) this.wanted = this.stream.push(Buffer.from(data));
        if (eof) break;
      }
    } catch (err) {
      if (!this.stopped) this.log.debug('output pump ended with an error', { stream: this.what, err: HakoError.from(err) });
    } finally {
      this.finish();
    }
  }
}

/** StdinSink is what the stdin Writable needs from its process. */
export interface StdinSink {
  /** ready settles when the process has started (rejects if it never will). */
  ready(): Promise<void>;
  write(data: Uint8Array): Promise<number>;
  close(): Promise<void>;
  /** gone reports whether writing is pointless (process exited, VM gone). */
  gone(): boolean;
}

/** stdinWritable returns a Writable that forwards to a guest process's stdin. */
export function stdinWritable(what: string, sink: StdinSink, log: Logger): Writable {
  const w = new Writable({
    highWaterMark: WRITE_CHUNK,
    write(chunk: Buffer, _enc, cb) {
      writeAll(chunk).then(() => cb(), (err) => cb(sink.gone() ? undefined : HakoError.from(err)));
    },
    final(cb) {
      sink.ready().then(() => sink.close()).then(() => cb(), () => cb());
    },
  });
  // An exited process or a dead VM makes writes fail; that must never crash the owner.
  w.on('error', (err) => log.debug('stdin write failed', { stream: what, err }));
  async function writeAll(chunk: Buffer): Promise<void> {
    await sink.ready();
    let off = 0;
    let idle = 0;
    while (off < chunk.length) {
      if (sink.gone()) return;
      const piece = chunk.subarray(off, off + WRITE_CHUNK);
      const n = await sink.write(piece);
      if (!Number.isInteger(n) || n < 0 || n > piece.length) throw errorf(Code.INTERNAL, `${what}: agent accepted ${n} of ${piece.length} bytes`);
      off += n;
      // The agent answers 0 when the pipe is full: back off briefly instead of spinning.
      idle = n === 0 ? Math.min(idle * 2 + 5, 200) : 0;
      if (idle > 0) await new Promise((r) => setTimeout(r, idle));
    }
  }
  return w;
}
