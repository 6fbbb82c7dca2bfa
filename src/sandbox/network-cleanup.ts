// Undoing a sandbox's pod network from its network.json alone, when its owner is gone
// (hako rm -f, the shim's delete, garbage collection, a failed start).

import { readFile } from 'node:fs/promises';
import type { Logger } from '../log/index.js';
import { unmirror } from '../network/index.js';
import { readNetworkRecord, removeNetworkRecord, type NetworkRecord } from './network-record.js';
import { detachHakoNetwork } from './pod-cni.js';
import { sandboxPaths } from './paths.js';
import { listSandboxIds, pidAlive, readState } from './state.js';

/**
 * cleanupNetwork undoes a recorded pod network: the holder (if it outlived its owner) is ended,
 * and in a namespace hako joined, the mirrors and taps are removed. A namespace the holder made
 * goes away with the holder, and takes its taps and filters with it.
 */
export async function cleanupNetwork(dir: string, log: Logger): Promise<string[]> {
  const problems: string[] = [];
  let r: NetworkRecord | undefined;
  try {
    r = await readNetworkRecord(dir);
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (!r) return problems;
  problems.push(...(await undoNetwork(r, log)));
  if (problems.length === 0) await removeNetworkRecord(dir);
  return problems;
}

async function undoNetwork(r: NetworkRecord, log: Logger): Promise<string[]> {
  const problems: string[] = [];
  if (r.netnsPath !== undefined) {
    for (const ep of r.endpoints) {
      await unmirror(r.netnsPath, ep.link, ep.tap).catch((err: unknown) => problems.push((err as Error).message));
    }
  }
  if (Number.isInteger(r.holderPid) && r.holderPid > 0 && (await pidAlive(r.holderPid)) && (await isHolder(r.holderPid))) {
    process.kill(r.holderPid, 'SIGKILL');
    log.info('ended a leftover network namespace holder', { pid: r.holderPid });
  }
  problems.push(...(await detachHakoNetwork(r, log)));
  return problems;
}

async function isHolder(pid: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0')[0]?.endsWith('/hako-netns') === true;
}

/**
 * collectDeadNetworks undoes the pod network of every sandbox whose owner died without cleaning
 * up (a SIGKILLed `hako run`), so its address, ports and namespace are free again. The rest of
 * such a sandbox stays for `hako ps` to show and `hako rm` to remove. Returns the ids it cleaned.
 */
export async function collectDeadNetworks(stateDir: string, log: Logger): Promise<string[]> {
  const cleaned: string[] = [];
  for (const id of await listSandboxIds(stateDir)) {
    const { dir, state } = sandboxPaths(stateDir, id);
    const s = await readState(state).catch(() => undefined);
    if (!s || (await pidAlive(s.ownerPid))) continue;
    if ((await readNetworkRecord(dir).catch(() => undefined)) === undefined) continue;
    const problems = await cleanupNetwork(dir, log.child({ sandbox: id }));
    if (problems.length > 0) log.warn('could not undo the network of a dead sandbox', { sandbox: id, problems });
    else cleaned.push(id);
  }
  if (cleaned.length > 0) log.info('released the networks of dead sandboxes', { sandboxes: cleaned });
  return cleaned;
}
