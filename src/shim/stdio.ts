// Host-side stdio of one process: containerd's FIFOs (or a logging binary, or a file)
// joined to the sandbox process's streams, with the writers closed once output drained.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as fsc, createWriteStream, mkdirSync, openSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Code, HakoError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { SandboxProcess } from './sandbox-port.js';
import { parseStdioTarget } from './stdio-uri.js';

/** StdioPaths are the strings containerd sends in Create and Exec. */
export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** BINARY_READY_TIMEOUT_MS bounds how long a logging binary may take to signal readiness. */
const BINARY_READY_TIMEOUT_MS = 10_000;
/** BINARY_TERM_TIMEOUT_MS is how long a logging binary gets after SIGTERM (as containerd's runc shim). */
const BINARY_TERM_TIMEOUT_MS = 12_000;

/** HostIO owns the host ends of one process's stdio. */
export class HostIO {
  private stdinReader: Socket | null = null;
  private readonly writers: Writable[] = [];
  private readonly keepFds: number[] = [];
  private binary: ChildProcess | null = null;
  private copies: Promise<unknown>[] = [];
  private closed = false;

  private constructor(private readonly paths: StdioPaths, private readonly log: Logger) {}

  /** open opens the host ends named by paths; `id` and `namespace` go to a logging binary. */
  static async open(paths: StdioPaths, opts: { id: string; namespace: string; log: Logger }): Promise<HostIO> {
    const io = new HostIO(paths, opts.log);
    try {
      await io.openAll(opts.id, opts.namespace);
    } catch (err) {
      await io.close();
      throw err;
    }
    return io;
  }

  private out: Writable | null = null;
  private err: Writable | null = null;

  private async openAll(id: string, namespace: string): Promise<void> {
    const p = this.paths;
    const out = parseStdioTarget(p.stdout, 'stdout');
    const errT = p.terminal ? { kind: 'none' as const } : parseStdioTarget(p.stderr, 'stderr');
    if (out.kind === 'binary' || errT.kind === 'binary') {
      const bin = out.kind === 'binary' ? out : errT.kind === 'binary' ? errT : null;
      const { stdout, stderr } = await this.startBinary(bin!.path, bin!.args, id, namespace);
      this.out = stdout;
      this.err = p.terminal ? null : stderr;
    } else if (out.kind === 'file') {
      mkdirSync(dirname(out.path), { recursive: true, mode: 0o755 });
      this.out = this.track(createWriteStream(out.path, { flags: 'a', mode: 0o644 }));
      if (!p.terminal) this.err = this.track(createWriteStream(out.path, { flags: 'a', mode: 0o644 }));
    } else {
      if (out.kind === 'path') this.out = this.openPathWriter(out.path, 'stdout');
      if (errT.kind === 'path') this.err = this.openPathWriter(errT.path, 'stderr');
      else if (errT.kind === 'file') throw new HakoError(Code.INVALID_ARGUMENT, 'stderr: file:// is only supported through stdout');
    }
    if (p.stdin !== '') this.stdinReader = this.openStdin(p.stdin);
  }

  /** attach starts copying between the host ends and the process's streams. */
  attach(proc: SandboxProcess): void {
    this.copies = [copy(proc.stdout, this.out, this.log, 'stdout')];
    if (proc.stderr) this.copies.push(copy(proc.stderr, this.err, this.log, 'stderr'));
    const r = this.stdinReader;
    const w = proc.stdin;
    if (r && w) {
      w.on('error', (e) => this.log.debug('stdio: process stdin error', { err: e }));
      r.pipe(w);
    } else if (w) {
      w.end();
    }
  }

  /** closeStdin stops reading the stdin FIFO and closes the process's stdin. */
  closeStdin(proc: SandboxProcess | null): void {
    const r = this.stdinReader;
    this.stdinReader = null;
    if (r) {
      if (proc?.stdin) r.unpipe(proc.stdin);
      r.destroy();
    }
    proc?.stdin?.end();
  }

  /** drained resolves once output was copied and the writers were flushed and closed, or after timeoutMs. */
  async drained(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (!(await within(Promise.allSettled(this.copies), timeoutMs))) this.log.warn('stdio: output not drained in time, closing', { timeoutMs });
    await this.closeWriters(Math.max(0, deadline - Date.now()));
  }

  /** close releases everything: FIFO handles, writers, and a logging binary (SIGTERM, then SIGKILL). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stdinReader?.destroy();
    this.stdinReader = null;
    await this.closeWriters(1_000);
    const child = this.binary;
    this.binary = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), BINARY_TERM_TIMEOUT_MS);
      await exited;
      clearTimeout(t);
    }
  }

  /** closeWriters ends every writer, waits up to timeoutMs for the flush, then destroys what is left. */
  private async closeWriters(timeoutMs: number): Promise<void> {
    const ws = this.writers.splice(0);
    for (const w of ws) if (!w.destroyed) w.end();
    await within(Promise.allSettled(ws.map((w) => finished(w))), timeoutMs);
    for (const w of ws) w.destroy();
    for (const fd of this.keepFds.splice(0)) {
      try { closeSync(fd); } catch { /* already closed */ }
    }
  }

  private track<W extends Writable>(w: W): W {
    w.on('error', (e) => this.log.debug('stdio: writer error', { err: e }));
    this.writers.push(w);
    return w;
  }

  /** openPathWriter opens a FIFO write-only plus a read handle keeping it open, or appends to a file. */
  private openPathWriter(path: string, field: string): Writable {
    let isFifo: boolean;
    try {
      isFifo = statSync(path).isFIFO();
    } catch (err) {
      throw HakoError.wrap(err, `${field}: ${path}`);
    }
    if (!isFifo) return this.track(createWriteStream(path, { flags: 'a' }));
    this.keepFds.push(openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK));
    const fd = openSync(path, fsc.O_WRONLY | fsc.O_NONBLOCK);
    return this.track(new Socket({ fd, readable: false, writable: true }));
  }

  /**
   * openStdin opens the stdin FIFO read-only and non-blocking. epoll reports nothing until
   * a writer appears, and EOF only after a writer came and went, so an early open is safe.
   */
  private openStdin(path: string): Socket {
    let fd: number;
    try {
      fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
    } catch (err) {
      throw HakoError.wrap(err, `stdin: ${path}`);
    }
    const s = new Socket({ fd, readable: true, writable: false });
    s.on('error', (e) => this.log.debug('stdio: stdin error', { err: e }));
    return s;
  }

  private async startBinary(path: string, args: string[], id: string, namespace: string): Promise<{ stdout: Writable; stderr: Writable }> {
    // fds 3 and 4 carry stdout and stderr; the binary closes fd 5 when it is ready.
    const child = spawn(path, args, {
      stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
      env: { CONTAINER_ID: id, CONTAINER_NAMESPACE: namespace },
    });
    this.binary = child;
    const ready = (child.stdio as unknown as Readable[])[5]!;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => done(new HakoError(Code.DEADLINE_EXCEEDED, `logging binary ${path} not ready within ${BINARY_READY_TIMEOUT_MS} ms`)), BINARY_READY_TIMEOUT_MS);
      const done = (err?: unknown) => {
        clearTimeout(t);
        ready.removeAllListeners();
        child.removeListener('error', onErr);
        ready.on('error', () => {});
        if (err) reject(err);
        else resolve();
      };
      const onErr = (e: Error) => done(HakoError.wrap(e, `logging binary ${path}`));
      child.once('error', onErr);
      ready.on('data', () => done());
      ready.on('end', () => done());
      ready.on('close', () => done());
      ready.on('error', () => done());
    });
    ready.destroy();
    child.on('exit', (code, sig) => this.log.debug('stdio: logging binary exited', { code, sig }));
    return { stdout: this.track(child.stdio[3] as Writable), stderr: this.track(child.stdio[4] as Writable) };
  }
}

/** within resolves true when p settles within ms, false otherwise. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<false>((r) => { timer = setTimeout(() => r(false), ms); });
  const res = await Promise.race([p.then(() => true as const), t]);
  clearTimeout(timer);
  return res;
}

/** copy pumps src into dst (or discards it when dst is null) and settles at src's end. */
async function copy(src: Readable, dst: Writable | null, log: Logger, name: string): Promise<void> {
  if (!dst) {
    src.resume();
    await finished(src).catch(() => {});
    return;
  }
  src.pipe(dst, { end: false });
  try {
    await finished(src);
  } catch (err) {
    log.debug('stdio: source ended with error', { name, err });
  }
  src.unpipe(dst);
  // Wait for what was written to leave our buffer before the writer is ended.
  if (dst.writableNeedDrain) await new Promise((r) => { dst.once('drain', r); dst.once('close', r); });
}
