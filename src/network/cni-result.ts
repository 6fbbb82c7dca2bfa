// The result a CNI plugin prints on success (CNI spec 1.0.0, section 5): its type, a
// validating parser, and the pick of the container interface's IPv4 address and gateway.

import { isIP, isIPv4 } from 'node:net';
import { Code, HakoError, errorf } from '../errors/index.js';

/** CniInterface is one interface an attachment created; sandbox is empty on the host. */
export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}

/** CniIpConfig is one address: CIDR form, its gateway, and an index into interfaces. */
export interface CniIpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}

/** CniRoute is a route the attachment created; without gw a gateway of ips may be used. */
export interface CniRoute {
  dst: string;
  gw?: string;
}

/** CniDns is the resolver configuration a network announces. */
export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/**
 * CniResult is a plugin's success result. Fields hako does not know (a newer spec's mtu,
 * a 0.3/0.4 result's ips[].version) stay on the object, since the next plugin in a chain
 * gets the result back as prevResult unchanged.
 */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
  [key: string]: unknown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCidr(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  const slash = v.indexOf('/');
  if (slash < 0 || !/^\d{1,3}$/.test(v.slice(slash + 1))) return false;
  const family = isIP(v.slice(0, slash));
  const prefix = Number(v.slice(slash + 1));
  return (family === 4 && prefix <= 32) || (family === 6 && prefix <= 128);
}

const optionalString = (v: unknown): boolean => v === undefined || typeof v === 'string';
const stringArray = (v: unknown): boolean => v === undefined || (Array.isArray(v) && v.every((s) => typeof s === 'string'));

/**
 * parseCniResult validates a decoded result; who names the plugin in errors. Plugins run
 * as root on the host, but a broken one must give an error here, not a crash later.
 */
export function parseCniResult(value: unknown, who: string): CniResult {
  const bad = (what: string): HakoError => errorf(Code.INTERNAL, `${who}: invalid CNI result: ${what}`);
  if (!isObject(value)) throw bad('not a JSON object');
  if (typeof value.cniVersion !== 'string') throw bad('"cniVersion" missing');
  const { interfaces, ips, routes, dns } = value;
  if (interfaces !== undefined) {
    if (!Array.isArray(interfaces)) throw bad('"interfaces" is not an array');
    interfaces.forEach((i: unknown, n) => {
      if (!isObject(i) || typeof i.name !== 'string' || !optionalString(i.mac) || !optionalString(i.sandbox)) {
        throw bad(`interfaces[${n}] needs a string "name" (and string "mac", "sandbox")`);
      }
    });
  }
  const count = Array.isArray(interfaces) ? interfaces.length : 0;
  if (ips !== undefined) {
    if (!Array.isArray(ips)) throw bad('"ips" is not an array');
    ips.forEach((ip: unknown, n) => {
      if (!isObject(ip) || !isCidr(ip.address)) throw bad(`ips[${n}].address is not an address in CIDR form`);
      if (ip.gateway !== undefined && (typeof ip.gateway !== 'string' || isIP(ip.gateway) === 0)) throw bad(`ips[${n}].gateway is not an IP address`);
      const idx = ip.interface;
      if (idx !== undefined && !(Number.isInteger(idx) && (idx as number) >= 0 && (idx as number) < count)) {
        throw bad(`ips[${n}].interface ${JSON.stringify(idx)} is not an index into interfaces (${count})`);
      }
    });
  }
  if (routes !== undefined) {
    if (!Array.isArray(routes)) throw bad('"routes" is not an array');
    routes.forEach((r: unknown, n) => {
      if (!isObject(r) || !isCidr(r.dst)) throw bad(`routes[${n}].dst is not a network in CIDR form`);
      if (r.gw !== undefined && (typeof r.gw !== 'string' || isIP(r.gw) === 0)) throw bad(`routes[${n}].gw is not an IP address`);
    });
  }
  if (dns !== undefined) {
    if (!isObject(dns) || !stringArray(dns.nameservers) || !optionalString(dns.domain) || !stringArray(dns.search) || !stringArray(dns.options)) {
      throw bad('"dns" must hold string lists nameservers, search, options and a string domain');
    }
  }
  return value as CniResult;
}

/** ContainerIpv4 is the container side of an attachment, as a guest needs it. */
export interface ContainerIpv4 {
  /** ifname is the interface in the container (CNI_IFNAME) and mac its hardware address. */
  ifname: string;
  mac?: string;
  /** address is the bare address and prefixLength its network's length (10.213.0.5, 16). */
  address: string;
  prefixLength: number;
  /** cidr is the address in CIDR form, as the result gave it. */
  cidr: string;
  /** gateway is the address's gateway, else the next hop of a default route, if any. */
  gateway?: string;
}

/**
 * containerIpv4 picks the IPv4 address of the interface ifname inside the container (an
 * interface with a sandbox) from a result, with its gateway. It throws NOT_FOUND, naming
 * what the result does hold, when there is none.
 */
export function containerIpv4(result: CniResult, ifname: string): ContainerIpv4 {
  const interfaces = result.interfaces ?? [];
  const index = interfaces.findIndex((i) => i.name === ifname && (i.sandbox ?? '') !== '');
  const ips = result.ips ?? [];
  const v4 = ips.filter((ip) => isIPv4(ip.address.split('/')[0] ?? ''));
  // A result from a plugin that does not set ips[].interface (or an abbreviated IPAM
  // result) can only be read unambiguously when it has a single IPv4 address.
  const mine = v4.find((ip) => ip.interface !== undefined && ip.interface === index && index >= 0)
    ?? (v4.length === 1 && v4[0]?.interface === undefined ? v4[0] : undefined);
  if (mine === undefined) {
    const held = ips.map((ip) => `${ip.address}${ip.interface !== undefined ? ` on ${interfaces[ip.interface]?.name ?? '?'}` : ''}`);
    throw errorf(Code.NOT_FOUND, `the CNI result has no IPv4 address on container interface ${ifname} (it holds ${held.length > 0 ? held.join(', ') : 'no addresses'})`);
  }
  const [address = '', prefixText = ''] = mine.address.split('/');
  const defaultGw = (result.routes ?? []).find((r) => r.dst === '0.0.0.0/0' && r.gw !== undefined && isIPv4(r.gw))?.gw;
  const gateway = mine.gateway !== undefined && isIPv4(mine.gateway) ? mine.gateway : defaultGw;
  const iface = index >= 0 ? interfaces[index] : undefined;
  return {
    ifname,
    ...(iface?.mac !== undefined ? { mac: iface.mac } : {}),
    address,
    prefixLength: Number(prefixText),
    cidr: `${address}/${prefixText}`,
    ...(gateway !== undefined ? { gateway } : {}),
  };
}
