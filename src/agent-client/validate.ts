// Checks on everything hako-agent answers. The guest runs tenant code, so each reply is
// bounded and range-checked here before the host uses it; a bad reply is an INTERNAL error.

import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { Code, HakoError } from '../errors/index.js';

/** PID_MAX is Linux's largest possible pid (PID_MAX_LIMIT on 64-bit). */
export const PID_MAX = 4_194_304;
/** MAX_READ_LEN is the largest stdout/stderr chunk the host asks for (the agent caps at the same). */
export const MAX_READ_LEN = 1 << 20;
/** MAX_PIDS bounds ListProcesses. */
export const MAX_PIDS = 65_536;
/** MAX_SPEC_BYTES mirrors the agent's limit on spec, process and resources JSON. */
export const MAX_SPEC_BYTES = 2 << 20;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** invalidReply builds the error for a reply that breaks the agent protocol. */
export function invalidReply(method: string, why: string): HakoError {
  return new HakoError(Code.INTERNAL, `agent ${method}: invalid reply: ${why}`);
}

/** checkString requires a printable string of at most max characters. */
export function checkString(method: string, field: string, s: string, max: number): string {
  if (s.length > max) throw invalidReply(method, `${field} is ${s.length} characters, more than ${max}`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(s)) throw invalidReply(method, `${field} contains control characters`);
  return s;
}

/** checkPid requires a pid in 1..PID_MAX. */
export function checkPid(method: string, pid: number): number {
  if (!Number.isInteger(pid) || pid < 1 || pid > PID_MAX) throw invalidReply(method, `pid ${pid} is out of range`);
  return pid;
}

/** checkExitStatus requires an exit status in 0..255 (128+N for signal N). */
export function checkExitStatus(method: string, status: number): number {
  if (!Number.isInteger(status) || status < 0 || status > 255) throw invalidReply(method, `exit status ${status} is out of range`);
  return status;
}

/** checkTimestamp turns a protobuf Timestamp into a Date, requiring 1970..~6325 and valid nanos. */
export function checkTimestamp(method: string, field: string, ts: Timestamp | undefined): Date {
  if (ts === undefined) throw invalidReply(method, `${field} is missing`);
  if (ts.seconds < 0n || ts.seconds > 137_438_953_472n || ts.nanos < 0 || ts.nanos > 999_999_999) {
    throw invalidReply(method, `${field} is not a valid time`);
  }
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6));
}

/** checkRead requires a read answer within maxLen, and never empty unless at eof. */
export function checkRead(method: string, data: Uint8Array, eof: boolean, maxLen: number): { data: Uint8Array; eof: boolean } {
  if (data.length > maxLen) throw invalidReply(method, `${data.length} bytes returned for max_len ${maxLen}`);
  if (data.length === 0 && !eof) throw invalidReply(method, 'empty data without eof');
  return { data, eof };
}

/** checkWriteLen requires the written length to be at most what was sent. */
export function checkWriteLen(method: string, len: number, sent: number): number {
  if (!Number.isInteger(len) || len < 0 || len > sent) throw invalidReply(method, `wrote ${len} of ${sent} bytes`);
  return len;
}

/** checkPids requires at most MAX_PIDS valid pids. */
export function checkPids(method: string, pids: number[]): number[] {
  if (pids.length > MAX_PIDS) throw invalidReply(method, `${pids.length} pids, more than ${MAX_PIDS}`);
  for (const p of pids) checkPid(method, p);
  return pids;
}

/** checkContainerId requires a well-formed container id. */
export function checkContainerId(method: string, id: string): string {
  if (!ID_PATTERN.test(id)) throw invalidReply(method, `container id ${JSON.stringify(id.slice(0, 40))} is malformed`);
  return id;
}

/** checkBigRange requires a uint64 field to fit a safe number no larger than max, and converts it. */
export function checkBigRange(method: string, field: string, v: bigint, max: number): number {
  if (v < 0n || v > BigInt(max)) throw invalidReply(method, `${field} ${v} is out of range`);
  return Number(v);
}

/** encodeJson serializes a host-side object (or passes bytes through) within MAX_SPEC_BYTES. */
export function encodeJson(what: string, v: object | Uint8Array): Uint8Array {
  const bytes = v instanceof Uint8Array ? v : Buffer.from(JSON.stringify(v), 'utf8');
  if (bytes.length > MAX_SPEC_BYTES) throw new HakoError(Code.INVALID_ARGUMENT, `${what} is ${bytes.length} bytes, more than ${MAX_SPEC_BYTES}`);
  return bytes;
}
