// Unit tests for GuestNetwork against a fake kernel: the order of the helper requests, the wait
// for a NIC, name clashes, which routes UpdateRoutes replaces, and what the listings leave out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, HakoError } from '../../errors/index.js';
import { nullLogger } from '../../log/index.js';
import { GuestCtlError } from './guestctl.js';
import { IFAPROT_KERNEL_LL, type AddrInfo, type LinkInfo, type NetOps, type RouteInfo, type RouteSpec } from './net-ctl.js';
import { GuestNetwork } from './network.js';

const MAC = '52:54:00:12:34:56';

/** FakeKernel keeps links, addresses and routes as the kernel would, and records every call. */
class FakeKernel implements NetOps {
  calls: string[] = [];
  links_: LinkInfo[] = [
    { index: 1, name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, flags: 0x49 },
    { index: 2, name: 'eth0', mac: MAC, mtu: 1500, flags: 0x1002 },
  ];
  addrs: AddrInfo[] = [
    { index: 1, address: '127.0.0.1', prefixLen: 8, proto: 0 },
    { index: 1, address: '::1', prefixLen: 128, proto: 1 },
  ];
  table: RouteInfo[] = [];
  neighbors: string[] = [];
  /** pending links appear after this many more links() calls (a NIC being probed). */
  pending: { link: LinkInfo; polls: number } | undefined;
  delayMs = 0;

  private link(index: number): LinkInfo {
    const l = this.links_.find((x) => x.index === index);
    if (l === undefined) throw new GuestCtlError(19, 'No such device');
    return l;
  }
  private async step(what: string): Promise<void> {
    this.calls.push(what);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
  }
  async linkUp(i: number) {
    await this.step(`up ${i}`);
    const l = this.link(i);
    l.flags |= 1;
    // The kernel adds an IPv6 link-local address and its fe80::/64 route.
    this.addrs.push({ index: i, address: 'fe80::5054:ff:fe12:3456', prefixLen: 64, proto: IFAPROT_KERNEL_LL });
    this.table.push({ family: 6, dest: 'fe80::', prefixLen: 64, gateway: '', source: '', scope: 0, index: i, protocol: 2, type: 1 });
  }
  async linkDown(i: number) {
    await this.step(`down ${i}`);
    this.link(i).flags &= ~1;
  }
  async rename(i: number, name: string) {
    await this.step(`rename ${i} ${name}`);
    const l = this.link(i);
    if ((l.flags & 1) !== 0) throw new GuestCtlError(16, 'Device or resource busy');
    l.name = name;
  }
  async setMtu(i: number, mtu: number) {
    await this.step(`mtu ${i} ${mtu}`);
    this.link(i).mtu = mtu;
  }
  async deleteAddress(i: number, address: string, prefixLen: number) {
    await this.step(`addrdel ${i} ${address}/${prefixLen}`);
    this.addrs = this.addrs.filter((a) => a.index !== i || a.address !== address || a.prefixLen !== prefixLen);
    // As Linux does: with its last IPv4 address a link loses its IPv4 routes and neighbours.
    if (!address.includes(':') && !this.addrs.some((a) => a.index === i && !a.address.includes(':'))) {
      this.table = this.table.filter((r) => r.index !== i || r.family === 6);
      this.neighbors = this.neighbors.filter((nb) => !nb.startsWith(`${i} `));
    }
  }
  async addAddress(i: number, address: string, prefixLen: number) {
    await this.step(`addr ${i} ${address}/${prefixLen}`);
    this.addrs.push({ index: i, address, prefixLen, proto: 0 });
    if (!address.includes(':')) {
      const net = address.split('.').slice(0, 3).join('.');
      this.table.push({ family: 4, dest: `${net}.0`, prefixLen, gateway: '', source: address, scope: 253, index: i, protocol: 2, type: 1 });
    }
  }
  async flushRoutes(i: number) {
    await this.step(`routeflush ${i}`);
    this.table = this.table.filter((r) => r.index !== i || r.protocol === 2);
  }
  async addRoute(r: RouteSpec) {
    await this.step(`route ${r.dest}/${r.prefixLen} ${r.gateway || '-'} ${r.index}`);
    this.table.push({ family: r.dest.includes(':') ? 6 : 4, dest: r.dest, prefixLen: r.prefixLen, gateway: r.gateway, source: r.source, scope: r.scope, index: r.index, protocol: 4, type: 1 });
  }
  async setNeighbor(i: number, ip: string, mac: string) {
    await this.step(`neigh ${i} ${ip} ${mac}`);
    this.neighbors.push(`${i} ${ip} ${mac}`);
  }
  async links() {
    if (this.pending !== undefined && this.pending.polls-- <= 0) {
      this.links_.push(this.pending.link);
      this.pending = undefined;
    }
    return this.links_.map((l) => ({ ...l }));
  }
  async addresses() {
    return this.addrs.map((a) => ({ ...a }));
  }
  async routes() {
    return this.table.map((r) => ({ ...r }));
  }
}

function setup(linkWaitMs = 200): { k: FakeKernel; net: GuestNetwork } {
  const k = new FakeKernel();
  return { k, net: new GuestNetwork(k, nullLogger, linkWaitMs) };
}

async function rejectsWith(p: Promise<unknown>, code: Code, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HakoError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, re);
    return true;
  });
}

const want = { name: 'eth1', hwAddr: MAC.toUpperCase(), mtu: 1400, addresses: [{ address: '10.250.1.2', prefixLen: 24 }, { address: '2001:db8::2', prefixLen: 64 }] };

test('updateInterface renames, sets the MTU, replaces the addresses, sets the link up and reads it back', async () => {
  const { k, net } = setup();
  k.addrs.push({ index: 2, address: '192.168.9.9', prefixLen: 24, proto: 0 });
  const got = await net.updateInterface(want);
  assert.deepEqual(k.calls, ['rename 2 eth1', 'mtu 2 1400', 'addrdel 2 192.168.9.9/24', 'addr 2 10.250.1.2/24', 'addr 2 2001:db8::2/64', 'up 2']);
  // The kernel's link-local address is not reported.
  assert.deepEqual(got, { name: 'eth1', hwAddr: MAC, mtu: 1400, addresses: [{ address: '10.250.1.2', prefixLen: 24 }, { address: '2001:db8::2', prefixLen: 64 }] });
});

test('an up link is set down before it is renamed; an unchanged name and MTU are left alone', async () => {
  const { k, net } = setup();
  k.links_[1]!.flags |= 1;
  await net.updateInterface(want);
  assert.deepEqual(k.calls.slice(0, 2), ['down 2', 'rename 2 eth1']);
  k.calls = [];
  await net.updateInterface({ ...want, addresses: [] });
  assert.deepEqual(k.calls, ['addrdel 2 10.250.1.2/24', 'addrdel 2 2001:db8::2/64', 'up 2']);
});

test('a repeated UpdateInterface changes only what differs, so routes and neighbours stay', async () => {
  const { k, net } = setup();
  await net.updateInterface(want);
  await net.updateRoutes([{ dest: '', gateway: '10.250.1.1', device: 'eth1', source: '', scope: 0 }]);
  await net.addNeighbors([{ ipAddress: '10.250.1.1', device: 'eth1', llAddress: 'aa:bb:cc:dd:ee:ff', state: 0 }]);
  k.calls = [];
  await net.updateInterface({ ...want, hwAddr: MAC, addresses: [{ address: '2001:DB8:0::2', prefixLen: 64 }, { address: '10.250.1.2', prefixLen: 24 }] });
  assert.deepEqual(k.calls, ['up 2'], 'the same addresses (in another order and spelling) are left alone');
  assert.ok(k.table.some((r) => r.gateway === '10.250.1.1'));
  assert.deepEqual(k.neighbors, ['2 10.250.1.1 aa:bb:cc:dd:ee:ff']);
  k.calls = [];
  await net.updateInterface({ ...want, addresses: [{ address: '10.250.1.3', prefixLen: 24 }] });
  assert.deepEqual(k.calls, ['addrdel 2 10.250.1.2/24', 'addrdel 2 2001:db8::2/64', 'addr 2 10.250.1.3/24', 'up 2']);
});

test('a name another link has is ALREADY_EXISTS, and nothing is changed', async () => {
  const { k, net } = setup();
  k.links_.push({ index: 3, name: 'eth1', mac: '52:54:00:00:00:03', mtu: 1500, flags: 0 });
  await rejectsWith(net.updateInterface(want), Code.ALREADY_EXISTS, /eth1 is taken by another link \(index 3/);
  assert.deepEqual(k.calls, []);
});

test('updateInterface waits for a NIC that is still being probed, and gives up with NOT_FOUND naming the MAC', async () => {
  const { k, net } = setup(300);
  k.links_.pop();
  k.pending = { link: { index: 5, name: 'eth0', mac: MAC, mtu: 1500, flags: 0 }, polls: 3 };
  const got = await net.updateInterface(want);
  assert.equal(got.name, 'eth1');
  assert.equal(k.calls[0], 'rename 5 eth1');
  const t0 = Date.now();
  await rejectsWith(net.updateInterface({ ...want, hwAddr: '52:54:00:99:99:99' }), Code.NOT_FOUND, /no link with MAC 52:54:00:99:99:99 appeared within 300 ms/);
  const ms = Date.now() - t0;
  assert.ok(ms >= 290 && ms < 2000, `waited ${ms} ms`);
});

test('the wait ends when the call is cancelled', async () => {
  const { net } = setup(10_000);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const t0 = Date.now();
  await assert.rejects(net.updateInterface({ ...want, hwAddr: '52:54:00:99:99:99' }, ac.signal), (err: unknown) => err instanceof HakoError && err.code === Code.CANCELLED);
  assert.ok(Date.now() - t0 < 2000);
});

test('bad arguments are refused before any helper request', async () => {
  const { k, net } = setup();
  await rejectsWith(net.updateInterface({ ...want, mtu: 10 }), Code.INVALID_ARGUMENT, /interface\.mtu/);
  await rejectsWith(net.updateRoutes([{ dest: 'x', gateway: '', device: 'eth0', source: '', scope: 0 }]), Code.INVALID_ARGUMENT, /routes\[0\]\.dest/);
  await rejectsWith(net.addNeighbors([{ ipAddress: '1.2.3.4', device: 'eth0', llAddress: 'zz', state: 0 }]), Code.INVALID_ARGUMENT, /neighbors\[0\]\.ll_address/);
  assert.deepEqual(k.calls, []);
});

test('updateRoutes replaces the routes of named and configured links, link routes first, and answers the filtered table', async () => {
  const { k, net } = setup();
  await net.updateInterface(want);
  k.table.push({ family: 4, dest: '172.16.0.0', prefixLen: 12, gateway: '10.250.1.9', source: '', scope: 0, index: 2, protocol: 4, type: 1 });
  k.table.push({ family: 4, dest: '10.9.0.0', prefixLen: 16, gateway: '', source: '', scope: 0, index: 2, protocol: 4, type: 6 }); // prohibit
  k.table.push({ family: 6, dest: '::1', prefixLen: 128, gateway: '', source: '', scope: 0, index: 1, protocol: 2, type: 1 });
  k.table.push({ family: 4, dest: '10.8.0.0', prefixLen: 16, gateway: '', source: '', scope: 0, index: 0, protocol: 4, type: 1 }); // multipath
  k.calls = [];
  const routes = await net.updateRoutes([
    { dest: 'default', gateway: '10.250.1.1', device: 'eth1', source: '', scope: 0 },
    { dest: '10.251.0.0/16', gateway: '10.250.1.1', device: 'eth1', source: '', scope: 0 },
    { dest: '10.252.0.0/16', gateway: '', device: 'eth1', source: '10.250.1.2', scope: 253 },
  ]);
  assert.deepEqual(k.calls, ['routeflush 2', 'route 10.252.0.0/16 - 2', 'route 0.0.0.0/0 10.250.1.1 2', 'route 10.251.0.0/16 10.250.1.1 2']);
  assert.deepEqual(routes, [
    { dest: '10.250.1.0/24', gateway: '', device: 'eth1', source: '10.250.1.2', scope: 253 },
    { dest: '10.252.0.0/16', gateway: '', device: 'eth1', source: '10.250.1.2', scope: 253 },
    { dest: '0.0.0.0/0', gateway: '10.250.1.1', device: 'eth1', source: '', scope: 0 },
    { dest: '10.251.0.0/16', gateway: '10.250.1.1', device: 'eth1', source: '', scope: 0 },
  ]);
  assert.deepEqual(await net.listRoutes(), routes);
  // An empty list still clears what hako configured.
  k.calls = [];
  await net.updateRoutes([]);
  assert.deepEqual(k.calls, ['routeflush 2']);
});

test('a route or neighbour on an unknown device is NOT_FOUND before any change', async () => {
  const { k, net } = setup();
  await rejectsWith(net.updateRoutes([{ dest: '', gateway: '10.0.0.1', device: 'eth0', source: '', scope: 0 }, { dest: '', gateway: '10.0.0.1', device: 'eth7', source: '', scope: 0 }]), Code.NOT_FOUND, /routes\[1\]\.device eth7/);
  await rejectsWith(net.addNeighbors([{ ipAddress: '10.0.0.1', device: 'eth7', llAddress: 'aa:bb:cc:dd:ee:ff', state: 0 }]), Code.NOT_FOUND, /neighbors\[0\]\.device eth7/);
  assert.deepEqual(k.calls, []);
  await net.addNeighbors([{ ipAddress: '10.0.0.1', device: 'eth0', llAddress: 'AA:bb:cc:dd:ee:ff', state: 0 }]);
  assert.deepEqual(k.neighbors, ['2 10.0.0.1 aa:bb:cc:dd:ee:ff']);
});

test('a helper error keeps its code and says which step failed', async () => {
  const { k, net } = setup();
  k.setMtu = async () => { throw new GuestCtlError(22, 'hako-guestctl linkmtu: Invalid argument'); };
  await rejectsWith(net.updateInterface(want), Code.INVALID_ARGUMENT, /UpdateInterface eth1 \(52:54:00:12:34:56\): setting the MTU to 1400: hako-guestctl linkmtu/);
});

test('operations run one at a time', async () => {
  const { k, net } = setup();
  k.delayMs = 5;
  k.links_.push({ index: 3, name: 'eth9', mac: '52:54:00:00:00:03', mtu: 1500, flags: 0 });
  await Promise.all([
    net.updateInterface(want),
    net.updateInterface({ name: 'eth2', hwAddr: '52:54:00:00:00:03', mtu: 0, addresses: [] }),
    net.listInterfaces(),
  ]);
  const firstOf3 = k.calls.findIndex((c) => / 3( |$)/.test(c));
  assert.ok(k.calls.slice(0, firstOf3).every((c) => / 2( |$)/.test(c)), k.calls.join(', '));
  assert.deepEqual((await net.listInterfaces()).map((i) => i.name), ['lo', 'eth1', 'eth2']);
});

test('listInterfaces reports every link with its addresses', async () => {
  const { net } = setup();
  assert.deepEqual(await net.listInterfaces(), [
    { name: 'lo', hwAddr: '00:00:00:00:00:00', mtu: 65536, addresses: [{ address: '127.0.0.1', prefixLen: 8 }, { address: '::1', prefixLen: 128 }] },
    { name: 'eth0', hwAddr: MAC, mtu: 1500, addresses: [] },
  ]);
});
