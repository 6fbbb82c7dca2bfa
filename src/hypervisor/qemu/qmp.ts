// QMP client over a unix socket: greeting, capabilities negotiation, commands matched by id
// with a timeout and AbortSignal each, and asynchronous events delivered to listeners.

import { connect, type Socket } from 'node:net';
import { Code, HakoError, errorf } from '../../errors/index.js';
import { nullLogger, type Logger } from '../../log/index.js';
import { raceDeadline } from '../deadline.js';
import {
  DEFAULT_MAX_LINE_BYTES,
  LineSplitter,
  parseQmpLine,
  qmpErrorCode,
  type QmpErrorDetail,
  type QmpEvent,
  type QmpGreeting,
} from './qmp-wire.js';

/** DEFAULT_QMP_TIMEOUT_MS bounds a QMP command that was given no timeout. */
export const DEFAULT_QMP_TIMEOUT_MS = 10_000;

/** QmpConnectOptions bounds the connection and handshake. */
export interface QmpConnectOptions {
  signal?: AbortSignal;
  /** timeoutMs bounds connect + greeting + qmp_capabilities (default 5000). */
  timeoutMs?: number;
  /** maxLineBytes bounds one incoming message (default 4 MiB). */
  maxLineBytes?: number;
  log?: Logger;
}

/** QmpCallOptions bounds one command. */
export interface QmpCallOptions {
  signal?: AbortSignal;
  /** timeoutMs defaults to DEFAULT_QMP_TIMEOUT_MS. A timed-out command may still run in QEMU. */
  timeoutMs?: number;
}

/** QmpErrorInfo is the `cause` of a HakoError made from a QMP error reply. */
export class QmpErrorInfo implements QmpErrorDetail {
  readonly class: string;
  constructor(
    cls: string,
    readonly desc: string,
  ) {
    this.class = cls;
  }
  toString(): string {
    return `${this.class}: ${this.desc}`;
  }
}

/** qmpErrorOf finds the QMP error (class and desc) behind err, following `cause`; undefined if there is none. */
export function qmpErrorOf(err: unknown): QmpErrorDetail | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e instanceof QmpErrorInfo) return { class: e.class, desc: e.desc };
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** QmpClient is one QMP connection, ready for commands once connect() resolves. */
export class QmpClient {
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(ev: QmpEvent) => void>();
  private readonly splitter: LineSplitter;
  private nextId = 1;
  private closeError: HakoError | undefined;
  private greetingWaiter: { resolve: (g: QmpGreeting) => void; reject: (e: unknown) => void } | undefined;
  private resolveClosed!: () => void;

  /** closed resolves when the connection has ended, for whatever reason. */
  readonly closed: Promise<void> = new Promise((resolve) => (this.resolveClosed = resolve));
  /** greeting is QEMU's greeting; set once connect() has resolved. */
  greeting: QmpGreeting = { version: { qemu: { major: 0, minor: 0, micro: 0 }, package: '' }, capabilities: [] };

  private constructor(
    private readonly socket: Socket,
    maxLineBytes: number,
    private readonly log: Logger,
  ) {
    this.splitter = new LineSplitter(maxLineBytes);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.shutdown(HakoError.wrap(err, 'QMP connection failed')));
    socket.on('close', () => this.shutdown(errorf(Code.UNAVAILABLE, 'QMP connection closed')));
  }

  /** connect opens the QMP socket at path, reads the greeting and negotiates capabilities. */
  static async connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const socket = connect({ path });
    return QmpClient.handshake(socket, opts);
  }

  /** handshake runs the QMP handshake over an already-created socket (it may still be connecting). */
  static async handshake(socket: Socket, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const client = new QmpClient(socket, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, opts.log ?? nullLogger);
    const ready = (async () => {
      const greeting = await new Promise<QmpGreeting>((resolve, reject) => {
        if (client.closeError !== undefined) reject(client.closeError);
        else client.greetingWaiter = { resolve, reject };
      });
      client.greeting = greeting;
      await client.execute('qmp_capabilities', undefined, { timeoutMs: Number.POSITIVE_INFINITY });
      return client;
    })();
    try {
      return await raceDeadline(ready, 'QMP handshake', {
        signal: opts.signal,
        timeoutMs: opts.timeoutMs ?? 5000,
        onGiveUp: () => client.close(),
      });
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** execute runs one command and resolves with its `return` value; a QMP error rejects with its class in the cause (see qmpErrorOf). */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: QmpCallOptions = {}): Promise<T> {
    if (this.closeError !== undefined) {
      return Promise.reject(new HakoError(this.closeError.code, `QMP ${command}: ${this.closeError.message}`, { cause: this.closeError }));
    }
    const id = this.nextId++;
    const reply = new Promise<unknown>((resolve, reject) => this.pending.set(id, { command, resolve, reject }));
    const msg: Record<string, unknown> = { execute: command, id };
    if (args !== undefined) msg.arguments = args;
    this.log.debug('qmp send', { command, id });
    this.socket.write(JSON.stringify(msg) + '\n');
    return raceDeadline(reply, `QMP ${command}`, {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? DEFAULT_QMP_TIMEOUT_MS,
      // A late reply to an abandoned id is dropped by onMessage.
      onGiveUp: () => this.pending.delete(id),
    }) as Promise<T>;
  }

  /** onEvent calls listener for every QMP event until the returned function is called. */
  onEvent(listener: (ev: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** waitForEvent resolves with the next event called name (and matching filter), bounded by timeout and signal. */
  waitForEvent(name: string, opts: QmpCallOptions & { filter?: (ev: QmpEvent) => boolean } = {}): Promise<QmpEvent> {
    let off = (): void => {};
    const p = new Promise<QmpEvent>((resolve, reject) => {
      if (this.closeError !== undefined) return reject(this.closeError);
      const stopListening = this.onEvent((ev) => {
        if (ev.event === name && (opts.filter === undefined || opts.filter(ev))) {
          off();
          resolve(ev);
        }
      });
      const onClosed = (): void => {
        off();
        reject(this.closeError ?? errorf(Code.UNAVAILABLE, 'QMP connection closed'));
      };
      void this.closed.then(onClosed);
      off = stopListening;
    });
    return raceDeadline(p, `waiting for QMP event ${name}`, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? DEFAULT_QMP_TIMEOUT_MS, onGiveUp: () => off() });
  }

  /** isClosed reports whether the connection has ended. */
  get isClosed(): boolean {
    return this.closeError !== undefined;
  }

  /** close ends the connection; pending commands fail with UNAVAILABLE. */
  close(): void {
    this.shutdown(errorf(Code.UNAVAILABLE, 'QMP connection closed by the client'));
  }

  private onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.splitter.push(chunk);
    } catch (err) {
      this.shutdown(HakoError.from(err));
      return;
    }
    for (const line of lines) {
      if (this.closeError !== undefined) return;
      try {
        this.onMessage(line);
      } catch (err) {
        this.shutdown(HakoError.from(err));
      }
    }
  }

  private onMessage(line: string): void {
    const msg = parseQmpLine(line);
    switch (msg.type) {
      case 'greeting': {
        const w = this.greetingWaiter;
        this.greetingWaiter = undefined;
        if (w !== undefined) w.resolve(msg.greeting);
        else this.log.warn('unexpected second QMP greeting');
        return;
      }
      case 'event':
        this.log.debug('qmp event', { event: msg.event.event });
        for (const l of [...this.listeners]) {
          try {
            l(msg.event);
          } catch (err) {
            this.log.error('QMP event listener threw', { event: msg.event.event, err });
          }
        }
        return;
      case 'return':
      case 'error': {
        const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
        if (p === undefined) {
          this.log.debug('QMP reply for no pending command', { id: msg.id });
          return;
        }
        this.pending.delete(msg.id as number);
        if (msg.type === 'return') p.resolve(msg.value);
        else {
          const info = new QmpErrorInfo(msg.error.class, msg.error.desc);
          p.reject(new HakoError(qmpErrorCode(info.class), `QMP ${p.command}: ${info.class}: ${info.desc}`, { cause: info }));
        }
        return;
      }
    }
  }

  private shutdown(err: HakoError): void {
    if (this.closeError !== undefined) return;
    this.closeError = err;
    this.socket.destroy();
    this.greetingWaiter?.reject(err);
    this.greetingWaiter = undefined;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new HakoError(err.code, `QMP ${p.command}: ${err.message}`, { cause: err }));
    }
    this.listeners.clear();
    this.resolveClosed();
  }
}
