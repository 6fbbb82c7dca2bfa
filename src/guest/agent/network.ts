// The guest side of networking (UpdateInterface, UpdateRoutes, AddARPNeighbors, ListInterfaces,
// ListRoutes): the root network namespace, which containers share, configured through hako-guestctl.

import { setTimeout as sleep } from 'node:timers/promises';
import { Code, HakoError } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import { addressBytes, checkInterface, checkNeighbors, checkRoutes, type IpAddress, type RouteConfig } from './net-args.js';
import { IFAPROT_KERNEL_LL, IFAPROT_KERNEL_LO, IFF_UP, RTN_UNICAST, RTPROT_KERNEL, type AddrInfo, type LinkInfo, type NetOps, type RouteInfo } from './net-ctl.js';

/** LINK_WAIT_MS bounds UpdateInterface's wait for a hot-plugged NIC to appear (PCI probe, driver). */
export const LINK_WAIT_MS = 10_000;

/** GuestInterface is an interface as the agent reports it (the Interface message's fields). */
export interface GuestInterface {
  name: string;
  hwAddr: string;
  mtu: number;
  addresses: { address: string; prefixLen: number }[];
}

/** GuestRoute is a route as the agent reports it: dest in CIDR form ("0.0.0.0/0", "::/0" for defaults). */
export interface GuestRoute {
  dest: string;
  gateway: string;
  device: string;
  source: string;
  scope: number;
}

/**
 * GuestNetwork owns the guest's network configuration. Its operations run one at a time (each
 * is several helper requests that must not interleave), and it remembers which links
 * UpdateInterface configured, whose routes UpdateRoutes replaces.
 */
export class GuestNetwork {
  private readonly configured = new Set<number>();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly net: NetOps, private readonly log: Logger, private readonly linkWaitMs = LINK_WAIT_MS) {}

  /**
   * updateInterface waits (up to linkWaitMs) for the link with the interface's MAC, names it,
   * sets its MTU, replaces its addresses (not the kernel's IPv6 link-local one) and sets it up;
   * it returns the link as read back. Renaming a link that is up sets it down first, which
   * drops its routes and neighbour entries: UpdateRoutes and AddARPNeighbors come after.
   */
  async updateInterface(req: Parameters<typeof checkInterface>[0], signal?: AbortSignal): Promise<GuestInterface> {
    const want = checkInterface(req);
    return this.serial(async () => {
      const t0 = Date.now();
      const { link, links } = await this.waitForMac(want.mac, signal);
      const waitedMs = Date.now() - t0;
      const taken = links.find((l) => l.name === want.name && l.index !== link.index);
      if (taken !== undefined) throw new HakoError(Code.ALREADY_EXISTS, `interface.name ${want.name} is taken by another link (index ${taken.index}, MAC ${taken.mac || 'none'})`);
      // Each step's time goes to the log: under TCG a netlink round trip is milliseconds.
      const stepsMs: Record<string, number> = {};
      const step: Step = async (key, what, fn) => {
        const s0 = Date.now();
        await fn().catch((err: unknown) => { throw HakoError.wrap(err, `UpdateInterface ${want.name} (${want.mac}): ${what}`); });
        stepsMs[key] = (stepsMs[key] ?? 0) + Date.now() - s0;
      };
      if (link.name !== want.name) {
        // Linux 6.1 renames only links that are down.
        if ((link.flags & IFF_UP) !== 0) await step('down', 'setting the link down', () => this.net.linkDown(link.index));
        await step('rename', `renaming ${link.name}`, () => this.net.rename(link.index, want.name));
      }
      if (want.mtu !== 0 && want.mtu !== link.mtu) await step('mtu', `setting the MTU to ${want.mtu}`, () => this.net.setMtu(link.index, want.mtu));
      await step('addresses', 'replacing the addresses', () => this.replaceAddresses(link.index, want.addresses));
      await step('up', 'setting the link up', () => this.net.linkUp(link.index));
      this.configured.add(link.index);
      const r0 = Date.now();
      const [after] = await this.interfaces((l) => l.index === link.index);
      if (after === undefined) throw new HakoError(Code.NOT_FOUND, `UpdateInterface ${want.name}: the link went away`);
      stepsMs.readBack = Date.now() - r0;
      this.log.info('interface updated', { name: want.name, mac: want.mac, mtu: after.mtu, addresses: want.addresses.length, waitedMs, stepsMs, ms: Date.now() - t0 });
      return after;
    });
  }

  /**
   * updateRoutes replaces the main-table routes of the links the routes name and of those
   * UpdateInterface configured (the kernel's link routes stay), adding link-scope routes (no
   * gateway) before routes via a gateway, which need them; it returns listRoutes().
   */
  async updateRoutes(routes: Parameters<typeof checkRoutes>[0]): Promise<GuestRoute[]> {
    const want = checkRoutes(routes);
    return this.serial(async () => {
      const t0 = Date.now();
      const byName = new Map((await this.net.links()).map((l) => [l.name, l]));
      const indexOf = (r: RouteConfig, n: number): number => {
        const l = byName.get(r.device);
        if (l === undefined) throw new HakoError(Code.NOT_FOUND, `routes[${n}].device ${r.device}: no such link`);
        return l.index;
      };
      const targets = want.map((r, n) => ({ r, n, index: indexOf(r, n) }));
      const present = new Set([...byName.values()].map((l) => l.index));
      const flush = new Set([...targets.map((t) => t.index), ...[...this.configured].filter((i) => present.has(i))]);
      for (const index of flush) {
        await this.net.flushRoutes(index).catch((err: unknown) => { throw HakoError.wrap(err, `UpdateRoutes: removing the routes of link ${index}`); });
      }
      const ordered = [...targets.filter((t) => t.r.gateway === ''), ...targets.filter((t) => t.r.gateway !== '')];
      for (const { r, n, index } of ordered) {
        await this.net.addRoute({ ...r, index }).catch((err: unknown) => {
          throw HakoError.wrap(err, `UpdateRoutes: routes[${n}] ${r.dest}/${r.prefixLen}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.device}`);
        });
      }
      this.log.info('routes updated', { routes: want.length, flushedLinks: flush.size, ms: Date.now() - t0 });
      return this.routes();
    });
  }

  /** addNeighbors adds or replaces permanent neighbour entries. */
  async addNeighbors(list: Parameters<typeof checkNeighbors>[0]): Promise<void> {
    const want = checkNeighbors(list);
    return this.serial(async () => {
      const byName = new Map((await this.net.links()).map((l) => [l.name, l.index]));
      for (const [n, nb] of want.entries()) {
        const index = byName.get(nb.device);
        if (index === undefined) throw new HakoError(Code.NOT_FOUND, `neighbors[${n}].device ${nb.device}: no such link`);
        await this.net.setNeighbor(index, nb.ip, nb.mac).catch((err: unknown) => { throw HakoError.wrap(err, `AddARPNeighbors: neighbors[${n}] ${nb.ip}`); });
      }
    });
  }

  /**
   * listInterfaces reports every link with its addresses, leaving out the IPv6 link-local
   * addresses the kernel makes itself (they appear whenever a link gets a carrier, so they are
   * not configuration, and UpdateInterface leaves them alone).
   */
  listInterfaces(): Promise<GuestInterface[]> {
    return this.serial(() => this.interfaces(() => true));
  }

  /**
   * listRoutes reports the main table's IPv4 and IPv6 unicast routes with a single output link.
   * Left out: the kernel's IPv6 routes of fe80::/64 and of the loopback device (present in every
   * guest); other route types and multipath routes, which a Route message cannot describe.
   */
  listRoutes(): Promise<GuestRoute[]> {
    return this.serial(() => this.routes());
  }

  /**
   * replaceAddresses leaves the link with exactly the wanted addresses, changing only what
   * differs: deleting a link's last IPv4 address makes the kernel drop every IPv4 route and
   * neighbour entry of the link, so a repeated UpdateInterface must not delete and re-add.
   */
  private async replaceAddresses(index: number, want: IpAddress[]): Promise<void> {
    const key = (address: string, prefixLen: number): string => `${addressBytes(address).join('.')}/${prefixLen}`;
    const ours = async (): Promise<AddrInfo[]> => (await this.net.addresses()).filter((a) => a.index === index && a.proto !== IFAPROT_KERNEL_LL && a.proto !== IFAPROT_KERNEL_LO);
    const wanted = new Set(want.map((a) => key(a.address, a.prefixLen)));
    let have = await ours();
    const stale = have.filter((a) => !wanted.has(key(a.address, a.prefixLen)));
    for (const a of stale) await this.net.deleteAddress(index, a.address, a.prefixLen).catch((err: unknown) => { throw HakoError.wrap(err, `removing ${a.address}/${a.prefixLen}`); });
    // Deleting an IPv4 primary address can take secondaries with it: look again.
    if (stale.length > 0) have = await ours();
    const present = new Set(have.map((a) => key(a.address, a.prefixLen)));
    for (const a of want) {
      if (!present.has(key(a.address, a.prefixLen))) await this.net.addAddress(index, a.address, a.prefixLen).catch((err: unknown) => { throw HakoError.wrap(err, `adding ${a.address}/${a.prefixLen}`); });
    }
  }

  private async interfaces(which: (l: LinkInfo) => boolean): Promise<GuestInterface[]> {
    const links = (await this.net.links()).filter(which);
    const addrs = await this.net.addresses();
    const of = (index: number): AddrInfo[] => addrs.filter((a) => a.index === index && a.proto !== IFAPROT_KERNEL_LL);
    return links.map((l) => ({ name: l.name, hwAddr: l.mac, mtu: l.mtu, addresses: of(l.index).map((a) => ({ address: a.address, prefixLen: a.prefixLen })) }));
  }

  private async routes(): Promise<GuestRoute[]> {
    const names = new Map((await this.net.links()).map((l) => [l.index, l.name]));
    const routes = await this.net.routes();
    return routes.filter((r) => r.type === RTN_UNICAST && names.has(r.index) && !kernelNoise(r, names.get(r.index)!)).map((r) => ({
      dest: `${r.dest}/${r.prefixLen}`, gateway: r.gateway, device: names.get(r.index)!, source: r.source, scope: r.scope,
    }));
  }

  private async waitForMac(mac: string, signal?: AbortSignal): Promise<{ link: LinkInfo; links: LinkInfo[] }> {
    const deadline = Date.now() + this.linkWaitMs;
    for (let delayMs = 10; ; delayMs = Math.min(delayMs * 2, 200)) {
      // The lowest index wins when links share a MAC (a VLAN or bridge on top of the NIC).
      const links = await this.net.links();
      const link = links.find((l) => l.mac === mac);
      if (link !== undefined) return { link, links };
      const left = deadline - Date.now();
      if (left <= 0) throw new HakoError(Code.NOT_FOUND, `UpdateInterface: no link with MAC ${mac} appeared within ${this.linkWaitMs} ms`);
      await sleep(Math.min(delayMs, left), undefined, { signal }).catch((err: unknown) => { throw HakoError.wrap(err, `UpdateInterface: waiting for a link with MAC ${mac}`); });
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => {});
    return run;
  }
}

/** Step runs one part of an update, adding what failed to its error and its time to the log. */
type Step = (key: string, what: string, fn: () => Promise<void>) => Promise<void>;

function kernelNoise(r: RouteInfo, device: string): boolean {
  return r.family === 6 && r.protocol === RTPROT_KERNEL && (device === 'lo' || (r.dest === 'fe80::' && r.prefixLen === 64));
}
