// Joining a pod interface to the VM the way Kata's tcfilter model does: a tap next to the
// interface (veth) in the pod's namespace, and two tc ingress filters that redirect every frame
// arriving on one to the other. The guest's NIC carries the interface's MAC and addresses, so
// the rest of the pod network (bridge, CNI, iptables) never knows a VM is there.

import { createHash } from 'node:crypto';
import { Code, errorf } from '../errors/index.js';
import { execTool } from '../storage/exec.js';
import type { NetLink } from './inspect.js';
import { nsBatch } from './netns.js';

/** TAP_PREFIX starts the name of every tap hako makes; no endpoint is ever one of them. */
export const TAP_PREFIX = 'hkt';

/**
 * tapName is the tap of endpoint n of a sandbox: unique on the host (the tap is created in the
 * host namespace by QEMU, then moved), at most 15 bytes, and recognisable as hako's.
 */
export function tapName(sandboxId: string, n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 99) throw errorf(Code.INVALID_ARGUMENT, `tap index ${n} out of range`);
  const h = createHash('sha256').update(sandboxId).digest('hex').slice(0, 8);
  return `${TAP_PREFIX}${h}${n}`;
}

/**
 * endpointsOf picks the links to mirror into the VM: every Ethernet link but loopback and hako's
 * own taps. A link without a MAC (tun, ipip, ...) that carries an address cannot be mirrored,
 * and is refused rather than silently left out; address-less ones (sit0, tunl0) are skipped.
 */
export function endpointsOf(links: readonly NetLink[]): NetLink[] {
  const out: NetLink[] = [];
  for (const l of links) {
    if (l.linkType === 'loopback' || l.name.startsWith(TAP_PREFIX)) continue;
    if (l.linkType === 'ether' && l.mac !== '' && l.mac !== '00:00:00:00:00:00') {
      out.push(l);
      continue;
    }
    if (l.addresses.length > 0) {
      throw errorf(Code.FAILED_PRECONDITION,
        `interface ${l.name} (${l.kind || l.linkType || 'unknown type'}) cannot be mirrored into the VM: hako mirrors Ethernet interfaces, and it has no MAC address`);
    }
  }
  return out;
}

/** mirrorLines are the tc commands that join link and tap both ways. Pure. */
export function mirrorLines(link: string, tap: string): string[] {
  const redirect = (from: string, to: string) => [
    `qdisc add dev ${from} handle ffff: ingress`,
    `filter add dev ${from} parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev ${to}`,
  ];
  return [...redirect(link, tap), ...redirect(tap, link)];
}

/**
 * moveTap moves a tap that QEMU created in the host namespace into the pod's namespace, gives
 * it the endpoint's MTU and brings it up.
 */
export async function moveTap(tap: string, nsPath: string, mtu: number, signal?: AbortSignal): Promise<void> {
  await execTool(['ip', 'link', 'set', 'dev', tap, 'netns', nsPath], { signal });
  await nsBatch(nsPath, 'ip', [`link set dev ${tap} mtu ${mtu} up`], { signal });
}

/** mirror installs the ingress qdiscs and redirect filters between link and tap. */
export async function mirror(nsPath: string, link: string, tap: string, signal?: AbortSignal): Promise<void> {
  try {
    await nsBatch(nsPath, 'tc', mirrorLines(link, tap), { signal });
  } catch (err) {
    await unmirror(nsPath, link, tap).catch(() => {});
    throw errorf(Code.FAILED_PRECONDITION, `interface ${link} cannot be mirrored into the VM (tc ingress redirect to ${tap})`, err);
  }
}

/**
 * unmirror removes what mirror and moveTap made: the link's ingress qdisc (its filters go with
 * it) and the tap. Each step runs even if an earlier one found nothing; a missing namespace, link
 * or tap is not an error (QEMU's exit removes its taps, and a deleted namespace takes everything).
 */
export async function unmirror(nsPath: string, link: string | undefined, tap: string): Promise<void> {
  const gone = (err: unknown) => /No such|Cannot find|does not exist|Invalid handle|Cannot open|No such file/i.test(String((err as Error).message));
  const errors: unknown[] = [];
  const step = async (p: Promise<unknown>) => {
    await p.catch((err: unknown) => {
      if (!gone(err)) errors.push(err);
    });
  };
  if (link !== undefined) await step(nsBatch(nsPath, 'tc', [`qdisc del dev ${link} handle ffff: ingress`]));
  await step(nsBatch(nsPath, 'ip', [`link del dev ${tap}`]));
  if (errors.length > 0) throw errorf(Code.INTERNAL, `removing the mirror of ${link ?? '?'} and ${tap}: ${errors.map((e) => (e as Error).message).join('; ')}`);
}
