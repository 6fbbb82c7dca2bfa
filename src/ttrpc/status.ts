// Conversion between hako's errors and the google.rpc.Status carried in ttRPC responses.
// The peer is not trusted: messages from the wire are bounded before they become errors.

import { Code, HakoError } from '../errors/index.js';
import type { StatusEnvelope } from './envelope.js';

const MAX_STATUS_MESSAGE = 4096;

/** statusFromError maps anything thrown by a handler to a wire status. */
export function statusFromError(err: unknown): StatusEnvelope {
  const e = HakoError.from(err);
  return { code: e.code, message: e.message };
}

/** errorFromStatus turns a non-OK wire status into a HakoError, bounding its message. */
export function errorFromStatus(status: StatusEnvelope | undefined, where: string): HakoError {
  if (status === undefined) return new HakoError(Code.INTERNAL, `${where}: response without status`);
  const raw = status.message.length > MAX_STATUS_MESSAGE ? status.message.slice(0, MAX_STATUS_MESSAGE) + '…' : status.message;
  const code = Number.isInteger(status.code) && status.code > 0 && status.code <= 16 ? (status.code as Code) : Code.UNKNOWN;
  return new HakoError(code, raw);
}
