// Structured JSON-lines logger. Library code receives a Logger and derives children
// with fixed fields ({sandbox, container, subsystem}); nothing writes to console directly.

import { writeSync } from 'node:fs';

/** Level orders log severities. */
export type Level = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Fields are the structured key/values attached to a log line. */
export type Fields = Record<string, unknown>;

/** Sink receives finished lines; it must not throw. */
export interface Sink {
  write(line: string): void;
}

/** Logger writes one JSON object per line: {time, level, msg, ...fields}. */
export class Logger {
  constructor(
    private readonly sink: Sink,
    private readonly level: Level = 'info',
    private readonly fields: Fields = {},
  ) {}

  /** child returns a logger that adds fields to every line. */
  child(fields: Fields): Logger {
    return new Logger(this.sink, this.level, { ...this.fields, ...fields });
  }

  /** enabled reports whether lines at level are written. */
  enabled(level: Level): boolean {
    return LEVELS[level] >= LEVELS[this.level];
  }

  debug(msg: string, fields?: Fields): void { this.log('debug', msg, fields); }
  info(msg: string, fields?: Fields): void { this.log('info', msg, fields); }
  warn(msg: string, fields?: Fields): void { this.log('warn', msg, fields); }
  error(msg: string, fields?: Fields): void { this.log('error', msg, fields); }

  private log(level: Level, msg: string, fields?: Fields): void {
    if (!this.enabled(level)) return;
    const record: Fields = { time: new Date().toISOString(), level, msg, ...this.fields, ...fields };
    let line: string;
    try {
      line = JSON.stringify(record, replacer);
    } catch {
      line = JSON.stringify({ time: record.time, level, msg, note: 'unserializable fields' });
    }
    try {
      this.sink.write(line + '\n');
    } catch {
      // A broken sink (closed FIFO) must never take the caller down.
    }
  }
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const out: Fields = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (value.cause !== undefined) out.cause = value.cause instanceof Error ? value.cause.message : String(value.cause);
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** streamSink adapts a writable stream (process.stderr, an fs.WriteStream) into a Sink. */
export function streamSink(stream: { write(chunk: string): unknown }): Sink {
  return { write: (line) => void stream.write(line) };
}

/**
 * fdSink writes each line to a file descriptor with one synchronous write, dropping lines it
 * cannot write. It avoids process.stderr, whose first use builds a tty or pipe stream: the
 * guest agent logs to the console this way (that first use cost ~70 ms under TCG).
 */
export function fdSink(fd: number): Sink {
  return {
    write: (line) => {
      try {
        const buf = Buffer.from(line, 'utf8');
        // A blocking fd takes it all at once; a short write goes on from where it stopped.
        for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off);
      } catch {
        // the console is gone or full: a log line is not worth failing for
      }
    },
  };
}

/** memorySink keeps lines in an array; useful in tests. */
export function memorySink(): Sink & { lines: string[] } {
  const lines: string[] = [];
  return { lines, write: (line) => void lines.push(line) };
}

/** nullLogger discards everything. */
export const nullLogger = new Logger({ write: () => {} }, 'error');

/** parseLevel validates a level name, defaulting to info. */
export function parseLevel(name: string | undefined): Level {
  return name !== undefined && Object.hasOwn(LEVELS, name) ? (name as Level) : 'info';
}
