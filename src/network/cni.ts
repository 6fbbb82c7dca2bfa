// Adding a container to a CNI network and removing it again (CNI spec 1.0.0, section 3):
// the plugin chain of a conflist run in order with prevResult chaining, and in reverse for DEL.
// Node has no CNI library; this is hako's runtime side of the exec protocol.

import { isAbsolute } from 'node:path';
import { Code, HakoError, errorf, isNotFound } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { CNI_VERSIONS, validateContainerId, validateIfname, type CniConflist, type CniPluginConf } from './cni-config.js';
import { cniFailureOf, execPlugin, type CniCommand } from './cni-exec.js';
import { parseCniResult, type CniResult } from './cni-result.js';

/** CniAttachment names one attachment of a container to a network and how to run its plugins. */
export interface CniAttachment {
  conflist: CniConflist;
  /** pluginDirs are searched in order for each plugin's executable (CNI_PATH). */
  pluginDirs: readonly string[];
  containerId: string;
  /** netns is the path of the container's network namespace, e.g. /run/netns/<name>. */
  netns: string;
  /** ifname is the interface to create in the container, e.g. eth0. */
  ifname: string;
  /** capabilityArgs are offered to plugins; each gets those its "capabilities" declare. */
  capabilityArgs?: Record<string, unknown>;
  /** args become CNI_ARGS ("K=V;K2=V2"), given to every plugin. */
  args?: Record<string, string>;
  signal?: AbortSignal;
  /** timeoutMs bounds each plugin run (default 30 s); the plugin is killed past it. */
  timeoutMs?: number;
  log?: Logger;
}

/** CniDelOptions is an attachment to remove, with the result its ADD returned. */
export interface CniDelOptions extends CniAttachment {
  /** prevResult is the cached result of the ADD; plugins such as firewall need it to undo their rules. */
  prevResult?: CniResult;
}

function formatArgs(args: Record<string, string> | undefined): string {
  if (args === undefined) return '';
  return Object.entries(args).map(([k, v]) => {
    if (!/^[A-Za-z0-9_-]+$/.test(k) || /[;=\0]/.test(v)) {
      throw errorf(Code.INVALID_ARGUMENT, `CNI_ARGS entry ${JSON.stringify(`${k}=${v}`)}: keys are alphanumeric, values hold no ';' or '='`);
    }
    return `${k}=${v}`;
  }).join(';');
}

function validateAttachment(a: CniAttachment): string {
  validateContainerId(a.containerId);
  validateIfname(a.ifname);
  if (!isAbsolute(a.netns)) throw errorf(Code.INVALID_ARGUMENT, `network namespace ${JSON.stringify(a.netns)} must be an absolute path`);
  if (a.pluginDirs.length === 0) throw errorf(Code.INVALID_ARGUMENT, 'no CNI plugin directories given');
  if (a.timeoutMs !== undefined && !(a.timeoutMs > 0)) throw errorf(Code.INVALID_ARGUMENT, `CNI plugin timeout must be positive, not ${a.timeoutMs}`);
  return formatArgs(a.args);
}

/**
 * pluginRequest derives one plugin's request configuration from the conflist entry: the
 * network's name and cniVersion inserted, runtimeConfig holding the capability arguments the
 * plugin declares (and only those), capabilities removed, prevResult added when given.
 */
export function pluginRequest(
  conflist: CniConflist,
  plugin: CniPluginConf,
  capabilityArgs: Record<string, unknown> | undefined,
  prevResult: CniResult | undefined,
): Record<string, unknown> {
  const { capabilities, name: _name, cniVersion: _version, ...rest } = plugin;
  const request: Record<string, unknown> = { cniVersion: conflist.cniVersion, name: conflist.name, ...rest };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, declared] of Object.entries(capabilities ?? {})) {
    if (declared === true && capabilityArgs !== undefined && Object.hasOwn(capabilityArgs, cap)) runtimeConfig[cap] = capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length > 0) request.runtimeConfig = runtimeConfig;
  if (prevResult !== undefined) request.prevResult = prevResult;
  return request;
}

function runOne(a: CniAttachment, cniArgs: string, command: CniCommand, plugin: CniPluginConf, prev: CniResult | undefined, signal: AbortSignal | undefined): Promise<unknown> {
  return execPlugin({
    command,
    type: plugin.type,
    pluginDirs: a.pluginDirs,
    containerId: a.containerId,
    netns: a.netns,
    ifname: a.ifname,
    args: cniArgs,
    config: pluginRequest(a.conflist, plugin, a.capabilityArgs, prev),
    signal,
    timeoutMs: a.timeoutMs,
  });
}

function where(a: CniAttachment): string {
  return `network ${JSON.stringify(a.conflist.name)} for container ${a.containerId}`;
}

/**
 * cniAdd attaches the container to the network: every plugin of the conflist runs ADD in
 * order, each given the result before it as prevResult, and the last result is returned
 * (the caller keeps it for cniDel). When a plugin fails, DEL runs over the plugins that ran,
 * in reverse and with their own deadline, before cniAdd rejects with the plugin's error.
 */
export async function cniAdd(a: CniAttachment): Promise<CniResult> {
  const cniArgs = validateAttachment(a);
  if (a.signal?.aborted) throw errorf(Code.CANCELLED, `CNI ADD of ${where(a)}: cancelled`, a.signal.reason);
  const log = a.log?.child({ subsystem: 'cni', network: a.conflist.name, container: a.containerId });
  let prev: CniResult | undefined;
  for (const [i, plugin] of a.conflist.plugins.entries()) {
    const started = Date.now();
    try {
      const out = await runOne(a, cniArgs, 'ADD', plugin, prev, a.signal);
      if (out === undefined) throw errorf(Code.INTERNAL, `CNI plugin ${JSON.stringify(plugin.type)} ADD printed no result`);
      prev = parseCniResult(out, `CNI plugin ${JSON.stringify(plugin.type)} ADD`);
      log?.debug('cni plugin added', { plugin: plugin.type, ms: Date.now() - started });
    } catch (err) {
      const failed = HakoError.wrap(err, `CNI ADD of ${where(a)}`);
      // A plugin that was never found did nothing; the ones before it, and one that failed
      // halfway, may have left interfaces, addresses or rules behind.
      const neverRan = isNotFound(err) && cniFailureOf(err) === undefined;
      const ran = a.conflist.plugins.slice(0, neverRan ? i : i + 1);
      log?.warn('cni add failed, cleaning up', { plugin: plugin.type, err: failed });
      // Cleanup never reuses the caller's signal, which may be what aborted the ADD.
      const cleanup = await delChain({ ...a, signal: undefined, prevResult: prev }, ran, cniArgs).then(() => undefined, (e: unknown) => HakoError.from(e));
      if (cleanup !== undefined) {
        throw new HakoError(failed.code, `${failed.message}; the cleanup DEL failed too: ${cleanup.message}`, { cause: failed });
      }
      throw failed;
    }
  }
  if (prev === undefined) throw errorf(Code.INVALID_ARGUMENT, `CNI ADD of ${where(a)}: the conflist has no plugins`);
  return prev;
}

// The spec passes prevResult on DEL from 0.4.0 on; 0.3.x plugins expect none there.
function passesPrevResultOnDel(version: string): boolean {
  return CNI_VERSIONS.indexOf(version) >= CNI_VERSIONS.indexOf('0.4.0');
}

async function delChain(a: CniDelOptions, plugins: readonly CniPluginConf[], cniArgs: string): Promise<void> {
  const prev = passesPrevResultOnDel(a.conflist.cniVersion) ? a.prevResult : undefined;
  const log = a.log?.child({ subsystem: 'cni', network: a.conflist.name, container: a.containerId });
  const failures: HakoError[] = [];
  for (const plugin of [...plugins].reverse()) {
    try {
      await runOne(a, cniArgs, 'DEL', plugin, prev, a.signal);
      log?.debug('cni plugin deleted', { plugin: plugin.type });
    } catch (err) {
      const e = HakoError.from(err);
      log?.warn('cni plugin DEL failed, going on with the others', { plugin: plugin.type, err: e });
      failures.push(e);
    }
  }
  if (failures.length === 0) return;
  const first = failures[0] as HakoError;
  const summary = failures.length === 1 ? first.message : `${failures.length} of ${plugins.length} plugins failed: ${failures.map((f) => f.message).join('; ')}`;
  throw new HakoError(first.code, summary, { cause: failures.length === 1 ? first : new AggregateError(failures, summary) });
}

/**
 * cniDel removes the container from the network: every plugin runs DEL, last to first, with
 * the ADD's result as prevResult. Every plugin is tried even when one before it fails, a
 * binary is missing or the netns is gone (the reference plugins treat a vanished netns as
 * already cleaned up); the failures are reported together. DEL is idempotent: calling it
 * again after a success, or after an ADD that never happened, succeeds.
 */
export async function cniDel(a: CniDelOptions): Promise<void> {
  const cniArgs = validateAttachment(a);
  try {
    await delChain(a, a.conflist.plugins, cniArgs);
  } catch (err) {
    throw HakoError.wrap(err, `CNI DEL of ${where(a)}`);
  }
}
