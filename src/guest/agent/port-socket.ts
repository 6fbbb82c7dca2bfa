// The agent's end of the virtio-serial port, driven by the event loop: the port's fd is wrapped
// in a libuv pipe handle, so reads and writes need no thread-pool round trips (PortChannel's way).

import { closeSync, openSync, readSync } from 'node:fs';
import { Socket } from 'node:net';
import { Code, HakoError } from '../../errors/index.js';
import type { PortChannelOptions } from './port-channel.js';

/** PipeHandle is the part of Node's internal pipe_wrap.Pipe that is used here. */
interface PipeHandle {
  open(fd: number): number | undefined;
  close(): void;
}

interface PipeWrap {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
}

/**
 * pipeWrap returns Node's internal pipe binding, or null where this Node has none. net.Socket
 * refuses a character device fd (ERR_INVALID_FD_TYPE: libuv calls it a FILE), but a virtio port
 * supports poll and O_NONBLOCK, so uv_pipe_open serves it; Node offers no public way to do that.
 */
export function pipeWrap(): PipeWrap | null {
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding('pipe_wrap') as Partial<PipeWrap>;
    if (typeof binding.Pipe !== 'function' || typeof binding.constants?.SOCKET !== 'number') return null;
    return binding as PipeWrap;
  } catch {
    return null;
  }
}

/** REOPEN_FAST_MS and REOPEN_SLOW_MS pace reopening after the host went away (5 s fast, then slow). */
export const REOPEN_FAST_MS = 5;
export const REOPEN_SLOW_MS = 100;
const FAST_WINDOW_MS = 5_000;
// Opening the port failing this many times in a row is fatal (the device is gone).
const MAX_OPEN_FAILURES = 50;
// What is salvaged from a port before it is closed: more than one frame of the next host's
// first requests is not expected (a Check is a few dozen bytes).
const MAX_SALVAGE = 1 << 20;

/**
 * salvage reads what the guest already holds of a port that reported EOF: a host that connected
 * since then has written into it, and closing the fd would discard those bytes (virtio_console
 * drops a port's unread data on release). Non-blocking reads, bounded; errors end it.
 */
function salvage(fd: number): Buffer | null {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < MAX_SALVAGE) {
    const buf = Buffer.allocUnsafe(64 * 1024);
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch {
      break;
    }
    if (n <= 0) break;
    chunks.push(buf.subarray(0, n));
    total += n;
  }
  return total > 0 ? Buffer.concat(chunks) : null;
}

/**
 * PortSocketChannel serves one virtio port. Each open of the device is one ttRPC session (given to
 * onSession at once); the host disconnecting reads as EOF (virtio_console returns 0 then, and poll
 * says readable), which ends it, and the device is opened again. While no host is connected that
 * repeats every few ms, then every 100 ms. A session the server destroys (a corrupt frame) closes
 * the fd too: the guest drops unread port data on close, and the next bytes start a new session.
 */
export class PortSocketChannel {
  private sessions = 0;
  private stopped = false;
  private idleSince = 0;
  private failures = 0;
  private current: Socket | null = null;
  private fd = -1;
  private carried: Buffer | null = null;

  private constructor(private readonly path: string, private readonly binding: PipeWrap, private readonly opts: PortChannelOptions) {}

  /** open opens the port; it returns null (nothing opened) where Node has no pipe binding to drive it. */
  static open(path: string, opts: PortChannelOptions): PortSocketChannel | null {
    const binding = pipeWrap();
    if (!binding) return null;
    const ch = new PortSocketChannel(path, binding, opts);
    const sock = ch.socket();
    if (!sock) return null;
    ch.serve(sock);
    return ch;
  }

  /** close stops serving: the current session ends and the port is not opened again. */
  close(): void {
    this.stopped = true;
    this.current?.destroy();
    this.current = null;
  }

  /** sessionCount is how many host sessions have carried data. */
  get sessionCount(): number {
    return this.sessions;
  }

  /** socket opens the device as a net.Socket, or returns null (logged) when that fails. */
  private socket(): Socket | null {
    let fd: number;
    try {
      fd = openSync(this.path, 'r+');
    } catch (err) {
      this.opts.log.warn('opening the agent port failed', { path: this.path, err });
      return null;
    }
    this.fd = fd;
    const handle = new this.binding.Pipe(this.binding.constants.SOCKET);
    const rc = handle.open(fd);
    if (typeof rc === 'number' && rc < 0) {
      handle.close();
      closeSync(fd);
      this.opts.log.warn('the agent port cannot be driven by the event loop', { path: this.path, uvError: rc });
      return null;
    }
    // net.Socket takes a ready handle through this (undocumented) option, as its own server does.
    return new Socket({ handle, readable: true, writable: true } as unknown as ConstructorParameters<typeof Socket>[0]);
  }

  private serve(sock: Socket): void {
    this.failures = 0;
    this.current = sock;
    let id = 0;
    sock.once('data', () => {
      id = ++this.sessions;
      this.idleSince = 0;
      this.opts.log.info('host session started on the agent port', { session: id, io: 'event loop' });
    });
    sock.on('error', (err) => this.opts.log.debug('agent port error', { session: id, err }));
    const fd = this.fd;
    // EOF: the host went away. Whatever a new host wrote since then goes to the next session.
    // The fd is closed at once after the salvage: Node would otherwise shut the write side down
    // first and close a loop turn later, and bytes landing in between are dropped on close.
    sock.once('end', () => {
      this.carried = salvage(fd);
      sock.destroy();
    });
    sock.once('close', () => {
      if (this.current === sock) this.current = null;
      if (this.stopped) return;
      if (id !== 0) this.opts.log.info('host disconnected from the agent port', { session: id });
      if (this.idleSince === 0) this.idleSince = Date.now();
      const delay = Date.now() - this.idleSince < FAST_WINDOW_MS ? REOPEN_FAST_MS : REOPEN_SLOW_MS;
      setTimeout(() => this.reopen(), delay);
    });
    this.opts.onSession(sock);
    const carried = this.carried;
    this.carried = null;
    if (carried !== null) {
      this.opts.log.info('bytes the host sent while the agent port was reopened are carried into the new session', { bytes: carried.length });
      sock.unshift(carried);
    }
  }

  private reopen(): void {
    if (this.stopped) return;
    const sock = this.socket();
    if (sock) {
      this.serve(sock);
      return;
    }
    if (++this.failures >= MAX_OPEN_FAILURES) {
      this.stopped = true;
      this.opts.onFatal(new HakoError(Code.UNAVAILABLE, `the agent port ${this.path} could not be opened ${this.failures} times in a row`));
      return;
    }
    setTimeout(() => this.reopen(), REOPEN_SLOW_MS);
  }
}
