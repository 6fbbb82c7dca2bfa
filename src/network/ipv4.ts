// IPv4 addresses and CIDR networks as 32-bit numbers: parsing, formatting and overlap,
// for hako's subnet checks (the hako network is IPv4 only).

import { isIPv4 } from 'node:net';
import { Code, errorf } from '../errors/index.js';

/** Ipv4Net is an IPv4 network: its first address as an unsigned 32-bit number and a prefix length. */
export interface Ipv4Net {
  base: number;
  prefix: number;
}

/** parseIpv4 returns the unsigned 32-bit value of a dotted-quad address, or undefined. */
export function parseIpv4(text: string): number | undefined {
  // isIPv4 rejects leading zeros ("010.0.0.1"), which some tools read as octal.
  if (!isIPv4(text)) return undefined;
  return text.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** formatIpv4 prints an unsigned 32-bit value as a dotted quad. */
export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** maskOf returns the network mask of a prefix length as an unsigned 32-bit value. */
function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * parseIpv4Cidr reads "A.B.C.D/N". With strict, host bits must be zero (a network, not an
 * address in it); without, they are cleared ("10.0.0.7/24" is the network 10.0.0.0/24).
 */
export function parseIpv4Cidr(text: string, opts: { strict?: boolean } = {}): Ipv4Net {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? undefined : parseIpv4(text.slice(0, slash));
  const prefixText = slash < 0 ? '' : text.slice(slash + 1);
  const prefix = /^\d{1,2}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (addr === undefined || !(prefix >= 0 && prefix <= 32)) {
    throw errorf(Code.INVALID_ARGUMENT, `${JSON.stringify(text)} is not an IPv4 network in CIDR form like 10.213.0.0/16`);
  }
  const base = (addr & maskOf(prefix)) >>> 0;
  if (opts.strict === true && base !== addr) {
    throw errorf(Code.INVALID_ARGUMENT, `${text} has host bits set (the network is ${formatIpv4(base)}/${prefix})`);
  }
  return { base, prefix };
}

/** formatIpv4Cidr prints a network as "A.B.C.D/N". */
export function formatIpv4Cidr(net: Ipv4Net): string {
  return `${formatIpv4(net.base)}/${net.prefix}`;
}

/** ipv4NetsOverlap reports whether two networks share at least one address (one contains the other). */
export function ipv4NetsOverlap(a: Ipv4Net, b: Ipv4Net): boolean {
  const shorter = Math.min(a.prefix, b.prefix);
  const mask = maskOf(shorter);
  return ((a.base & mask) >>> 0) === ((b.base & mask) >>> 0);
}
