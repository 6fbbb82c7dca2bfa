// Typed network requests to hako-guestctl (rtnetlink in the guest) and the parsing of its dump
// lines into links, addresses and routes. The wire lines are documented in hako-guestctl.c.

import { isIP } from 'node:net';
import { Code, HakoError } from '../../errors/index.js';
import { GuestCtlError, type GuestCtl } from './guestctl.js';

/** IFF_UP is the interface flag of a link that is administratively up. */
export const IFF_UP = 0x1;
/** RTPROT_KERNEL marks routes the kernel made itself (the link route of an address, fe80::/64). */
export const RTPROT_KERNEL = 2;
/** RTN_UNICAST is the type of an ordinary route (others: local, blackhole, multicast, ...). */
export const RTN_UNICAST = 1;
/** IFAPROT_KERNEL_LO marks the loopback addresses the kernel made. */
export const IFAPROT_KERNEL_LO = 1;
/** IFAPROT_KERNEL_LL marks an IPv6 link-local address the kernel made when the link came up. */
export const IFAPROT_KERNEL_LL = 3;

/** LinkInfo is one "link" line: a network interface as the kernel has it. */
export interface LinkInfo {
  index: number;
  name: string;
  /** mac is the hardware address as hex octets with colons ('' when the link has none). */
  mac: string;
  mtu: number;
  flags: number;
}

/** AddrInfo is one "addr" line: an IPv4 or IPv6 address of a link. */
export interface AddrInfo {
  index: number;
  address: string;
  prefixLen: number;
  /** proto is the address's origin (ifa_proto): 0 unknown or user, IFAPROT_KERNEL_LL, ... */
  proto: number;
}

/** RouteInfo is one "route" line: a main-table route. */
export interface RouteInfo {
  family: 4 | 6;
  /** dest is the destination network; prefixLen 0 is the default route. */
  dest: string;
  prefixLen: number;
  gateway: string;
  source: string;
  scope: number;
  /** index is the output link (0 for a multipath route). */
  index: number;
  protocol: number;
  type: number;
}

/** RouteSpec is what addRoute installs (addresses all of one family, dest without host bits). */
export interface RouteSpec {
  dest: string;
  prefixLen: number;
  gateway: string;
  source: string;
  scope: number;
  index: number;
}

/** DUMP_ATTEMPTS: a dump the kernel flags as inconsistent (EINTR) is asked for again, this often. */
const DUMP_ATTEMPTS = 3;
const EINTR = 4;

function bad(line: string, why: string): HakoError {
  return new HakoError(Code.INTERNAL, `hako-guestctl: malformed answer line ${JSON.stringify(line.slice(0, 120))}: ${why}`);
}

function num(line: string, s: string | undefined, max: number): number {
  if (s === undefined || !/^\d{1,10}$/.test(s) || Number(s) > max) throw bad(line, `${s ?? 'nothing'} is not a number up to ${max}`);
  return Number(s);
}

function words(line: string, tag: string, n: number): string[] {
  const w = line.split(' ');
  if (w[0] !== tag || w.length !== n) throw bad(line, `want "${tag}" and ${n - 1} fields`);
  return w;
}

function addr(line: string, s: string, optional: boolean): string {
  if (optional && s === '-') return '';
  if (isIP(s) === 0) throw bad(line, `${s} is not an address`);
  return s;
}

/** parseLink reads "link IDX NAME HWADDR MTU FLAGS"; a hardware address that is not 6 octets reads as ''. */
export function parseLink(line: string): LinkInfo {
  const w = words(line, 'link', 6);
  const mac = w[3]!;
  if (mac !== '-' && !/^[0-9a-f]{2}(:[0-9a-f]{2})*$/.test(mac)) throw bad(line, 'bad hardware address');
  if (!/^[!-~]{1,15}$/.test(w[2]!)) throw bad(line, 'bad name');
  return { index: num(line, w[1], 2 ** 31 - 1), name: w[2]!, mac: mac.length === 17 ? mac : '', mtu: num(line, w[4], 2 ** 32 - 1), flags: num(line, w[5], 2 ** 32 - 1) };
}

/** parseAddr reads "addr IDX ADDR PLEN PROTO". */
export function parseAddr(line: string): AddrInfo {
  const w = words(line, 'addr', 5);
  const address = addr(line, w[2]!, false);
  return { index: num(line, w[1], 2 ** 31 - 1), address, prefixLen: num(line, w[3], isIP(address) === 4 ? 32 : 128), proto: num(line, w[4], 255) };
}

/** parseRoute reads "route DST PLEN GW SRC SCOPE OIF PROTO TYPE". */
export function parseRoute(line: string): RouteInfo {
  const w = words(line, 'route', 9);
  const dest = addr(line, w[1]!, false);
  const family = isIP(dest) as 4 | 6;
  const gateway = addr(line, w[3]!, true);
  const source = addr(line, w[4]!, true);
  if ((gateway !== '' && isIP(gateway) !== family) || (source !== '' && isIP(source) !== family)) throw bad(line, 'addresses of two families');
  return {
    family, dest, prefixLen: num(line, w[2], family === 4 ? 32 : 128), gateway, source,
    scope: num(line, w[5], 255), index: num(line, w[6], 2 ** 31 - 1), protocol: num(line, w[7], 255), type: num(line, w[8], 255),
  };
}

/** NetOps are the network operations GuestNetwork is built on (NetCtl; a fake in tests). */
export interface NetOps {
  linkUp(index: number): Promise<void>;
  linkDown(index: number): Promise<void>;
  rename(index: number, name: string): Promise<void>;
  setMtu(index: number, mtu: number): Promise<void>;
  addAddress(index: number, address: string, prefixLen: number): Promise<void>;
  deleteAddress(index: number, address: string, prefixLen: number): Promise<void>;
  flushRoutes(index: number): Promise<void>;
  addRoute(r: RouteSpec): Promise<void>;
  setNeighbor(index: number, ip: string, mac: string): Promise<void>;
  links(): Promise<LinkInfo[]>;
  addresses(): Promise<AddrInfo[]>;
  routes(): Promise<RouteInfo[]>;
}

/** NetCtl sends the network requests of hako-guestctl: one line each, answered in order. */
export class NetCtl implements NetOps {
  constructor(private readonly ctl: GuestCtl) {}

  /** linkUp sets IFF_UP on the link. */
  async linkUp(index: number): Promise<void> {
    await this.ctl.call('linkup', [String(index)]);
  }

  /** linkDown clears IFF_UP (the kernel then drops the link's routes, neighbours and IPv6 addresses). */
  async linkDown(index: number): Promise<void> {
    await this.ctl.call('linkdown', [String(index)]);
  }

  /** rename names the link (it must be down on Linux 6.1). */
  async rename(index: number, name: string): Promise<void> {
    await this.ctl.call('linkname', [String(index), name]);
  }

  /** setMtu sets the link's MTU (68..65535). */
  async setMtu(index: number, mtu: number): Promise<void> {
    await this.ctl.call('linkmtu', [String(index), String(mtu)]);
  }

  /** addAddress adds address/prefixLen to the link. */
  async addAddress(index: number, address: string, prefixLen: number): Promise<void> {
    await this.ctl.call('addradd', [String(index), address, String(prefixLen)]);
  }

  /** deleteAddress deletes address/prefixLen from the link (one already gone is no error). */
  async deleteAddress(index: number, address: string, prefixLen: number): Promise<void> {
    await this.ctl.call('addrdel', [String(index), address, String(prefixLen)]);
  }

  /** flushRoutes deletes the main table's routes out of the link but the kernel's link routes. */
  async flushRoutes(index: number): Promise<void> {
    await this.ctl.call('routeflush', [String(index)]);
  }

  /** addRoute adds or replaces a main-table unicast route. */
  async addRoute(r: RouteSpec): Promise<void> {
    await this.ctl.call('routeadd', [r.dest, String(r.prefixLen), r.gateway || '-', r.source || '-', String(r.scope), String(r.index)]);
  }

  /** setNeighbor adds or replaces a permanent neighbour entry ip -> mac on the link. */
  async setNeighbor(index: number, ip: string, mac: string): Promise<void> {
    await this.ctl.call('neighset', [String(index), ip, mac]);
  }

  /** links lists every link, by index (the kernel dumps them in hash order). */
  async links(): Promise<LinkInfo[]> {
    return (await this.dump('links', parseLink)).sort((a, b) => a.index - b.index);
  }

  /** addresses lists every IPv4 and IPv6 address. */
  addresses(): Promise<AddrInfo[]> {
    return this.dump('addrs', parseAddr);
  }

  /** routes lists the main table's IPv4 and IPv6 routes. */
  routes(): Promise<RouteInfo[]> {
    return this.dump('routes', parseRoute);
  }

  private async dump<T>(op: string, parse: (line: string) => T): Promise<T[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.ctl.call(op)).map(parse);
      } catch (err) {
        // EINTR: the tables changed during the dump, which the kernel then marks as inconsistent.
        if (attempt >= DUMP_ATTEMPTS || !(err instanceof GuestCtlError) || err.errno !== EINTR) throw err;
      }
    }
  }
}
