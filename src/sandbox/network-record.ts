// network.json: what a sandbox's owner records about its pod network, so that cleanupSandbox
// (hako rm, the shim's delete, garbage collection) can undo it when the owner is gone.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { unmirror } from '../network/index.js';
import { pidAlive, writeJsonAtomic } from './state.js';

/** NetworkEndpointRecord is one interface mirrored into the VM. */
export interface NetworkEndpointRecord {
  /** link is the interface's name in the pod namespace when last seen. */
  link: string;
  index: number;
  mac: string;
  /** tap is hako's tap next to it. */
  tap: string;
}

/** NetworkRecord is network.json. */
export interface NetworkRecord {
  version: 1;
  /** netnsPath is a namespace hako joined (CRI, podman, hako run's own); absent for one the holder made. */
  netnsPath?: string;
  holderPid: number;
  endpoints: NetworkEndpointRecord[];
}

const MAX_RECORD_BYTES = 256 * 1024;

/** networkRecordPath is `<sandbox dir>/network.json`. */
export function networkRecordPath(dir: string): string {
  return join(dir, 'network.json');
}

/** writeNetworkRecord replaces network.json atomically. */
export function writeNetworkRecord(dir: string, r: NetworkRecord): Promise<void> {
  return writeJsonAtomic(networkRecordPath(dir), r);
}

/** readNetworkRecord reads network.json, or undefined when there is none. */
export async function readNetworkRecord(dir: string): Promise<NetworkRecord | undefined> {
  let text: string;
  try {
    text = await readFile(networkRecordPath(dir), 'utf8');
  } catch {
    return undefined;
  }
  if (text.length > MAX_RECORD_BYTES) throw errorf(Code.DATA_LOSS, `${networkRecordPath(dir)} is too large`);
  const r = JSON.parse(text) as NetworkRecord;
  if (r?.version !== 1 || !Array.isArray(r.endpoints)) throw errorf(Code.DATA_LOSS, `${networkRecordPath(dir)}: not a network record`);
  return r;
}

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
  if (r.netnsPath !== undefined) {
    for (const ep of r.endpoints) {
      await unmirror(r.netnsPath, ep.link, ep.tap).catch((err: unknown) => problems.push((err as Error).message));
    }
  }
  if (Number.isInteger(r.holderPid) && r.holderPid > 0 && (await pidAlive(r.holderPid)) && (await isHolder(r.holderPid))) {
    process.kill(r.holderPid, 'SIGKILL');
    log.info('ended a leftover network namespace holder', { pid: r.holderPid });
  }
  return problems;
}

async function isHolder(pid: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0')[0]?.endsWith('/hako-netns') === true;
}
