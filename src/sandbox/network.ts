// A sandbox's pod network: the namespace holder (whose pid the shim reports), the interfaces of
// the namespace mirrored into the VM through taps and tc, and the guest configured to match.
// sync() is a reconcile: it plugs what is new, reconfigures what changed, and unplugs what left.

import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { hasNicHotplug, type NetTapDevice, type Vm } from '../hypervisor/index.js';
import { endpointsOf, inspectNetns, mirror, moveTap, NetnsHolder, parseLinks, tapName, unmirror, type NetLink, type NetnsTarget, type NetnsView, type NetRoute } from '../network/index.js';
import { execTool } from '../storage/exec.js';
import { NIC_SLOTS } from '../factory/index.js';
import { packageRoot } from '../image/index.js';
import { writeNetworkRecord, type NetworkEndpointRecord, type NetworkRecord } from './network-record.js';
import { attachHakoNetwork } from './pod-cni.js';
import type { SandboxCreateOptions } from './sandbox-options.js';
import type { HakoConfig } from '../config/index.js';

/** netnsHelperPath is hako-netns, built by `npm run build` into dist/bin. */
export function netnsHelperPath(): string {
  return `${packageRoot()}/dist/bin/hako-netns`;
}

/** GuestNetwork is the part of the agent API the pod network drives. */
export interface GuestNetwork {
  updateInterface(i: { name: string; hwAddr: string; mtu: number; addresses: Array<{ address: string; prefixLen: number }> }, opts?: { signal?: AbortSignal }): Promise<unknown>;
  updateRoutes(routes: Array<{ dest: string; gateway: string; device: string; source: string; scope: number }>, opts?: { signal?: AbortSignal }): Promise<unknown>;
  addArpNeighbors(n: Array<{ ipAddress: string; device: string; llAddress: string }>, opts?: { signal?: AbortSignal }): Promise<void>;
}

/** SYNC_DEBOUNCE_MS lets a burst of netlink changes (CNI ADD moves, renames, addresses) settle. */
const SYNC_DEBOUNCE_MS = 50;

interface Attached {
  record: NetworkEndpointRecord;
  slot: number;
  /** pushed is the guest configuration last sent, to skip unchanged ones. */
  pushed: string;
}

/** SandboxNetwork owns one sandbox's namespace holder and mirrored interfaces. */
export class SandboxNetwork {
  private readonly attached = new Map<number, Attached>();
  private pushedRoutes = '';
  private vm: Vm | undefined;
  private guest: GuestNetwork | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastView: NetnsView | undefined;
  /** dirty is set by a change in the namespace that no reconcile has read yet. */
  private dirty = false;
  private watching = false;
  private caughtUp = false;

  private constructor(
    readonly holder: NetnsHolder,
    private readonly sandboxId: string,
    private readonly target: NetnsTarget,
    private readonly log: Logger,
    private readonly save: (r: NetworkRecord) => Promise<void>,
  ) {}

  /**
   * open starts the namespace holder (a new namespace, or the one at target.path) and records it
   * in `<dir>/network.json`; extra fields (hako run's CNI attachment) are kept in every rewrite.
   */
  static async open(o: { helper: string; sandboxId: string; target: NetnsTarget; log: Logger; signal?: AbortSignal; dir: string; extra?: Partial<NetworkRecord> }): Promise<SandboxNetwork> {
    const log = o.log.child({ subsystem: 'network' });
    const holder = await NetnsHolder.start(o.helper, o.target, { log, signal: o.signal });
    const net = new SandboxNetwork(holder, o.sandboxId, o.target, log, (r) => writeNetworkRecord(o.dir, { ...o.extra, ...r }));
    try {
      await net.save(net.record());
    } catch (err) {
      await holder.close();
      throw err;
    }
    return net;
  }

  /** hostPid is the holder's pid: a host process in the pod's network namespace. */
  get hostPid(): number {
    return this.holder.pid;
  }

  /** record is what cleanupSandbox needs to undo this network without the object. */
  record(): NetworkRecord {
    return {
      version: 1,
      netnsPath: this.target.kind === 'join' ? this.target.path : undefined,
      holderPid: this.holder.pid,
      endpoints: [...this.attached.values()].map((a) => a.record),
    };
  }

  /**
   * coldNics inspects the namespace and names a tap for each interface, for a VM that boots
   * cold (its NICs are on the command line). It validates every interface first.
   */
  async coldNics(signal?: AbortSignal): Promise<NetTapDevice[]> {
    this.lastView = await inspectNetns(this.holder.path, { signal });
    return endpointsOf(this.lastView.links).slice(0, NIC_SLOTS).map((l, i) => ({ kind: 'net-tap', ifname: tapName(this.sandboxId, i), mac: l.mac }));
  }

  /**
   * attach joins the VM: NICs that were plugged at boot (coldPlugged) get their taps moved and
   * mirrored, the rest are hot-plugged; then the guest is configured. Later changes in the
   * namespace are followed when watch is set (a namespace CNI fills after the task exists).
   */
  async attach(vm: Vm, guest: GuestNetwork, o: { coldPlugged: NetTapDevice[]; watch: boolean; signal?: AbortSignal }): Promise<void> {
    this.vm = vm;
    this.guest = guest;
    if (o.watch) {
      this.watching = true;
      this.holder.onChange(() => {
        this.dirty = true;
        this.schedule();
      });
    }
    // On the sync chain, so close() and later syncs wait for it.
    const run = this.syncing.then(async () => {
      const view = this.lastView ?? (await inspectNetns(this.holder.path, { signal: o.signal }));
      const eps = endpointsOf(view.links);
      for (const [i, nic] of o.coldPlugged.entries()) {
        const link = eps.find((l) => l.mac === nic.mac);
        if (!link) throw errorf(Code.FAILED_PRECONDITION, `interface with MAC ${nic.mac} left the pod namespace during boot`);
        await this.join(link, nic.ifname, i, false, o.signal);
      }
      await this.reconcile(view, o.signal);
    });
    this.syncing = run.catch(() => {});
    await run;
  }

  /**
   * catchUp makes a followed namespace and the VM match before a container starts: a reconcile
   * at the first start and whenever the namespace changed since the last one, else only the one
   * in flight. A namespace that was complete at create (CRI, podman, hako run) needs none.
   */
  async catchUp(signal?: AbortSignal): Promise<void> {
    if (!this.watching) return;
    // The first start always reads the namespace: CNI's last change may not have reached us yet.
    if (this.dirty || !this.caughtUp) await this.sync(signal);
    else await this.syncing;
    this.caughtUp = true;
  }

  /** sync reconciles once now (after queued syncs); callers await it before a container starts. */
  sync(signal?: AbortSignal): Promise<void> {
    const run = this.syncing.then(async () => {
      if (this.closed || !this.vm) return;
      this.dirty = false;
      await this.reconcile(await inspectNetns(this.holder.path, { signal }), signal);
    });
    this.syncing = run.catch(() => {});
    return run;
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.sync().catch((err: unknown) => this.log.warn('following a change of the pod network failed', { err }));
    }, SYNC_DEBOUNCE_MS);
  }

  private freeSlot(): number {
    const used = new Set([...this.attached.values()].map((a) => a.slot));
    for (let s = 0; s < NIC_SLOTS; s++) if (!used.has(s)) return s;
    throw errorf(Code.RESOURCE_EXHAUSTED, `the pod has more than ${NIC_SLOTS} interfaces; hako plugs at most ${NIC_SLOTS}`);
  }

  /** podAddresses are the IPv4 addresses of the pod's interfaces, as last seen. */
  podAddresses(): string[] {
    const links = this.lastView ? endpointsOf(this.lastView.links) : [];
    return links.flatMap((l) => l.addresses.filter((a) => a.family === 4).map((a) => a.address));
  }

  private async reconcile(view: NetnsView, signal?: AbortSignal): Promise<void> {
    this.lastView = view;
    const eps = endpointsOf(view.links);
    for (const [index, a] of [...this.attached]) {
      if (!eps.some((l) => l.index === index)) await this.detach(index, a);
    }
    for (const link of eps) {
      if (this.attached.has(link.index)) continue;
      const slot = this.freeSlot();
      await this.join(link, tapName(this.sandboxId, slot), slot, true, signal);
    }
    await this.configureGuest(view, signal);
  }

  private async join(link: NetLink, tap: string, slot: number, hotplug: boolean, signal?: AbortSignal): Promise<void> {
    const vm = this.vm!;
    const record: NetworkEndpointRecord = { link: link.name, index: link.index, mac: link.mac, tap };
    const t0 = performance.now();
    if (hotplug) {
      if (!hasNicHotplug(vm)) throw errorf(Code.UNIMPLEMENTED, 'the hypervisor cannot hot-plug NICs');
      await vm.plugNic({ ifname: tap, mac: link.mac, slot }, { signal });
    }
    const plugged = performance.now();
    this.attached.set(link.index, { record, slot, pushed: '' });
    try {
      await moveTap(tap, this.holder.path, link.mtu, signal);
      const moved = performance.now();
      await mirror(this.holder.path, link.name, tap, signal);
      await this.save(this.record());
      this.log.info('interface mirrored into the VM', {
        link: link.name, mac: link.mac, tap, hotplug, slot,
        plugMs: Math.round(plugged - t0), moveMs: Math.round(moved - plugged), mirrorMs: Math.round(performance.now() - moved),
      });
    } catch (err) {
      await this.detach(link.index, this.attached.get(link.index)!).catch(() => {});
      throw HakoError.wrap(err, `joining interface ${link.name} to the VM`);
    }
  }

  private async detach(index: number, a: Attached): Promise<void> {
    this.attached.delete(index);
    await unmirror(this.holder.path, a.record.link, a.record.tap).catch((err: unknown) => this.log.warn('unmirroring', { err }));
    if (this.vm && hasNicHotplug(this.vm) && !this.vm.exit()) {
      await this.vm.unplugNic(a.record.tap).catch((err: unknown) => this.log.debug('unplugging a NIC', { err }));
    }
    await this.save(this.record());
  }

  private async configureGuest(view: NetnsView, signal?: AbortSignal): Promise<void> {
    const guest = this.guest!;
    const names = new Set<string>();
    for (const a of this.attached.values()) {
      const link = view.links.find((l) => l.index === a.record.index);
      if (!link) continue;
      a.record.link = link.name;
      names.add(link.name);
      const want = { name: link.name, hwAddr: link.mac, mtu: link.mtu, addresses: link.addresses.map((x) => ({ address: x.address, prefixLen: x.prefixLen })) };
      const key = JSON.stringify(want);
      if (key === a.pushed) continue;
      const t0 = performance.now();
      await guest.updateInterface(want, { signal });
      this.log.debug('guest interface configured', { link: link.name, ms: Math.round(performance.now() - t0) });
      a.pushed = key;
      // A rename takes the link down, which drops its routes and neighbours: send them again.
      this.pushedRoutes = '';
    }
    const routes = guestRoutes(view.routes, names);
    const key = JSON.stringify(routes);
    if (key !== this.pushedRoutes) {
      const t0 = performance.now();
      await guest.updateRoutes(routes, { signal });
      this.pushedRoutes = key;
      const t1 = performance.now();
      const neighbors = await gatewayNeighbors(view.routes.filter((r) => names.has(r.device)), signal);
      if (neighbors.length > 0) await guest.addArpNeighbors(neighbors, { signal });
      this.log.debug('guest routes configured', { routes: routes.length, neighbors: neighbors.length, routesMs: Math.round(t1 - t0), neighborsMs: Math.round(performance.now() - t1) });
    }
  }

  /** close stops following changes, removes the mirrors and taps, and ends the holder. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.syncing;
    let clean = true;
    for (const a of this.attached.values()) {
      await unmirror(this.holder.path, a.record.link, a.record.tap).catch((err: unknown) => {
        clean = false;
        this.log.warn('unmirroring', { err });
      });
    }
    await this.holder.close();
    // What is left for cleanupSandbox: nothing of ours in the namespace (unless a step failed).
    if (clean) this.attached.clear();
    await this.save({ ...this.record(), holderPid: 0 }).catch(() => {});
  }
}

/** guestRoutes are the namespace's routes on mirrored devices, minus the kernel's own. Pure. */
export function guestRoutes(routes: readonly NetRoute[], devices: ReadonlySet<string>): Array<{ dest: string; gateway: string; device: string; source: string; scope: number }> {
  return routes
    .filter((r) => devices.has(r.device) && !r.kernel)
    .map((r) => ({ dest: r.dest, gateway: r.gateway, device: r.device, source: r.source, scope: r.scope }));
}

/**
 * gatewayNeighbors finds, for each IPv4 gateway that is an address of this host (a CNI bridge),
 * the MAC of the host interface holding it: the guest gets it as a static neighbour, so its
 * first packet needs no ARP round trip.
 */
async function gatewayNeighbors(routes: readonly NetRoute[], signal?: AbortSignal): Promise<Array<{ ipAddress: string; device: string; llAddress: string }>> {
  const gws = routes.filter((r) => r.gateway !== '' && r.family === 4);
  if (gws.length === 0) return [];
  const host = parseLinks(await execTool(['ip', '-j', '-d', 'addr', 'show'], { signal }));
  const out: Array<{ ipAddress: string; device: string; llAddress: string }> = [];
  for (const r of gws) {
    const owner = host.find((l) => l.mac !== '' && l.addresses.some((a) => a.address === r.gateway));
    if (owner && !out.some((n) => n.ipAddress === r.gateway && n.device === r.device)) out.push({ ipAddress: r.gateway, device: r.device, llAddress: owner.mac });
  }
  return out;
}

/** PreparedPodNetwork is a sandbox's pod network before the VM joins it. */
export interface PreparedPodNetwork {
  net: SandboxNetwork;
  network: { netns: NetnsTarget; watch?: boolean };
  /** coldNics are the NICs a cold boot plugs from the start (a joined namespace's interfaces). */
  coldNics: NetTapDevice[];
}

/**
 * preparePodNetwork readies what opts ask for: hako run's own CNI network (a namespace, CNI
 * ADD), or a namespace given or new; then the holder, and the interfaces of a joined namespace,
 * checked. Undefined without a network. What it made is in network.json when it fails.
 */
export async function preparePodNetwork(o: Pick<SandboxCreateOptions, 'network' | 'cni' | 'signal'> & { id: string; config: HakoConfig; dir: string; log: Logger; mark: (m: 'cni-added' | 'network-ready', f?: Record<string, number>) => void }): Promise<PreparedPodNetwork | undefined> {
  let network = o.network;
  let extra: Partial<NetworkRecord> | undefined;
  if (o.cni) {
    const a = await attachHakoNetwork({ config: o.config, sandboxId: o.id, dir: o.dir, ports: o.cni.ports, log: o.log, signal: o.signal });
    network = { netns: { kind: 'join', path: a.netnsPath } };
    extra = { cni: a.record, createdNetns: a.netnsPath };
    o.mark('cni-added');
  }
  if (!network) return undefined;
  const net = await SandboxNetwork.open({ helper: netnsHelperPath(), sandboxId: o.id, target: network.netns, log: o.log, signal: o.signal, dir: o.dir, extra });
  try {
    // A namespace made by someone else is complete now: check it, and plug it at boot if cold.
    const coldNics = network.netns.kind === 'join' ? await net.coldNics(o.signal) : [];
    o.mark('network-ready', { interfaces: coldNics.length });
    return { net, network, coldNics };
  } catch (err) {
    await net.close().catch(() => {});
    throw err;
  }
}
