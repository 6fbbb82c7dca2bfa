// Reading and checking <bundle>/config.json (the OCI runtime spec containerd writes).
// Every rejection names the offending field, so `ctr` users see what to fix.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, HakoError } from '../errors/index.js';

/** MAX_SPEC_BYTES bounds config.json; real specs are a few KiB, huge ones are abuse. */
export const MAX_SPEC_BYTES = 4 << 20;

/** OciSpec is a parsed runtime spec; fields beyond those checked pass through untouched. */
export type OciSpec = Record<string, unknown> & {
  process?: Record<string, unknown>;
  root?: { path: string; readonly?: boolean };
  annotations?: Record<string, string>;
};

/** readBundleSpec reads and parses <bundle>/config.json without checking its fields. */
export async function readBundleSpec(bundle: string): Promise<OciSpec> {
  const path = join(bundle, 'config.json');
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw HakoError.wrap(err, `config.json: cannot read ${path}`);
  }
  if (size > MAX_SPEC_BYTES) throw new HakoError(Code.INVALID_ARGUMENT, `config.json: ${size} bytes exceeds the ${MAX_SPEC_BYTES}-byte limit`);
  const text = await readFile(path, 'utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new HakoError(Code.INVALID_ARGUMENT, `config.json: not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw new HakoError(Code.INVALID_ARGUMENT, 'config.json: must be a JSON object');
  return v as OciSpec;
}

/** validateSpec checks the fields hako relies on and throws INVALID_ARGUMENT naming the field. */
export function validateSpec(spec: unknown): asserts spec is OciSpec {
  const bad = (field: string, want: string): never => {
    throw new HakoError(Code.INVALID_ARGUMENT, `config.json: ${field}: ${want}`);
  };
  if (!isObject(spec)) bad('(root)', 'must be a JSON object');
  const s = spec as Record<string, unknown>;
  if (s.ociVersion !== undefined && typeof s.ociVersion !== 'string') bad('ociVersion', 'must be a string');
  if (!isObject(s.root)) bad('root', 'must be an object with a path');
  const root = s.root as Record<string, unknown>;
  if (typeof root.path !== 'string' || root.path === '') bad('root.path', 'must be a non-empty string');
  if (root.readonly !== undefined && typeof root.readonly !== 'boolean') bad('root.readonly', 'must be a boolean');
  if (!isObject(s.process)) bad('process', 'must be an object');
  validateProcess(s.process, 'process');
  if (s.hostname !== undefined && typeof s.hostname !== 'string') bad('hostname', 'must be a string');
  if (s.mounts !== undefined) {
    if (!Array.isArray(s.mounts)) bad('mounts', 'must be an array');
    (s.mounts as unknown[]).forEach((m, i) => {
      if (!isObject(m)) bad(`mounts[${i}]`, 'must be an object');
      const mm = m as Record<string, unknown>;
      if (typeof mm.destination !== 'string' || !mm.destination.startsWith('/')) bad(`mounts[${i}].destination`, 'must be an absolute path');
      if (mm.options !== undefined && !isStringArray(mm.options)) bad(`mounts[${i}].options`, 'must be an array of strings');
    });
  }
  if (s.annotations !== undefined) {
    if (!isObject(s.annotations)) bad('annotations', 'must be an object of strings');
    for (const [k, v] of Object.entries(s.annotations as object)) if (typeof v !== 'string') bad(`annotations["${k}"]`, 'must be a string');
  }
  if (s.linux !== undefined) {
    if (!isObject(s.linux)) bad('linux', 'must be an object');
    const l = s.linux as Record<string, unknown>;
    if (l.resources !== undefined && !isObject(l.resources)) bad('linux.resources', 'must be an object');
    if (l.namespaces !== undefined) {
      if (!Array.isArray(l.namespaces)) bad('linux.namespaces', 'must be an array');
      (l.namespaces as unknown[]).forEach((n, i) => {
        if (!isObject(n) || typeof (n as Record<string, unknown>).type !== 'string') bad(`linux.namespaces[${i}].type`, 'must be a string');
      });
    }
  }
}

/** validateProcess checks an OCI Process object (the init process or an exec). */
export function validateProcess(p: unknown, field: string): void {
  const bad = (f: string, want: string): never => {
    throw new HakoError(Code.INVALID_ARGUMENT, `${field === 'process' ? 'config.json: ' : ''}${f}: ${want}`);
  };
  if (!isObject(p)) bad(field, 'must be an object');
  const o = p as Record<string, unknown>;
  if (!isStringArray(o.args) || o.args.length === 0) bad(`${field}.args`, 'must be a non-empty array of strings');
  if (typeof o.cwd !== 'string' || !o.cwd.startsWith('/')) bad(`${field}.cwd`, 'must be an absolute path');
  if (o.env !== undefined && !isStringArray(o.env)) bad(`${field}.env`, 'must be an array of strings');
  if (o.terminal !== undefined && typeof o.terminal !== 'boolean') bad(`${field}.terminal`, 'must be a boolean');
  if (o.user !== undefined) {
    if (!isObject(o.user)) bad(`${field}.user`, 'must be an object');
    const u = o.user as Record<string, unknown>;
    if (!isUint(u.uid)) bad(`${field}.user.uid`, 'must be a non-negative integer');
    if (!isUint(u.gid)) bad(`${field}.user.gid`, 'must be a non-negative integer');
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isUint(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** PodNetns is where a pod's network namespace comes from, as the spec of its first container says. */
export type PodNetns = { kind: 'new' } | { kind: 'join'; path: string };

/**
 * podNetns reads linux.namespaces[network]: a path is a namespace made by CRI, podman or the
 * user; no path asks for a new one (the shim makes it, and CNI may fill it after Create). No
 * network entry means the host's namespace, which a VM cannot share: hako gives it a new, empty
 * one rather than mirroring the host's own interfaces into a guest.
 */
export function podNetns(spec: OciSpec): PodNetns & { hostNetwork: boolean } {
  const linux = isObject(spec.linux) ? spec.linux : {};
  const list = Array.isArray(linux.namespaces) ? linux.namespaces : [];
  const net = list.find((n): n is Record<string, unknown> => isObject(n) && n.type === 'network');
  if (!net) return { kind: 'new', hostNetwork: true };
  if (typeof net.path === 'string' && net.path !== '') {
    if (!net.path.startsWith('/')) throw new HakoError(Code.INVALID_ARGUMENT, `config.json: linux.namespaces[network].path ${JSON.stringify(net.path)} must be absolute`);
    return { kind: 'join', path: net.path, hostNetwork: false };
  }
  return { kind: 'new', hostNetwork: false };
}
