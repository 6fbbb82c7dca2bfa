// The host's side of the guest network calls: plain types, their conversion to the agent's
// messages, and the checks on what the agent answers (the guest is untrusted: bounded, well-formed).

import { isIP } from 'node:net';
import { Code, HakoError } from '../errors/index.js';
import type { Interface, Route } from '../protocols/generated/hako/agent_pb.js';
import { checkString, invalidReply } from './validate.js';

/** GuestIpAddress is an address with its prefix length. */
export interface GuestIpAddress {
  address: string;
  prefixLen: number;
}

/** GuestInterface is a guest network interface: hwAddr finds it (six hex octets), name and the rest are set. */
export interface GuestInterface {
  name: string;
  hwAddr: string;
  /** mtu 0 leaves the MTU as it is (in a request). */
  mtu: number;
  addresses: GuestIpAddress[];
}

/**
 * GuestRoute is a main-table route. In a request dest is '' or 'default' (the default route) or
 * a network in CIDR form; the agent answers CIDR form ("0.0.0.0/0", "::/0" for defaults).
 * gateway and source (the preferred source address) are '' when absent; scope is rtm_scope
 * (0 universe, 253 link, 254 host).
 */
export interface GuestRoute {
  dest: string;
  gateway: string;
  device: string;
  source: string;
  scope: number;
}

/** GuestNeighbor is a permanent neighbour entry: ipAddress is at llAddress (a MAC) on device. */
export interface GuestNeighbor {
  ipAddress: string;
  device: string;
  llAddress: string;
}

/** MAX_GUEST_ADDRESSES, MAX_GUEST_ROUTES and MAX_GUEST_NEIGHBORS mirror the agent's request limits. */
export const MAX_GUEST_ADDRESSES = 16;
export const MAX_GUEST_ROUTES = 64;
export const MAX_GUEST_NEIGHBORS = 256;

/** Bounds on answers: a guest may hold more than hako configured, but not without limit. */
export const MAX_REPLY_INTERFACES = 1024;
export const MAX_REPLY_ADDRESSES = 256;
export const MAX_REPLY_ROUTES = 4096;

/** Names the agent reports: 1-15 printable characters without spaces (the kernel's IFNAMSIZ). */
const NAME_PATTERN = /^[!-~]{1,15}$/;
const MAC_PATTERN = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function invalidArgument(what: string): HakoError {
  return new HakoError(Code.INVALID_ARGUMENT, what);
}

function uint(field: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw invalidArgument(`${field} ${v} is not an integer 0..${max}`);
  return v;
}

function maxCount(field: string, n: number, max: number): void {
  if (n > max) throw invalidArgument(`${field} has ${n} entries, more than ${max}`);
}

/** interfaceRequest converts i for UpdateInterface; the agent checks the contents, this the shape. */
export function interfaceRequest(i: GuestInterface): { name: string; hwAddr: string; mtu: number; addresses: GuestIpAddress[] } {
  maxCount('interface.addresses', i.addresses.length, MAX_GUEST_ADDRESSES);
  return {
    name: i.name, hwAddr: i.hwAddr, mtu: uint('interface.mtu', i.mtu, 65535),
    addresses: i.addresses.map((a, n) => ({ address: a.address, prefixLen: uint(`interface.addresses[${n}].prefix_len`, a.prefixLen, 128) })),
  };
}

/** routesRequest converts routes for UpdateRoutes. */
export function routesRequest(routes: GuestRoute[]): GuestRoute[] {
  maxCount('routes', routes.length, MAX_GUEST_ROUTES);
  return routes.map((r, n) => ({ dest: r.dest, gateway: r.gateway, device: r.device, source: r.source, scope: uint(`routes[${n}].scope`, r.scope, 255) }));
}

/** neighborsRequest converts neighbours for AddARPNeighbors (state 0: permanent). */
export function neighborsRequest(list: GuestNeighbor[]): { ipAddress: string; device: string; llAddress: string; state: number }[] {
  maxCount('neighbors', list.length, MAX_GUEST_NEIGHBORS);
  return list.map((n) => ({ ipAddress: n.ipAddress, device: n.device, llAddress: n.llAddress, state: 0 }));
}

function checkName(method: string, field: string, name: string): string {
  if (!NAME_PATTERN.test(name)) throw invalidReply(method, `${field} ${JSON.stringify(name.slice(0, 20))} is not an interface name`);
  return name;
}

function checkAddress(method: string, field: string, address: string): 4 | 6 {
  checkString(method, field, address, 45);
  const family = isIP(address);
  if (family === 0) throw invalidReply(method, `${field} ${JSON.stringify(address)} is not an IP address`);
  return family as 4 | 6;
}

/** checkInterface checks one interface of an answer; an empty hwAddr is a link without a MAC. */
export function checkInterface(method: string, i: Interface | undefined): GuestInterface {
  if (i === undefined) throw invalidReply(method, 'the interface is missing');
  const name = checkName(method, 'name', i.name);
  if (i.hwAddr !== '' && !MAC_PATTERN.test(i.hwAddr)) throw invalidReply(method, `hw_addr of ${name} is not a MAC address`);
  if (i.addresses.length > MAX_REPLY_ADDRESSES) throw invalidReply(method, `${name} has ${i.addresses.length} addresses, more than ${MAX_REPLY_ADDRESSES}`);
  const addresses = i.addresses.map((a) => {
    const family = checkAddress(method, `an address of ${name}`, a.address);
    if (a.prefixLen > (family === 4 ? 32 : 128)) throw invalidReply(method, `prefix length ${a.prefixLen} of ${a.address} is out of range`);
    return { address: a.address, prefixLen: a.prefixLen };
  });
  return { name, hwAddr: i.hwAddr, mtu: i.mtu, addresses };
}

/** checkUpdatedInterface also requires the answer to be the interface asked for (name and MAC). */
export function checkUpdatedInterface(method: string, asked: GuestInterface, i: Interface | undefined): GuestInterface {
  const got = checkInterface(method, i);
  if (got.name !== asked.name || got.hwAddr !== asked.hwAddr.toLowerCase()) {
    throw invalidReply(method, `answered for ${got.name} (${got.hwAddr}), not ${asked.name} (${asked.hwAddr.toLowerCase()})`);
  }
  return got;
}

/** checkInterfaces checks ListInterfaces' answer. */
export function checkInterfaces(method: string, list: Interface[]): GuestInterface[] {
  if (list.length > MAX_REPLY_INTERFACES) throw invalidReply(method, `${list.length} interfaces, more than ${MAX_REPLY_INTERFACES}`);
  return list.map((i) => checkInterface(method, i));
}

/** checkRoutes checks a Routes answer: dest in CIDR form, addresses of one family, device names. */
export function checkRoutes(method: string, list: Route[]): GuestRoute[] {
  if (list.length > MAX_REPLY_ROUTES) throw invalidReply(method, `${list.length} routes, more than ${MAX_REPLY_ROUTES}`);
  return list.map((r) => {
    const slash = r.dest.lastIndexOf('/');
    const prefix = r.dest.slice(slash + 1);
    const family = checkAddress(method, 'route dest', slash < 0 ? r.dest : r.dest.slice(0, slash));
    if (slash < 0 || !/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) throw invalidReply(method, `route dest ${JSON.stringify(r.dest)} is not in CIDR form`);
    for (const [field, v] of [['gateway', r.gateway], ['source', r.source]] as const) {
      if (v !== '' && checkAddress(method, `route ${field}`, v) !== family) throw invalidReply(method, `route ${field} ${v} is not of the family of ${r.dest}`);
    }
    if (r.scope > 255) throw invalidReply(method, `route scope ${r.scope} is out of range`);
    return { dest: r.dest, gateway: r.gateway, device: checkName(method, 'route device', r.device), source: r.source, scope: r.scope };
  });
}
