// The agent's end of hako-guestctl, its co-process for clock, entropy, mount and netlink calls:
// one request line at a time over pipes, each with a timeout; the helper is restarted if it dies.

import { spawn, type ChildProcess } from 'node:child_process';
import { Code, HakoError } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';

/** GUESTCTL_PATH is where the image builder installs hako-guestctl. */
export const GUESTCTL_PATH = '/usr/bin/hako-guestctl';

/** MAX_REPLY_LINE bounds one line of the helper's answer (its data lines are under 200 characters). */
const MAX_REPLY_LINE = 4096;
/** MAX_DATA_LINES bounds the data lines of one answer (the helper's own dump limit). */
export const MAX_DATA_LINES = 4096;

interface Pending {
  line: string;
  resolve: (data: string[]) => void;
  reject: (err: HakoError) => void;
  timeoutMs: number;
}

/** GuestCtlError is a request the helper answered with "err ERRNO TEXT"; errno is ERRNO. */
export class GuestCtlError extends HakoError {
  constructor(readonly errno: number, message: string) {
    super(codeOfErrno(errno), message);
  }
}

/**
 * codeOfErrno maps the errno of an "err ERRNO TEXT" answer to a status code, so that the kernel's
 * refusals reach the host as what they are (ENODEV: NOT_FOUND, EEXIST: ALREADY_EXISTS, ...).
 */
export function codeOfErrno(errno: number): Code {
  switch (errno) {
    case 1: // EPERM
    case 13: // EACCES
      return Code.PERMISSION_DENIED;
    case 2: // ENOENT
    case 3: // ESRCH
    case 6: // ENXIO
    case 19: // ENODEV
      return Code.NOT_FOUND;
    case 17: // EEXIST
      return Code.ALREADY_EXISTS;
    case 22: // EINVAL
    case 34: // ERANGE
    case 97: // EAFNOSUPPORT
    case 99: // EADDRNOTAVAIL
      return Code.INVALID_ARGUMENT;
    case 16: // EBUSY
    case 100: // ENETDOWN
    case 101: // ENETUNREACH
    case 113: // EHOSTUNREACH
      return Code.FAILED_PRECONDITION;
    case 7: // E2BIG
    case 12: // ENOMEM
    case 105: // ENOBUFS
      return Code.RESOURCE_EXHAUSTED;
    case 4: // EINTR (a dump the kernel marked inconsistent)
    case 11: // EAGAIN (the kernel did not answer in time)
      return Code.UNAVAILABLE;
    default:
      return Code.UNKNOWN;
  }
}

/**
 * GuestCtl drives one hako-guestctl process. It is started once at agent start, so a VM restored
 * from a template already has it running: a request is a pipe round trip, not a fork and exec.
 */
export class GuestCtl {
  private child: ChildProcess | null = null;
  private readonly queue: Pending[] = [];
  private busy = false;
  private buf = '';
  private onLine: ((line: string) => void) | null = null;
  private onOverlong: (() => void) | null = null;

  constructor(private readonly path: string, private readonly log: Logger) {}

  /** start launches the helper now (it is also started on first use). */
  start(): void {
    this.ensure();
  }

  /** close ends the helper (its stdin closes); a later request starts a new one. */
  close(): void {
    const child = this.child;
    this.child = null;
    child?.stdin?.end();
  }

  /** setTime sets CLOCK_REALTIME to ms since the epoch (with microseconds). */
  setTime(sec: bigint, usec: bigint): Promise<void> {
    return this.request('time', [String(sec), String(usec * 1000n)]);
  }

  /** reseed credits data (host entropy) to the kernel RNG and reseeds it at once. */
  reseed(data: Uint8Array): Promise<void> {
    return this.request('reseed', [Buffer.from(data).toString('hex')]);
  }

  /** mount9p mounts the 9p export tag on target. tag and target must hold no spaces. */
  mount9p(tag: string, target: string, msize: number): Promise<void> {
    return this.request('mount9p', [tag, target, String(msize)], 30_000);
  }

  /** umount unmounts target. */
  umount(target: string): Promise<void> {
    return this.request('umount', [target], 30_000);
  }

  /**
   * call sends one request (op and its arguments, words without whitespace) and resolves with the
   * answer's data lines (none but for dumps) once the helper says "ok"; "err ERRNO TEXT" rejects
   * with the code of ERRNO. Requests are answered one at a time, in order.
   */
  call(op: string, args: string[] = [], timeoutMs = 10_000): Promise<string[]> {
    // One request is one line of space-separated words.
    if (args.some((a) => a === '' || /\s/.test(a))) return Promise.reject(new HakoError(Code.INVALID_ARGUMENT, `hako-guestctl ${op}: arguments must be non-empty words without whitespace`));
    const line = [op, ...args].join(' ');
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject, timeoutMs });
      void this.next();
    });
  }

  private async request(op: string, args: string[], timeoutMs = 10_000): Promise<void> {
    await this.call(op, args, timeoutMs);
  }

  private async next(): Promise<void> {
    if (this.busy) return;
    const p = this.queue.shift();
    if (p === undefined) return;
    this.busy = true;
    try {
      const { final, data } = await this.roundTrip(p.line, p.timeoutMs);
      if (final === 'ok') {
        p.resolve(data);
      } else {
        const errno = Number(/^err (\d+) /.exec(final)?.[1] ?? 0);
        p.reject(new GuestCtlError(errno, `hako-guestctl ${p.line.split(' ')[0]}: ${final.replace(/^err (\d+ )?/, '')}`));
      }
    } catch (err) {
      p.reject(HakoError.from(err));
    } finally {
      this.busy = false;
      void this.next();
    }
  }

  private roundTrip(line: string, timeoutMs: number): Promise<{ final: string; data: string[] }> {
    const op = line.split(' ')[0];
    const child = this.ensure();
    return new Promise((resolve, reject) => {
      const data: string[] = [];
      const fail = (err: HakoError): void => {
        clearTimeout(timer);
        this.onLine = null;
        this.onOverlong = null;
        // A helper that does not answer, or answers out of bounds, is replaced: the next request starts a new one.
        if (this.child === child) this.child = null;
        child.kill('SIGKILL');
        reject(err);
      };
      const timer = setTimeout(() => fail(new HakoError(Code.DEADLINE_EXCEEDED, `hako-guestctl ${op}: no answer within ${timeoutMs} ms`)), timeoutMs);
      this.onOverlong = () => fail(new HakoError(Code.INTERNAL, `hako-guestctl ${op}: an answer line is longer than ${MAX_REPLY_LINE} characters`));
      this.onLine = (reply) => {
        if (reply !== 'ok' && !reply.startsWith('err ')) {
          data.push(reply);
          if (data.length > MAX_DATA_LINES) fail(new HakoError(Code.INTERNAL, `hako-guestctl ${op}: more than ${MAX_DATA_LINES} answer lines`));
          return;
        }
        clearTimeout(timer);
        this.onLine = null;
        this.onOverlong = null;
        resolve({ final: reply, data });
      };
      child.stdin!.write(`${line}\n`);
    });
  }

  private ensure(): ChildProcess {
    if (this.child !== null) return this.child;
    const child = spawn(this.path, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    this.buf = '';
    child.stdin!.on('error', () => {});
    child.stdout!.on('data', (c: Buffer) => {
      if (this.child !== child) return;
      this.buf += c.toString('utf8');
      let start = 0;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n', start)) {
        const reply = this.buf.slice(start, nl);
        start = nl + 1;
        if (reply.length > MAX_REPLY_LINE) {
          this.buf = '';
          this.onOverlong?.();
          return;
        }
        this.onLine?.(reply);
        if (this.child !== child) return;
      }
      this.buf = this.buf.slice(start);
      if (this.buf.length > MAX_REPLY_LINE) {
        this.buf = '';
        this.onOverlong?.();
      }
    });
    const gone = (why: string): void => {
      if (this.child !== child) return;
      this.child = null;
      this.log.warn('hako-guestctl ended; it is restarted on the next request', { why });
      this.onLine?.(`err 5 the helper ended (${why})`);
    };
    child.on('error', (err) => gone(err.message));
    child.on('exit', (code, sig) => gone(`exit ${code ?? sig}`));
    return child;
  }
}
