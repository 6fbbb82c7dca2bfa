// network.json: what a sandbox's owner records about its pod network, so that cleanupSandbox
// (hako rm, the shim's delete, garbage collection) can undo it when the owner is gone.

import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, errorf } from '../errors/index.js';
import type { CniRecord } from './pod-cni.js';
import { writeJsonAtomic } from './state.js';

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
  /** cni is hako run's attachment to the hako CNI network, for the DEL. */
  cni?: CniRecord;
  /** createdNetns is the named namespace hako made for it (/run/netns/hako-<id>), deleted after. */
  createdNetns?: string;
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

/** removeNetworkRecord deletes network.json once everything it names is undone. */
export async function removeNetworkRecord(dir: string): Promise<void> {
  await rm(networkRecordPath(dir), { force: true });
}
