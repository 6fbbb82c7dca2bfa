// hako run's own pod network: a named network namespace per sandbox, joined to the hako CNI
// network (bridge, host-local IPAM, portmap, firewall) with the host's plugins, and taken down
// again with the cached ADD result, in reverse order, on every path.

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { HakoConfig } from '../config/index.js';
import { withLock } from '../image/lock.js';
import {
  checkSubnetFree, cniAdd, cniDel, ensureHostPortFree, findPortConflicts, formatPortMapping, hakoConflist, portMappingsArg,
  type CniConflist, type CniResult, type PortMapping,
} from '../network/index.js';
import { execTool } from '../storage/exec.js';
import { readNetworkRecord, writeNetworkRecord, type NetworkRecord } from './network-record.js';
import { listSandboxIds } from './state.js';
import { collectDeadNetworks } from './network-cleanup.js';
import { sandboxPaths } from './paths.js';

/** CniRecord is a CNI attachment as network.json keeps it, for the DEL. */
export interface CniRecord {
  conflist: CniConflist;
  pluginDirs: string[];
  containerId: string;
  netns: string;
  ifname: string;
  ports: PortMapping[];
  /** result is the ADD's result; absent while the ADD runs (DEL still undoes a partial ADD). */
  result?: CniResult;
}

/** POD_IFNAME is the pod's interface name. */
const POD_IFNAME = 'eth0';
const LOCK_WAIT_MS = 30_000;

/** netnsName is the named namespace of a `hako run` sandbox (/run/netns/<name>). */
export function netnsName(sandboxId: string): string {
  return `hako-${sandboxId}`;
}

/**
 * attachHakoNetwork checks the subnet and the ports, creates the sandbox's namespace and runs
 * CNI ADD. network.json records the attachment before the ADD, so a crash at any point leaves
 * enough for cleanupSandbox. On failure everything made is removed before it rejects.
 */
export async function attachHakoNetwork(o: { config: HakoConfig; sandboxId: string; dir: string; ports: PortMapping[]; log: Logger; signal?: AbortSignal }): Promise<{ netnsPath: string; record: CniRecord }> {
  const net = o.config.network;
  await checkSubnetFree(net.subnet, net.bridge, { signal: o.signal });
  const name = netnsName(o.sandboxId);
  const netnsPath = join('/run/netns', name);
  const record: CniRecord = {
    conflist: hakoConflist({ subnet: net.subnet, bridge: net.bridge }),
    pluginDirs: [...net.pluginDirs], containerId: o.sandboxId, netns: netnsPath, ifname: POD_IFNAME, ports: o.ports,
  };
  const capabilityArgs = o.ports.length > 0 ? { portMappings: portMappingsArg(o.ports) } : undefined;
  // Ports are checked and claimed (recorded) under one lock, so two runs cannot take the same.
  await withLock(join(o.config.runtime.stateDir, 'ports.lock'), { timeoutMs: LOCK_WAIT_MS, signal: o.signal }, async () => {
    // A SIGKILLed run may still hold ports and an address: give them back first.
    await collectDeadNetworks(o.config.runtime.stateDir, o.log);
    const taken = await publishedPorts(o.config.runtime.stateDir, o.sandboxId);
    const conflicts = findPortConflicts(o.ports, taken.map((t) => t.mapping));
    if (conflicts.length > 0) {
      const c = conflicts[0]!;
      const owner = taken.find((t) => t.mapping === c.other)?.sandbox;
      throw errorf(Code.ALREADY_EXISTS, owner !== undefined
        ? `port ${formatPortMapping(c.wanted)} is already published by container ${owner}`
        : `port ${formatPortMapping(c.wanted)} is published twice by this run`);
    }
    for (const m of o.ports) await ensureHostPortFree(m, { signal: o.signal });
    await writeNetworkRecord(o.dir, { version: 1, holderPid: 0, endpoints: [], cni: record, createdNetns: netnsPath });
  });
  try {
    await execTool(['ip', 'netns', 'add', name], { signal: o.signal });
    record.result = await cniAdd({ ...record, capabilityArgs, signal: o.signal, log: o.log });
    await writeNetworkRecord(o.dir, { version: 1, holderPid: 0, endpoints: [], cni: record, createdNetns: netnsPath });
    return { netnsPath, record };
  } catch (err) {
    const problems = await detachHakoNetwork({ cni: record, createdNetns: netnsPath }, o.log);
    const e = HakoError.wrap(err, `connecting ${o.sandboxId} to the ${record.conflist.name} network`);
    if (problems.length > 0) throw new HakoError(e.code, `${e.message}; cleanup: ${problems.join('; ')}`, { cause: e });
    throw e;
  }
}

/**
 * detachHakoNetwork runs CNI DEL with the cached result and deletes the namespace hako made.
 * Both steps always run; the problems are returned, not thrown (cleanup goes on regardless).
 */
export async function detachHakoNetwork(r: Pick<NetworkRecord, 'cni' | 'createdNetns'>, log: Logger): Promise<string[]> {
  const problems: string[] = [];
  if (r.cni) {
    const c = r.cni;
    const capabilityArgs = c.ports.length > 0 ? { portMappings: portMappingsArg(c.ports) } : undefined;
    await cniDel({ ...c, capabilityArgs, prevResult: c.result, log }).catch((err: unknown) => problems.push(HakoError.from(err).message));
  }
  if (r.createdNetns !== undefined && r.createdNetns.startsWith('/run/netns/hako-')) {
    const name = r.createdNetns.slice('/run/netns/'.length);
    await execTool(['ip', 'netns', 'delete', name]).catch(async (err: unknown) => {
      // Already gone is fine; a leftover mount point file (no mount) is removed by hand.
      if (!/No such file|not found|Invalid argument/i.test((err as Error).message)) problems.push((err as Error).message);
      await rm(r.createdNetns!, { force: true }).catch(() => {});
    });
  }
  if (problems.length === 0 && r.cni) log.info('left the pod network', { network: r.cni.conflist.name });
  return problems;
}

/** publishedPorts lists the ports other sandboxes have published (from their network.json). */
async function publishedPorts(stateDir: string, except: string): Promise<Array<{ sandbox: string; mapping: PortMapping }>> {
  const out: Array<{ sandbox: string; mapping: PortMapping }> = [];
  for (const id of await listSandboxIds(stateDir)) {
    if (id === except) continue;
    const r = await readNetworkRecord(sandboxPaths(stateDir, id).dir).catch(() => undefined);
    for (const m of r?.cni?.ports ?? []) out.push({ sandbox: id, mapping: m });
  }
  return out;
}
