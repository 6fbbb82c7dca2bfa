// One CNI plugin call (CNI spec 1.0.0, section 2): find the executable by its type in the
// plugin directories, run it with the CNI_* environment and the configuration on stdin, read
// its JSON answer. Bounded in time and output; a plugin that fails gives a HakoError that
// names it, its CNI error code and message.

import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, HakoError, errorf } from '../errors/index.js';

/** CniCommand is a CNI operation, passed as CNI_COMMAND. */
export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

/** DEFAULT_PLUGIN_TIMEOUT_MS bounds one plugin run: a bridge ADD takes well under a second. */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 30_000;

/** MAX_PLUGIN_OUTPUT is the most stdout or stderr kept from a plugin before it is killed. */
export const MAX_PLUGIN_OUTPUT = 1024 * 1024;

/** PluginCall is everything one plugin run needs. */
export interface PluginCall {
  command: CniCommand;
  /** type is the plugin's executable name (its conflist "type"). */
  type: string;
  pluginDirs: readonly string[];
  containerId: string;
  netns: string;
  ifname: string;
  /** args is CNI_ARGS: "K=V;K2=V2" (empty for none). */
  args?: string;
  /** config is the request configuration written to the plugin's stdin. */
  config: Record<string, unknown>;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** CniFailure is what a failed plugin reported, kept as the cause of its HakoError. */
export interface CniFailure {
  plugin: string;
  command: CniCommand;
  /** cniCode is the plugin's CNI error code (1-99 well-known, 100+ its own), if it gave one. */
  cniCode?: number;
  msg: string;
  details?: string;
}

/** cniFailureOf returns the plugin's report from an error of execPlugin (or one wrapping it). */
export function cniFailureOf(err: unknown): CniFailure | undefined {
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 8; depth++) {
    const cause = (e as { cause?: unknown } | null)?.cause;
    if (typeof cause === 'object' && cause !== null && 'plugin' in cause && 'msg' in cause && 'command' in cause) return cause as CniFailure;
    e = cause;
  }
  return undefined;
}

/**
 * findPlugin returns the path of the executable named type in the first of dirs that holds
 * one, as libcni does; it throws NOT_FOUND naming the plugin and every directory searched.
 */
export async function findPlugin(type: string, dirs: readonly string[]): Promise<string> {
  const notExecutable: string[] = [];
  for (const dir of dirs) {
    const path = join(dir, type);
    const st = await stat(path).catch(() => undefined);
    if (st === undefined || !st.isFile()) continue;
    if (await access(path, constants.X_OK).then(() => true, () => false)) return path;
    notExecutable.push(path);
  }
  const also = notExecutable.length > 0 ? ` (${notExecutable.join(', ')} is not executable)` : '';
  return Promise.reject(errorf(Code.NOT_FOUND, `CNI plugin ${JSON.stringify(type)} not found in ${dirs.length > 0 ? dirs.join(', ') : 'no plugin directories'}${also}`));
}

// Debian's root PATH has the sbin directories, a user's often does not; portmap, firewall
// and bridge (ipMasq) run iptables found on PATH and would fail with "executable not found".
function pluginPath(path: string | undefined): string {
  const parts = (path ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter((p) => p !== '');
  for (const sbin of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!parts.includes(sbin)) parts.push(sbin);
  return parts.join(':');
}

function pluginEnv(call: PluginCall): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // Stray CNI_* variables of hako's own environment must not reach a plugin.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CNI_')) env[k] = v;
  env.PATH = pluginPath(process.env.PATH);
  env.CNI_COMMAND = call.command;
  env.CNI_CONTAINERID = call.containerId;
  env.CNI_NETNS = call.netns;
  env.CNI_IFNAME = call.ifname;
  env.CNI_ARGS = call.args ?? '';
  // CNI_PATH lets a plugin find the plugins it delegates to (bridge runs host-local).
  env.CNI_PATH = call.pluginDirs.join(':');
  return env;
}

function codeForCni(cniCode: number | undefined): Code {
  switch (cniCode) {
    case 1: return Code.FAILED_PRECONDITION; // incompatible CNI version
    case 2: case 4: case 6: case 7: return Code.INVALID_ARGUMENT; // unsupported field, bad env, undecodable, invalid config
    case 3: return Code.NOT_FOUND; // container unknown
    case 11: return Code.UNAVAILABLE; // try again later
    default: return Code.INTERNAL;
  }
}

// The spec's error object goes to stdout (the reference plugins' skel prints it there); some
// plugins write it to stderr instead. Anything else is a plugin's free-form log.
function decodeFailure(stdout: string, stderr: string): { cniCode?: number; msg: string; details?: string } | undefined {
  for (const text of [stdout, stderr]) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    const o = v as Record<string, unknown>;
    if (typeof o.msg !== 'string' && typeof o.code !== 'number') continue;
    return {
      ...(typeof o.code === 'number' ? { cniCode: o.code } : {}),
      msg: typeof o.msg === 'string' ? o.msg : '',
      ...(typeof o.details === 'string' && o.details !== '' ? { details: o.details } : {}),
    };
  }
  return undefined;
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-5).join('; ');
}

/**
 * execPlugin runs one plugin and resolves with its decoded stdout (undefined when it printed
 * nothing, as DEL may). It rejects with DEADLINE_EXCEEDED after timeoutMs (the plugin and its
 * process group, e.g. a delegated IPAM plugin, are killed), CANCELLED on abort,
 * RESOURCE_EXHAUSTED past MAX_PLUGIN_OUTPUT, NOT_FOUND for a missing plugin, and otherwise a
 * HakoError whose cause is the plugin's CniFailure.
 */
export async function execPlugin(call: PluginCall): Promise<unknown> {
  const timeoutMs = call.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw errorf(Code.INVALID_ARGUMENT, `CNI plugin timeout must be positive, not ${timeoutMs}`);
  const who = `CNI plugin ${JSON.stringify(call.type)} ${call.command}`;
  if (call.signal?.aborted) throw errorf(Code.CANCELLED, `${who}: cancelled`, call.signal.reason);
  const path = await findPlugin(call.type, call.pluginDirs);
  const input = JSON.stringify(call.config);

  return new Promise((resolve, reject) => {
    // detached: its own process group, so a kill also reaches the plugins it delegates to.
    const child = spawn(path, [], { env: pluginEnv(call), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const sizes = { stdout: 0, stderr: 0 };
    let killedFor: HakoError | undefined;

    const kill = (why: HakoError): void => {
      if (killedFor !== undefined) return;
      killedFor = why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // the group is gone already; make sure of the child itself
      }
    };
    const timer = setTimeout(() => kill(errorf(Code.DEADLINE_EXCEEDED, `${who} did not finish within ${timeoutMs} ms and was killed`)), timeoutMs);
    const onAbort = (): void => kill(errorf(Code.CANCELLED, `${who}: cancelled`, call.signal?.reason));
    call.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
    };

    const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer): void => {
      sizes[stream] += chunk.length;
      if (sizes[stream] > MAX_PLUGIN_OUTPUT) {
        kill(errorf(Code.RESOURCE_EXHAUSTED, `${who} wrote more than ${MAX_PLUGIN_OUTPUT} bytes on ${stream} and was killed`));
        return;
      }
      chunks[stream].push(chunk);
    };
    child.stdout.on('data', collect('stdout'));
    child.stderr.on('data', collect('stderr'));
    // A plugin may exit without reading stdin (EPIPE): its exit status tells what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(input);

    child.on('error', (err) => {
      done();
      reject(HakoError.wrap(err, `${who}: cannot run ${path}`));
    });
    child.on('close', (status, sig) => {
      done();
      if (killedFor !== undefined) {
        reject(killedFor);
        return;
      }
      const stdout = Buffer.concat(chunks.stdout).toString('utf8');
      const stderr = Buffer.concat(chunks.stderr).toString('utf8');
      if (status === 0) {
        if (stdout.trim() === '') {
          resolve(undefined);
          return;
        }
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(errorf(Code.INTERNAL, `${who} printed no JSON result: ${JSON.stringify(stdout.slice(0, 200))}`));
        }
        return;
      }
      const how = sig !== null ? `was killed by ${sig}` : `exited with status ${status}`;
      const decoded = decodeFailure(stdout, stderr);
      const failure: CniFailure = decoded !== undefined
        ? { plugin: call.type, command: call.command, ...decoded }
        : { plugin: call.type, command: call.command, msg: tail(stderr) || tail(stdout) || how };
      const codePart = failure.cniCode !== undefined ? `: CNI error ${failure.cniCode}` : '';
      const detailPart = failure.details !== undefined ? ` (${failure.details})` : '';
      reject(new HakoError(codeForCni(failure.cniCode), `${who} failed${codePart}: ${failure.msg}${detailPart}`, { cause: failure }));
    });
  });
}
