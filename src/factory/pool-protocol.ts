// The warm pool's wire format: one JSON object per line over a unix socket, each side bounded
// and checked. `take` moves a ready VM's directory to the caller; `status` describes the pool.

import { Code, errorf } from '../errors/index.js';

/** MAX_POOL_LINE bounds one message either way. */
export const MAX_POOL_LINE = 64 * 1024;

/** TakeRequest asks for a warm VM of template key, to be moved to vmDir (which must not exist). */
export interface TakeRequest {
  op: 'take';
  key: string;
  vmDir: string;
}

/** StatusRequest asks how the pool stands. */
export interface StatusRequest {
  op: 'status';
}

/** PoolRequest is any request. */
export type PoolRequest = TakeRequest | StatusRequest;

/** TakeReply says whether a VM was handed over; when it was, vmDir now holds it. */
export type TakeReply =
  | { ok: true; pid: number; vmId: string; warmMs: number }
  | { ok: false; reason: 'empty' | 'other-key' | 'refused'; detail: string };

/** PoolStatus is the pool's state. */
export interface PoolStatus {
  ok: true;
  pid: number;
  key: string;
  size: number;
  ready: number;
  starting: number;
  handedOut: number;
}

const KEY = /^[0-9a-f]{64}$/;

/** encodeLine serializes one message. */
export function encodeLine(msg: object): string {
  const line = JSON.stringify(msg);
  if (line.length > MAX_POOL_LINE) throw errorf(Code.RESOURCE_EXHAUSTED, `pool message of ${line.length} bytes`);
  return `${line}\n`;
}

function parseObject(line: string, what: string): Record<string, unknown> {
  if (line.length > MAX_POOL_LINE) throw errorf(Code.RESOURCE_EXHAUSTED, `${what} of ${line.length} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw errorf(Code.INVALID_ARGUMENT, `${what} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw errorf(Code.INVALID_ARGUMENT, `${what} is not an object`);
  return v as Record<string, unknown>;
}

/** parseRequest checks a request line (the daemon's side). */
export function parseRequest(line: string): PoolRequest {
  const o = parseObject(line, 'pool request');
  if (o.op === 'status') return { op: 'status' };
  if (o.op !== 'take') throw errorf(Code.INVALID_ARGUMENT, `unknown pool op ${JSON.stringify(o.op)}`);
  if (typeof o.key !== 'string' || !KEY.test(o.key)) throw errorf(Code.INVALID_ARGUMENT, 'take: key must be a sha256');
  if (typeof o.vmDir !== 'string' || !o.vmDir.startsWith('/') || o.vmDir.length > 4096) throw errorf(Code.INVALID_ARGUMENT, 'take: vmDir must be an absolute path');
  return { op: 'take', key: o.key, vmDir: o.vmDir };
}

/** parseTakeReply checks the daemon's answer to take (the caller's side). */
export function parseTakeReply(line: string): TakeReply {
  const o = parseObject(line, 'pool reply');
  if (o.ok === true) {
    if (!Number.isSafeInteger(o.pid) || (o.pid as number) <= 1) throw errorf(Code.INVALID_ARGUMENT, 'pool reply: bad pid');
    if (typeof o.vmId !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(o.vmId)) throw errorf(Code.INVALID_ARGUMENT, 'pool reply: bad vmId');
    const warmMs = typeof o.warmMs === 'number' && Number.isFinite(o.warmMs) ? o.warmMs : 0;
    return { ok: true, pid: o.pid as number, vmId: o.vmId, warmMs };
  }
  const reason = o.reason === 'empty' || o.reason === 'other-key' ? o.reason : 'refused';
  return { ok: false, reason, detail: typeof o.detail === 'string' ? o.detail.slice(0, 500) : '' };
}

/** parseStatus checks the daemon's answer to status. */
export function parseStatus(line: string): PoolStatus {
  const o = parseObject(line, 'pool status');
  const n = (k: string): number => {
    const v = o[k];
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw errorf(Code.INVALID_ARGUMENT, `pool status: bad ${k}`);
    return v as number;
  };
  if (o.ok !== true || typeof o.key !== 'string') throw errorf(Code.INVALID_ARGUMENT, 'pool status: not a status');
  return { ok: true, pid: n('pid'), key: o.key.slice(0, 64), size: n('size'), ready: n('ready'), starting: n('starting'), handedOut: n('handedOut') };
}
