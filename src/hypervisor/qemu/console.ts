// The host end of the guest's serial console: QEMU serves ttyS0 on a unix socket and we copy it
// into the console log with a hard size cap, so an untrusted guest cannot fill host memory (/run).

import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { Code, HakoError, errorf } from '../../errors/index.js';
import { nullLogger, type Logger } from '../../log/index.js';
import { raceDeadline } from '../deadline.js';

/**
 * CONSOLE_LOG_MAX_BYTES caps the guest output kept in a console log (4 MiB). A booting guest
 * writes tens of KiB; the cap leaves room for debug output while bounding what a hostile guest
 * can store in the host's tmpfs.
 */
export const CONSOLE_LOG_MAX_BYTES = 4 * 1024 * 1024;

/** truncationLine is the line the console log ends with once the guest wrote more than maxBytes. */
export function truncationLine(maxBytes: number): string {
  return `[hako: console output truncated at ${maxBytes} bytes]\n`;
}

/**
 * CappedLogWriter appends chunks to a file until maxBytes of them are written, then writes one
 * truncation line and discards everything after. write() never waits and never refuses a chunk,
 * so a reader feeding it never pushes back on the guest; what it holds in memory stays below maxBytes.
 */
export class CappedLogWriter {
  /** written is how many guest bytes went to the file (the truncation line not counted). */
  written = 0;
  /** discarded is how many guest bytes were dropped after the cap. */
  discarded = 0;
  private truncated = false;
  private lastByte = 0x0a;
  private chain: Promise<void> = Promise.resolve();
  private failed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly fh: FileHandle,
    readonly maxBytes: number,
    private readonly log: Logger,
  ) {}

  /**
   * open creates (or truncates) path with mode 0600, refusing to follow a symlink there. With
   * append, what the file holds is kept and counts against the cap (a VM adopted mid-life).
   */
  static async open(path: string, maxBytes: number, log: Logger = nullLogger, append = false): Promise<CappedLogWriter> {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw errorf(Code.INVALID_ARGUMENT, `console log cap ${maxBytes} must be a non-negative integer`);
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (append ? constants.O_APPEND : constants.O_TRUNC);
    try {
      const fh = await open(path, flags, 0o600);
      const w = new CappedLogWriter(fh, maxBytes, log);
      if (append) w.written = Math.min(maxBytes, (await fh.stat()).size);
      return w;
    } catch (err) {
      throw HakoError.wrap(err, `open console log ${path}`);
    }
  }

  /** write takes one chunk of guest output; bytes past the cap are counted and dropped. */
  write(chunk: Uint8Array): void {
    if (this.closing !== undefined || chunk.length === 0) return;
    if (this.truncated) {
      this.discarded += chunk.length;
      return;
    }
    const room = this.maxBytes - this.written;
    const keep = chunk.length <= room ? chunk : chunk.subarray(0, room);
    if (keep.length > 0) {
      this.written += keep.length;
      this.lastByte = keep[keep.length - 1]!;
      // Copy: the caller may reuse its buffer before the queued write runs.
      this.enqueue(Buffer.from(keep));
    }
    if (keep.length < chunk.length) {
      this.truncated = true;
      this.discarded += chunk.length - keep.length;
      const sep = this.lastByte === 0x0a ? '' : '\n';
      this.enqueue(Buffer.from(sep + truncationLine(this.maxBytes)));
      this.log.warn('guest console output truncated', { maxBytes: this.maxBytes });
    }
  }

  private enqueue(buf: Buffer): void {
    this.chain = this.chain.then(async () => {
      if (this.failed) return;
      try {
        await this.fh.write(buf);
      } catch (err) {
        // A full or broken disk: stop writing, keep discarding, say so once.
        this.failed = true;
        this.log.warn('cannot write the console log; dropping guest output', { err });
      }
    });
  }

  /** close waits for queued writes and closes the file; later writes are ignored. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.chain.then(() => this.fh.close()).catch(() => {});
    return this.closing;
  }
}

/** ConsoleReaderOptions configures attachConsole. */
export interface ConsoleReaderOptions {
  /** maxBytes caps the log (default CONSOLE_LOG_MAX_BYTES). */
  maxBytes?: number;
  signal?: AbortSignal;
  /** timeoutMs bounds the connect (default 2000). */
  timeoutMs?: number;
  log?: Logger;
  /** append keeps what the log holds (a VM adopted from another process) instead of truncating it. */
  append?: boolean;
}

/**
 * ConsoleReader reads QEMU's console socket into a capped log until QEMU closes the socket
 * (it exits) or close() is called. There is no reconnect: one reader per VM start.
 */
export class ConsoleReader {
  /** ended settles (never rejects) once the socket is gone and every kept byte is in the file. */
  readonly ended: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    private readonly writer: CappedLogWriter,
  ) {
    // Flowing mode with no pause: the guest is never held back by us.
    socket.on('data', (chunk: Buffer) => writer.write(chunk));
    this.ended = new Promise<void>((resolve) => socket.once('close', () => resolve())).then(() => writer.close());
  }

  /** attach connects to socketPath and starts copying into logPath (created 0600, truncated unless append). */
  static async attach(socketPath: string, logPath: string, opts: ConsoleReaderOptions = {}): Promise<ConsoleReader> {
    const log = opts.log ?? nullLogger;
    const writer = await CappedLogWriter.open(logPath, opts.maxBytes ?? CONSOLE_LOG_MAX_BYTES, log, opts.append === true);
    const socket = connect(socketPath);
    const connected = new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    try {
      await raceDeadline(connected, `connect console socket ${socketPath}`, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 2000 });
    } catch (err) {
      socket.destroy();
      await writer.close();
      throw HakoError.wrap(err, 'attach guest console');
    }
    // Errors after the connect only end the copy; 'close' follows them.
    socket.on('error', (err) => log.debug('console socket error', { err }));
    return new ConsoleReader(socket, writer);
  }

  /** written is how many guest bytes are in the log so far (queued writes included). */
  get written(): number {
    return this.writer.written;
  }

  /** close drops the connection now and resolves once the log file is closed. Idempotent. */
  close(): Promise<void> {
    this.socket.destroy();
    return this.ended;
  }
}
