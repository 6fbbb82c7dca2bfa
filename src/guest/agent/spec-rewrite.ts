// Turns the OCI runtime spec the host sends into the one crun runs in the guest: share-
// relative paths become /run/hako/shared/..., host-only settings are dropped, paths that escape are refused.

import { posix } from 'node:path';
import { Code, errorf } from '../../errors/index.js';
import { crunCgroupsPath } from './cgroup-stats.js';

/** SHARE_ROOT is where the agent mounts the sandbox's 9p share. */
export const SHARE_ROOT = '/run/hako/shared';

/** MAX_SPEC_BYTES bounds the JSON of a spec or process the agent parses. */
export const MAX_SPEC_BYTES = 2 << 20;

const MAX_MOUNTS = 1024;

/**
 * CONTAINER_PERSONALITY is the linux.personality a spec gets when it names none: plain Linux,
 * whose personality(2) call clears the ADDR_NO_RANDOMIZE flag crun itself runs with.
 */
export const CONTAINER_PERSONALITY: Readonly<{ domain: string }> = { domain: 'LINUX' };

/** Non-bind mount types that carry no source path and are safe to pass to crun. */
const PSEUDO_MOUNT_TYPES = new Set(['proc', 'sysfs', 'tmpfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2']);

/** JsonObject is a parsed JSON object whose shape is still unchecked. */
export type JsonObject = Record<string, unknown>;

/** RewriteOptions describe the container the spec is for. */
export interface RewriteOptions {
  containerId: string;
  /** terminal is whether crun should give the process a pty (process.terminal). */
  terminal: boolean;
  shareRoot?: string;
}

/** RewriteResult is the guest spec plus what the caller must still check on disk. */
export interface RewriteResult {
  spec: JsonObject;
  /** paths are guest paths (root and bind sources) that must exist and stay under the share. */
  paths: string[];
  /** dropped lists host-only settings that were removed, for the log. */
  dropped: string[];
}

/** parseJsonObject parses bytes as one JSON object, bounded by MAX_SPEC_BYTES. */
export function parseJsonObject(bytes: Uint8Array, what: string): JsonObject {
  if (bytes.length === 0) throw errorf(Code.INVALID_ARGUMENT, `${what} is empty`);
  if (bytes.length > MAX_SPEC_BYTES) throw errorf(Code.INVALID_ARGUMENT, `${what} is ${bytes.length} bytes, more than ${MAX_SPEC_BYTES}`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch (err) {
    throw errorf(Code.INVALID_ARGUMENT, `${what} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw errorf(Code.INVALID_ARGUMENT, `${what} is not a JSON object`);
  return v;
}

/**
 * resolveSharePath maps a path relative to the share to its guest path. Absolute
 * paths, empty paths, NUL bytes and any `..` segment are refused, so the result
 * always lies under the share root (symlinks are checked later, on disk).
 */
export function resolveSharePath(rel: unknown, what: string, shareRoot = SHARE_ROOT): string {
  if (typeof rel !== 'string' || rel === '') throw errorf(Code.INVALID_ARGUMENT, `${what}: a path relative to the sandbox share is required`);
  if (rel.length > 4096 || rel.includes('\0')) throw errorf(Code.INVALID_ARGUMENT, `${what}: invalid path`);
  if (rel.startsWith('/')) throw errorf(Code.INVALID_ARGUMENT, `${what}: ${JSON.stringify(rel.slice(0, 200))} is absolute; it must be relative to the sandbox share`);
  if (rel.split('/').includes('..')) throw errorf(Code.INVALID_ARGUMENT, `${what}: ${JSON.stringify(rel.slice(0, 200))} escapes the sandbox share`);
  const norm = posix.normalize(rel).replace(/\/+$/, '');
  if (norm === '' || norm === '.' || norm.startsWith('../') || norm === '..') throw errorf(Code.INVALID_ARGUMENT, `${what}: ${JSON.stringify(rel.slice(0, 200))} names the share itself`);
  return posix.join(shareRoot, norm);
}

/** isUnderShare reports whether a resolved (real) path lies strictly inside the share root. */
export function isUnderShare(real: string, shareRoot = SHARE_ROOT): boolean {
  return real.startsWith(shareRoot + '/') && !real.split('/').includes('..');
}

/** rewriteSpec checks and rewrites a container's runtime spec for crun in the guest. */
export function rewriteSpec(input: JsonObject, opts: RewriteOptions): RewriteResult {
  const shareRoot = opts.shareRoot ?? SHARE_ROOT;
  const spec: JsonObject = structuredClone(input);
  const paths: string[] = [];
  const dropped: string[] = [];

  const root = spec.root;
  if (!isObject(root)) throw errorf(Code.INVALID_ARGUMENT, 'spec: root is missing');
  root.path = resolveSharePath(root.path, 'spec root.path', shareRoot);
  paths.push(root.path as string);

  if (!isObject(spec.process)) throw errorf(Code.INVALID_ARGUMENT, 'spec: process is missing');
  spec.process = rewriteProcess(spec.process, opts.terminal, 'spec process', dropped);

  if (spec.mounts !== undefined) {
    if (!Array.isArray(spec.mounts)) throw errorf(Code.INVALID_ARGUMENT, 'spec: mounts is not an array');
    if (spec.mounts.length > MAX_MOUNTS) throw errorf(Code.INVALID_ARGUMENT, `spec: more than ${MAX_MOUNTS} mounts`);
    spec.mounts = spec.mounts.map((m, i) => rewriteMount(m, i, paths, shareRoot));
  }

  if (spec.hooks !== undefined) {
    // Hooks name host binaries; they cannot run in the guest.
    delete spec.hooks;
    dropped.push('hooks');
  }

  if (spec.linux === undefined) spec.linux = {};
  const linux = spec.linux;
  if (!isObject(linux)) throw errorf(Code.INVALID_ARGUMENT, 'spec: linux is not an object');
  // The host's cgroup path means nothing in the guest: see cgroupDir().
  linux.cgroupsPath = crunCgroupsPath(opts.containerId);
  if (linux.namespaces !== undefined) {
    if (!Array.isArray(linux.namespaces)) throw errorf(Code.INVALID_ARGUMENT, 'spec: linux.namespaces is not an array');
    linux.namespaces = linux.namespaces.filter((ns: unknown) => {
      if (!isObject(ns) || typeof ns.type !== 'string') throw errorf(Code.INVALID_ARGUMENT, 'spec: invalid linux.namespaces entry');
      // The VM is the pod: containers share the guest's network, where the agent configures it.
      if (ns.type === 'network') {
        dropped.push('linux.namespaces[network]');
        return false;
      }
      // A namespace path names a host process; in the guest the container joins the VM's own.
      if (ns.path !== undefined && ns.path !== '') {
        dropped.push(`linux.namespaces[${ns.type}].path`);
        return false;
      }
      return true;
    });
  }
  // crun runs without address-space randomization (see the agent wrapper, /etc/hako/agent), which
  // its children inherit: a personality makes crun reset it, so container processes keep ASLR.
  if (linux.personality === undefined) linux.personality = { ...CONTAINER_PERSONALITY };
  for (const key of ['mountLabel', 'intelRdt'] as const) {
    if (linux[key] !== undefined) {
      delete linux[key];
      dropped.push(`linux.${key}`);
    }
  }
  return { spec, paths, dropped };
}

/** rewriteProcess checks an OCI Process and adapts it for the guest (no LSM labels; terminal as asked). */
export function rewriteProcess(input: JsonObject, terminal: boolean, what: string, dropped: string[] = []): JsonObject {
  const p: JsonObject = { ...input };
  const args = p.args;
  if (!Array.isArray(args) || args.length === 0 || !args.every((a) => typeof a === 'string')) {
    throw errorf(Code.INVALID_ARGUMENT, `${what}: args must be a non-empty array of strings`);
  }
  if (p.cwd !== undefined && (typeof p.cwd !== 'string' || !p.cwd.startsWith('/'))) {
    throw errorf(Code.INVALID_ARGUMENT, `${what}: cwd must be an absolute path`);
  }
  if (p.env !== undefined && (!Array.isArray(p.env) || !p.env.every((e) => typeof e === 'string'))) {
    throw errorf(Code.INVALID_ARGUMENT, `${what}: env must be an array of strings`);
  }
  // The guest kernel has no AppArmor or SELinux.
  for (const key of ['apparmorProfile', 'selinuxLabel'] as const) {
    if (p[key] !== undefined) {
      delete p[key];
      dropped.push(`${what}.${key}`);
    }
  }
  p.terminal = terminal;
  return p;
}

function rewriteMount(m: unknown, i: number, paths: string[], shareRoot: string): JsonObject {
  const what = `spec mounts[${i}]`;
  if (!isObject(m)) throw errorf(Code.INVALID_ARGUMENT, `${what} is not an object`);
  if (typeof m.destination !== 'string' || !m.destination.startsWith('/')) {
    throw errorf(Code.INVALID_ARGUMENT, `${what}: destination must be an absolute path`);
  }
  const options = m.options === undefined ? [] : m.options;
  if (!Array.isArray(options) || !options.every((o) => typeof o === 'string')) throw errorf(Code.INVALID_ARGUMENT, `${what}: options must be strings`);
  const bind = m.type === 'bind' || options.includes('bind') || options.includes('rbind');
  if (bind) {
    const source = resolveSharePath(m.source, `${what} (${m.destination}) source`, shareRoot);
    paths.push(source);
    return { ...m, source };
  }
  if (typeof m.type !== 'string' || !PSEUDO_MOUNT_TYPES.has(m.type)) {
    throw errorf(Code.INVALID_ARGUMENT, `${what} (${m.destination}): mount type ${JSON.stringify(m.type)} is not supported in the guest`);
  }
  if (m.source !== undefined && (typeof m.source !== 'string' || m.source.includes('/'))) {
    throw errorf(Code.INVALID_ARGUMENT, `${what} (${m.destination}): a ${m.type} mount takes no source path`);
  }
  return { ...m };
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
