// QMP on the wire: newline-delimited JSON objects, split with a bounded buffer and sorted into
// greeting, command reply and event. Pure logic; the client in qmp.ts owns the socket.

import { Code, errorf } from '../../errors/index.js';

/** DEFAULT_MAX_LINE_BYTES bounds one QMP message; query-qmp-schema, the largest reply, is well under 1 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 4 << 20;

/** LineSplitter cuts a byte stream into lines, refusing any line longer than maxBytes. */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxBytes: number) {}

  /** push adds a chunk and returns the complete lines (without `\r\n`); throws RESOURCE_EXHAUSTED on an overlong line. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      this.check(this.size + piece.length);
      const line = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece]);
      this.parts = [];
      this.size = 0;
      start = nl + 1;
      const text = line.toString('utf8').replace(/\r$/, '');
      if (text.trim().length > 0) lines.push(text);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.check(this.size + rest.length);
      this.parts.push(Buffer.from(rest));
      this.size += rest.length;
    }
    return lines;
  }

  private check(size: number): void {
    if (size > this.maxBytes) throw errorf(Code.RESOURCE_EXHAUSTED, `QMP message longer than ${this.maxBytes} bytes`);
  }
}

/** QmpVersion is QEMU's version from the greeting. */
export interface QmpVersion {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

/** QmpGreeting is the first message QEMU sends on a QMP connection. */
export interface QmpGreeting {
  version: QmpVersion;
  capabilities: string[];
}

/** QmpErrorDetail is QMP's error object: a class such as `GenericError` or `CommandNotFound`, and a description. */
export interface QmpErrorDetail {
  class: string;
  desc: string;
}

/** QmpEvent is an asynchronous QMP event. */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  /** timestampMs is the event's timestamp in ms since the epoch. */
  timestampMs: number;
}

/** QmpMessage is one parsed QMP line. */
export type QmpMessage =
  | { type: 'greeting'; greeting: QmpGreeting }
  | { type: 'return'; id: unknown; value: unknown }
  | { type: 'error'; id: unknown; error: QmpErrorDetail }
  | { type: 'event'; event: QmpEvent };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** parseQmpLine classifies one line; it throws INTERNAL for anything that is not a QMP message. */
export function parseQmpLine(line: string): QmpMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    throw errorf(Code.INTERNAL, `QMP sent a line that is not JSON: ${truncate(line)}`);
  }
  if (!isObject(msg)) throw errorf(Code.INTERNAL, `QMP sent a non-object: ${truncate(line)}`);
  if ('return' in msg) return { type: 'return', id: msg.id, value: msg.return };
  if ('error' in msg) {
    const e = isObject(msg.error) ? msg.error : {};
    const cls = typeof e.class === 'string' ? e.class : 'GenericError';
    const desc = typeof e.desc === 'string' ? e.desc : 'no description';
    return { type: 'error', id: msg.id, error: { class: cls, desc } };
  }
  if (typeof msg.event === 'string') {
    const ts = isObject(msg.timestamp) ? msg.timestamp : {};
    const secs = typeof ts.seconds === 'number' ? ts.seconds : 0;
    const usecs = typeof ts.microseconds === 'number' ? ts.microseconds : 0;
    return {
      type: 'event',
      event: { event: msg.event, data: isObject(msg.data) ? msg.data : {}, timestampMs: secs * 1000 + Math.floor(usecs / 1000) },
    };
  }
  if (isObject(msg.QMP)) {
    const q = msg.QMP;
    const v = isObject(q.version) ? q.version : {};
    const qemu = isObject(v.qemu) ? v.qemu : {};
    const num = (x: unknown): number => (typeof x === 'number' ? x : 0);
    return {
      type: 'greeting',
      greeting: {
        version: { qemu: { major: num(qemu.major), minor: num(qemu.minor), micro: num(qemu.micro) }, package: typeof v.package === 'string' ? v.package : '' },
        capabilities: Array.isArray(q.capabilities) ? q.capabilities.filter((c): c is string => typeof c === 'string') : [],
      },
    };
  }
  throw errorf(Code.INTERNAL, `QMP sent an unknown message: ${truncate(line)}`);
}

/** qmpErrorCode maps a QMP error class to a status code. */
export function qmpErrorCode(cls: string): Code {
  switch (cls) {
    case 'CommandNotFound':
      return Code.UNIMPLEMENTED;
    case 'DeviceNotFound':
      return Code.NOT_FOUND;
    case 'DeviceNotActive':
    case 'KVMMissingCap':
      return Code.FAILED_PRECONDITION;
    default:
      return Code.UNKNOWN;
  }
}

function truncate(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}
