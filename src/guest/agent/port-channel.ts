// The agent's end of the virtio-serial port: one blocking fd read and written through
// libuv's pool, cut into ttRPC sessions, one per host connection (Node cannot poll the port).

import { open, read, readdir, readFile, write } from 'node:fs';
import { promisify } from 'node:util';
import { Duplex } from 'node:stream';
import { Code, HakoError } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';

const readAsync = promisify(read);
const writeAsync = promisify(write);
const openAsync = promisify(open);

/** AGENT_PORT_NAME is the virtserialport name the host gives the agent channel. */
export const AGENT_PORT_NAME = 'agent.channel.0';

const READ_SIZE = 256 * 1024;

/** findPort returns /dev/<vportNpM> of the named virtio-serial port, waiting up to timeoutMs for it to appear. */
export async function findPort(name: string, opts: { sysDir?: string; timeoutMs?: number } = {}): Promise<string> {
  const sysDir = opts.sysDir ?? '/sys/class/virtio-ports';
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    let entries: string[] = [];
    try {
      entries = await promisify(readdir)(sysDir);
    } catch {
      // the class directory appears with the first port
    }
    for (const e of entries) {
      try {
        const n = (await promisify(readFile)(`${sysDir}/${e}/name`, 'utf8')).trim();
        if (n === name) return `/dev/${e}`;
      } catch {
        // a port without a name
      }
    }
    if (Date.now() > deadline) throw new HakoError(Code.NOT_FOUND, `no virtio-serial port named ${name} under ${sysDir} (found: ${entries.join(', ') || 'none'})`);
    await sleep(50);
  }
}

/** PortChannelOptions configure a PortChannel. */
export interface PortChannelOptions {
  log: Logger;
  /** onSession is called with a fresh Duplex each time a host connection starts sending. */
  onSession: (stream: Duplex) => void;
  /** onFatal is called when the port fails for good (the agent should exit). */
  onFatal: (err: Error) => void;
}

/**
 * PortChannel drives one opened port. A read of 0 bytes means no host is connected
 * (virtio_console returns 0 then instead of blocking), so the current session ends
 * and reads are retried after a short sleep; the next bytes start a new session.
 * A session the ttRPC server destroys (corrupt frame) also ends, on the same fd.
 */
export class PortChannel {
  private session: Session | null = null;
  private sessions = 0;
  private readonly writes: Array<{ data: Buffer; session: Session; cb: (err?: Error | null) => void }> = [];
  private writing = false;
  private stopped = false;

  private constructor(private readonly fd: number, private readonly opts: PortChannelOptions) {}

  /** open opens the port device read-write (it can be opened only once) and starts reading. */
  static async open(path: string, opts: PortChannelOptions): Promise<PortChannel> {
    const fd = await openAsync(path, 'r+');
    const ch = new PortChannel(fd, opts);
    void ch.readLoop();
    return ch;
  }

  /** sessionCount is how many host sessions have started. */
  get sessionCount(): number {
    return this.sessions;
  }

  private async readLoop(): Promise<void> {
    let idleSince = 0;
    while (!this.stopped) {
      const buf = Buffer.allocUnsafe(READ_SIZE);
      let n: number;
      try {
        ({ bytesRead: n } = await readAsync(this.fd, buf, 0, buf.length, null));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EINTR' || code === 'EAGAIN') continue;
        this.stopped = true;
        this.opts.onFatal(HakoError.wrap(err, 'reading the agent port'));
        return;
      }
      if (n === 0) {
        if (this.session) {
          this.opts.log.info('host disconnected from the agent port', { session: this.session.id });
          this.endSession();
        }
        if (idleSince === 0) idleSince = Date.now();
        // Poll fast right after a disconnect (the host usually reconnects or is about to
        // connect during boot), then slowly, so an idle unconnected guest costs little.
        await sleep(Date.now() - idleSince < 5_000 ? 5 : 100);
        continue;
      }
      idleSince = 0;
      if (!this.session) this.startSession();
      this.session!.push(buf.subarray(0, n));
    }
  }

  private startSession(): void {
    const s = new Session(++this.sessions, this);
    this.session = s;
    this.opts.log.info('host session started on the agent port', { session: s.id });
    this.opts.onSession(s);
  }

  private endSession(): void {
    const s = this.session;
    this.session = null;
    if (s && !s.destroyed) s.destroy();
  }

  /** sessionDestroyed is called when the ttRPC side closes a session (e.g. a corrupt frame). */
  sessionDestroyed(s: Session): void {
    if (this.session === s) {
      this.opts.log.warn('agent port session closed by the server; the next bytes start a new session', { session: s.id });
      this.session = null;
    }
    for (let i = this.writes.length - 1; i >= 0; i--) {
      if (this.writes[i]!.session === s) this.writes.splice(i, 1)[0]!.cb(null);
    }
  }

  /** enqueue writes data for session s, one write at a time, in order. */
  enqueue(s: Session, data: Buffer, cb: (err?: Error | null) => void): void {
    this.writes.push({ data, session: s, cb });
    if (!this.writing) void this.writeLoop();
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    while (this.writes.length > 0) {
      const w = this.writes.shift()!;
      let off = 0;
      try {
        // A stale session's bytes must never reach the next host connection.
        while (off < w.data.length && this.session === w.session) {
          const { bytesWritten } = await writeAsync(this.fd, w.data, off, w.data.length - off, null);
          off += bytesWritten;
        }
        w.cb(null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        this.opts.log.warn('write to the agent port failed', { code, err });
        w.cb(err as Error);
        if (code === 'ENODEV') {
          this.stopped = true;
          this.opts.onFatal(HakoError.wrap(err, 'writing the agent port'));
        }
      }
    }
    this.writing = false;
  }
}

/** Session is one host connection's byte stream, as a Duplex for the ttRPC server. */
class Session extends Duplex {
  constructor(readonly id: number, private readonly channel: PortChannel) {
    super({ allowHalfOpen: false });
  }

  override _read(): void {
    // Data is pushed by the channel's read loop; the ttRPC server never stops reading.
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.channel.enqueue(this, chunk, cb);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.channel.sessionDestroyed(this);
    cb(err);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
