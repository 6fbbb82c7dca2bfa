// Checks on the arguments of UpdateInterface, UpdateRoutes and AddARPNeighbors: every field is
// bounded and well-formed before hako-guestctl sees it, and each refusal names the field.

import { isIP } from 'node:net';
import { Code, HakoError } from '../../errors/index.js';

/** MAX_ADDRESSES bounds one interface's addresses. */
export const MAX_ADDRESSES = 16;
/** MAX_ROUTES bounds one UpdateRoutes. */
export const MAX_ROUTES = 64;
/** MAX_NEIGHBORS bounds one AddARPNeighbors. */
export const MAX_NEIGHBORS = 256;
/** NUD_PERMANENT is the neighbour state AddARPNeighbors sets (0 in a request means the same). */
export const NUD_PERMANENT = 0x80;

/** IFNAME_PATTERN: 1-15 characters (IFNAMSIZ less its NUL) that need no quoting anywhere. */
const IFNAME_PATTERN = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC_PATTERN = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;

/** IpAddress is an address of a family with its prefix length. */
export interface IpAddress {
  address: string;
  prefixLen: number;
  family: 4 | 6;
}

/** InterfaceConfig is a checked UpdateInterface: the MAC in lower case, mtu 0 to leave it. */
export interface InterfaceConfig {
  name: string;
  mac: string;
  mtu: number;
  addresses: IpAddress[];
}

/** RouteConfig is a checked route: dest is a network without host bits (prefixLen 0: default). */
export interface RouteConfig {
  family: 4 | 6;
  dest: string;
  prefixLen: number;
  gateway: string;
  source: string;
  scope: number;
  device: string;
}

/** NeighborConfig is a checked neighbour entry: the MAC in lower case. */
export interface NeighborConfig {
  ip: string;
  device: string;
  mac: string;
}

function invalid(field: string, why: string): HakoError {
  return new HakoError(Code.INVALID_ARGUMENT, `${field} ${why}`);
}

function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

/** checkIfName requires an interface name of 1-15 characters of [A-Za-z0-9_.-], not "." or "..". */
export function checkIfName(field: string, name: string): string {
  if (!IFNAME_PATTERN.test(name) || name === '.' || name === '..') throw invalid(field, `${quote(name)} is not an interface name (1-15 of A-Z a-z 0-9 _ . -)`);
  return name;
}

/** checkMac requires six hex octets with colons; unicast when asked (the I/G bit clear, not all zero). */
export function checkMac(field: string, mac: string, unicast: boolean): string {
  if (!MAC_PATTERN.test(mac)) throw invalid(field, `${quote(mac)} is not a MAC address (six hex octets with colons)`);
  const lower = mac.toLowerCase();
  if (unicast && ((parseInt(lower.slice(0, 2), 16) & 1) !== 0 || lower === '00:00:00:00:00:00')) throw invalid(field, `${lower} is not a unicast MAC address`);
  return lower;
}

/** checkIp requires an IPv4 or IPv6 address (no zone, not unspecified); '' passes when optional. */
export function checkIp(field: string, s: string, optional = false): { address: string; family: 0 | 4 | 6 } {
  if (s === '' && optional) return { address: '', family: 0 };
  const family = isIP(s);
  if (family === 0 || s.includes('%')) throw invalid(field, `${quote(s)} is not an IP address`);
  if (family === 4 ? s === '0.0.0.0' : /^[0:]+$/.test(s)) throw invalid(field, `${s} is the unspecified address`);
  return { address: s, family: family as 4 | 6 };
}

function checkPrefix(field: string, prefixLen: number, family: 4 | 6, min: number): number {
  const max = family === 4 ? 32 : 128;
  if (!Number.isInteger(prefixLen) || prefixLen < min || prefixLen > max) throw invalid(field, `${prefixLen} is not a prefix length ${min}..${max}`);
  return prefixLen;
}

/** addressBytes is the address as bytes (4 or 16), for prefix arithmetic. */
export function addressBytes(address: string): number[] {
  if (isIP(address) === 4) return address.split('.').map(Number);
  const [head = '', tail = ''] = address.includes('::') ? address.split('::') : [address, ''];
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':')).flatMap((g) => (g.includes('.') ? addressBytes(g) : [parseInt(g, 16) >> 8, parseInt(g, 16) & 255]));
  const h = groups(head);
  const t = groups(tail);
  return [...h, ...new Array<number>(16 - h.length - t.length).fill(0), ...t];
}

function hostBitsClear(address: string, prefixLen: number): boolean {
  return addressBytes(address).every((b, i) => {
    const keep = Math.max(0, Math.min(8, prefixLen - 8 * i));
    return (b & (0xff >> keep)) === 0;
  });
}

/** checkInterface checks UpdateInterface's interface: name (not lo), unicast MAC, MTU 0 or 68..65535, addresses. */
export function checkInterface(i: { name: string; hwAddr: string; mtu: number; addresses: { address: string; prefixLen: number }[] } | undefined): InterfaceConfig {
  if (i === undefined) throw invalid('interface', 'is missing');
  const name = checkIfName('interface.name', i.name);
  if (name === 'lo') throw invalid('interface.name', 'must not be lo (the loopback device is the guest\'s own)');
  const mac = checkMac('interface.hw_addr', i.hwAddr, true);
  if (!Number.isInteger(i.mtu) || (i.mtu !== 0 && (i.mtu < 68 || i.mtu > 65535))) throw invalid('interface.mtu', `${i.mtu} is not 0 (leave as is) or 68..65535`);
  if (i.addresses.length > MAX_ADDRESSES) throw invalid('interface.addresses', `has ${i.addresses.length} entries, more than ${MAX_ADDRESSES}`);
  const seen = new Set<string>();
  const addresses = i.addresses.map((a, n): IpAddress => {
    const field = `interface.addresses[${n}]`;
    const { address, family } = checkIp(`${field}.address`, a.address) as { address: string; family: 4 | 6 };
    // 0 is what an unset proto3 field reads as: refusing it catches a forgotten prefix.
    const prefixLen = checkPrefix(`${field}.prefix_len`, a.prefixLen, family, 1);
    const key = addressBytes(address).join('.');
    if (seen.has(key)) throw invalid(`${field}.address`, `${address} is listed twice`);
    seen.add(key);
    return { address, prefixLen, family };
  });
  return { name, mac, mtu: i.mtu, addresses };
}

/**
 * checkRoute checks one route. dest is '' or 'default' (the default route: of the gateway's
 * family, else the source's, else IPv4) or a network in CIDR form without host bits.
 */
export function checkRoute(r: { dest: string; gateway: string; device: string; source: string; scope: number }, field: string): RouteConfig {
  const gw = checkIp(`${field}.gateway`, r.gateway, true);
  const src = checkIp(`${field}.source`, r.source, true);
  let dest = '';
  let prefixLen = 0;
  let family: 4 | 6;
  if (r.dest === '' || r.dest === 'default') {
    family = gw.family || src.family || 4;
    dest = family === 4 ? '0.0.0.0' : '::';
  } else {
    const slash = r.dest.lastIndexOf('/');
    if (slash < 0 || !/^\d{1,3}$/.test(r.dest.slice(slash + 1))) throw invalid(`${field}.dest`, `${quote(r.dest)} is not "default" or a network in CIDR form`);
    const ip = checkIpOrZero(`${field}.dest`, r.dest.slice(0, slash));
    family = ip.family;
    dest = ip.address;
    prefixLen = checkPrefix(`${field}.dest`, Number(r.dest.slice(slash + 1)), family, 0);
    if (!hostBitsClear(dest, prefixLen)) throw invalid(`${field}.dest`, `${r.dest} has host bits set`);
  }
  if (gw.family !== 0 && gw.family !== family) throw invalid(`${field}.gateway`, `${gw.address} is not of the destination's family`);
  if (src.family !== 0 && src.family !== family) throw invalid(`${field}.source`, `${src.address} is not of the destination's family`);
  if (!Number.isInteger(r.scope) || r.scope < 0 || r.scope > 255) throw invalid(`${field}.scope`, `${r.scope} is not a route scope 0..255`);
  const device = checkIfName(`${field}.device`, r.device);
  return { family, dest, prefixLen, gateway: gw.address, source: src.address, scope: r.scope, device };
}

function checkIpOrZero(field: string, s: string): { address: string; family: 4 | 6 } {
  const family = isIP(s);
  if (family === 0 || s.includes('%')) throw invalid(field, `${quote(s)} is not an IP address`);
  return { address: s, family: family as 4 | 6 };
}

/** checkRoutes checks UpdateRoutes' list (at most MAX_ROUTES). */
export function checkRoutes(routes: { dest: string; gateway: string; device: string; source: string; scope: number }[]): RouteConfig[] {
  if (routes.length > MAX_ROUTES) throw invalid('routes', `has ${routes.length} entries, more than ${MAX_ROUTES}`);
  return routes.map((r, n) => checkRoute(r, `routes[${n}]`));
}

/** checkNeighbors checks AddARPNeighbors' list (at most MAX_NEIGHBORS; state 0 or NUD_PERMANENT). */
export function checkNeighbors(list: { ipAddress: string; device: string; llAddress: string; state: number }[]): NeighborConfig[] {
  if (list.length > MAX_NEIGHBORS) throw invalid('neighbors', `has ${list.length} entries, more than ${MAX_NEIGHBORS}`);
  return list.map((n, i) => {
    const field = `neighbors[${i}]`;
    const { address } = checkIp(`${field}.ip_address`, n.ipAddress);
    const mac = checkMac(`${field}.ll_address`, n.llAddress, false);
    const device = checkIfName(`${field}.device`, n.device);
    if (n.state !== 0 && n.state !== NUD_PERMANENT) throw invalid(`${field}.state`, `${n.state} is not 0 or NUD_PERMANENT (${NUD_PERMANENT}): entries are permanent`);
    return { ip: address, device, mac };
  });
}
