// The agent's end of hako-guestctl, its co-process for clock, entropy and mount system calls:
// one request line at a time over pipes, each with a timeout; the helper is restarted if it dies.

import { spawn, type ChildProcess } from 'node:child_process';
import { Code, HakoError } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';

/** GUESTCTL_PATH is where the image builder installs hako-guestctl. */
export const GUESTCTL_PATH = '/usr/bin/hako-guestctl';

const MAX_REPLY = 4096;

interface Pending {
  line: string;
  resolve: () => void;
  reject: (err: HakoError) => void;
  timeoutMs: number;
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

  private request(op: string, args: string[], timeoutMs = 10_000): Promise<void> {
    // One request is one line of space-separated words.
    if (args.some((a) => a === '' || /\s/.test(a))) return Promise.reject(new HakoError(Code.INVALID_ARGUMENT, `hako-guestctl ${op}: arguments must be non-empty words without whitespace`));
    const line = [op, ...args].join(' ');
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject, timeoutMs });
      void this.next();
    });
  }

  private async next(): Promise<void> {
    if (this.busy) return;
    const p = this.queue.shift();
    if (p === undefined) return;
    this.busy = true;
    try {
      const reply = await this.roundTrip(p.line, p.timeoutMs);
      if (reply === 'ok') p.resolve();
      else p.reject(new HakoError(reply.startsWith('err 1 ') ? Code.PERMISSION_DENIED : Code.UNKNOWN, `hako-guestctl ${p.line.split(' ')[0]}: ${reply.replace(/^err \d+ /, '')}`));
    } catch (err) {
      p.reject(HakoError.from(err));
    } finally {
      this.busy = false;
      void this.next();
    }
  }

  private roundTrip(line: string, timeoutMs: number): Promise<string> {
    const child = this.ensure();
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.onLine = null;
        // A helper that does not answer is replaced: the next request starts a new one.
        child.kill('SIGKILL');
        reject(new HakoError(Code.DEADLINE_EXCEEDED, `hako-guestctl ${line.split(' ')[0]}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.onLine = (reply) => {
        clearTimeout(timer);
        this.onLine = null;
        resolve(reply);
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
      this.buf += c.toString('utf8');
      if (this.buf.length > MAX_REPLY) this.buf = this.buf.slice(-MAX_REPLY);
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const reply = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.onLine?.(reply);
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
