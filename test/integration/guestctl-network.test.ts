// hako-guestctl's netlink requests on the host's kernel, in a throwaway network namespace with a
// veth pair: the agent's GuestNetwork drives the real helper, and `ip -j` checks what the kernel has.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, HakoError } from '../../src/errors/index.js';
import { GuestCtl } from '../../src/guest/agent/guestctl.js';
import { NetCtl } from '../../src/guest/agent/net-ctl.js';
import { GuestNetwork } from '../../src/guest/agent/network.js';
import { guestFilesDir } from '../../src/image/paths.js';
import { GUESTCTL_SOURCES } from '../../src/image/root-image.js';
import { nullLogger } from '../../src/log/index.js';

const ns = `hako-gcn-${process.pid}`;
let dir = '';
let ctl: GuestCtl;
let net: GuestNetwork;
let mac = '';

const ip = (...args: string[]): string => execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
const ipJson = <T>(...args: string[]): T => JSON.parse(ip('-j', ...args)) as T;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hako-guestctl-net-'));
  const bin = join(dir, 'hako-guestctl');
  const cFiles = GUESTCTL_SOURCES.filter((f) => f.endsWith('.c')).map((f) => join(guestFilesDir(), f));
  execFileSync('gcc', ['-static', '-Os', '-Wall', '-Werror', '-o', bin, ...cFiles]);
  execFileSync('ip', ['netns', 'add', ns]);
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'hv0', 'type', 'veth', 'peer', 'name', 'hv1');
  ip('link', 'set', 'hv1', 'up');
  mac = ipJson<Array<{ address: string }>>('link', 'show', 'hv0')[0]!.address;
  // The helper runs in the namespace as it runs in the guest's root one.
  const wrapper = join(dir, 'in-ns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${bin}\n`);
  chmodSync(wrapper, 0o755);
  ctl = new GuestCtl(wrapper, nullLogger);
  net = new GuestNetwork(new NetCtl(ctl), nullLogger, 500);
});

after(() => {
  ctl?.close();
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // never created
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  assert.ok(!execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(ns), 'the namespace is gone');
});

interface IpAddr { ifname: string; mtu: number; operstate: string; flags: string[]; addr_info: Array<{ local: string; prefixlen: number; family: string; scope: string; broadcast?: string }> }
interface IpRoute { dst: string; gateway?: string; dev: string; protocol?: string; prefsrc?: string; scope?: string }

test('UpdateInterface renames, sets the MTU and addresses and brings the veth up', async () => {
  ip('addr', 'add', '192.168.77.7/24', 'dev', 'hv0');
  const got = await net.updateInterface({ name: 'eth0', hwAddr: mac.toUpperCase(), mtu: 1400, addresses: [{ address: '10.250.9.2', prefixLen: 24 }, { address: '2001:db8:9::2', prefixLen: 64 }] });
  assert.deepEqual(got, { name: 'eth0', hwAddr: mac, mtu: 1400, addresses: [{ address: '10.250.9.2', prefixLen: 24 }, { address: '2001:db8:9::2', prefixLen: 64 }] });
  const [link] = ipJson<IpAddr[]>('addr', 'show', 'dev', 'eth0');
  assert.equal(link!.mtu, 1400);
  assert.ok(link!.flags.includes('UP'));
  const v4 = link!.addr_info.filter((a) => a.family === 'inet');
  assert.deepEqual(v4.map((a) => [a.local, a.prefixlen, a.broadcast]), [['10.250.9.2', 24, '10.250.9.255']], 'the old address is gone; the broadcast is set');
  const v6 = link!.addr_info.filter((a) => a.family === 'inet6' && a.scope === 'global');
  assert.deepEqual(v6.map((a) => [a.local, a.prefixlen]), [['2001:db8:9::2', 64]]);
  // Listing leaves the kernel's link-local address out, ip shows it.
  assert.ok(link!.addr_info.some((a) => a.local.startsWith('fe80:')));
  const eth0 = (await net.listInterfaces()).find((i) => i.name === 'eth0');
  assert.deepEqual(eth0, got);
});

test('UpdateRoutes replaces non-kernel routes, and listRoutes reports them', async () => {
  ip('route', 'add', '172.16.0.0/12', 'via', '10.250.9.77', 'dev', 'eth0');
  const routes = await net.updateRoutes([
    { dest: 'default', gateway: '10.250.9.1', device: 'eth0', source: '', scope: 0 },
    { dest: '10.251.0.0/16', gateway: '10.250.9.1', device: 'eth0', source: '10.250.9.2', scope: 0 },
    { dest: '10.252.0.0/16', gateway: '', device: 'eth0', source: '', scope: 253 },
    { dest: '2001:db8:99::/48', gateway: '2001:db8:9::1', device: 'eth0', source: '', scope: 0 },
  ]);
  const v4 = ipJson<IpRoute[]>('route', 'show');
  assert.deepEqual(v4.map((r) => [r.dst, r.gateway ?? '', r.protocol ?? '', r.prefsrc ?? '']).sort(), [
    ['10.250.9.0/24', '', 'kernel', '10.250.9.2'],
    ['10.251.0.0/16', '10.250.9.1', 'static', '10.250.9.2'],
    ['10.252.0.0/16', '', 'static', ''],
    ['default', '10.250.9.1', 'static', ''],
  ], 'the old 172.16/12 route is gone, the kernel link route stays');
  assert.deepEqual(routes.map((r) => `${r.dest} ${r.gateway || '-'} ${r.device} ${r.source || '-'} ${r.scope}`).sort(), [
    '0.0.0.0/0 10.250.9.1 eth0 - 0',
    '10.250.9.0/24 - eth0 10.250.9.2 253',
    '10.251.0.0/16 10.250.9.1 eth0 10.250.9.2 0',
    '10.252.0.0/16 - eth0 - 253',
    '2001:db8:99::/48 2001:db8:9::1 eth0 - 0',
    '2001:db8:9::/64 - eth0 - 0',
  ]);
  assert.deepEqual(await net.listRoutes(), routes);
  const again = await net.updateRoutes([{ dest: 'default', gateway: '10.250.9.1', device: 'eth0', source: '', scope: 0 }]);
  assert.deepEqual(again.map((r) => r.dest).sort(), ['0.0.0.0/0', '10.250.9.0/24', '2001:db8:9::/64'], 'a second call replaces the first');
});

test('AddARPNeighbors sets permanent entries and replaces existing ones', async () => {
  await net.addNeighbors([{ ipAddress: '10.250.9.1', device: 'eth0', llAddress: 'aa:bb:cc:dd:ee:01', state: 0 }]);
  await net.addNeighbors([
    { ipAddress: '10.250.9.1', device: 'eth0', llAddress: 'AA:BB:CC:DD:EE:02', state: 0 },
    { ipAddress: '2001:db8:9::1', device: 'eth0', llAddress: 'aa:bb:cc:dd:ee:03', state: 0x80 },
  ]);
  const neigh = ipJson<Array<{ dst: string; lladdr: string; state: string[] }>>('neigh', 'show', 'dev', 'eth0');
  assert.deepEqual(neigh.map((n) => [n.dst, n.lladdr, n.state.join(',')]).sort(), [['10.250.9.1', 'aa:bb:cc:dd:ee:02', 'PERMANENT'], ['2001:db8:9::1', 'aa:bb:cc:dd:ee:03', 'PERMANENT']]);
});

test('a repeated UpdateInterface with the same addresses keeps the routes and neighbours', async () => {
  await net.updateInterface({ name: 'eth0', hwAddr: mac, mtu: 1400, addresses: [{ address: '2001:DB8:9:0::2', prefixLen: 64 }, { address: '10.250.9.2', prefixLen: 24 }] });
  assert.ok(ipJson<IpRoute[]>('route', 'show').some((r) => r.dst === 'default' && r.gateway === '10.250.9.1'), 'the default route stays');
  assert.equal(ipJson<Array<{ dst: string; state: string[] }>>('neigh', 'show', 'dev', 'eth0').filter((x) => x.state.includes('PERMANENT')).length, 2, 'the neighbours stay');
  // Replacing the last IPv4 address is what drops them (the kernel's doing).
  await net.updateInterface({ name: 'eth0', hwAddr: mac, mtu: 1400, addresses: [{ address: '10.250.9.3', prefixLen: 24 }] });
  assert.deepEqual(ipJson<Array<{ addr_info: Array<{ local: string; scope: string }> }>>('addr', 'show', 'dev', 'eth0')[0]!.addr_info.filter((a) => a.scope === 'global').map((a) => a.local), ['10.250.9.3']);
  assert.ok(!ipJson<IpRoute[]>('route', 'show').some((r) => r.dst === 'default'));
});

test('the kernel\'s refusals come back with their codes and text', async () => {
  await assert.rejects(net.updateRoutes([{ dest: '10.9.0.0/16', gateway: '10.99.0.1', device: 'eth0', source: '', scope: 0 }]),
    (e: unknown) => e instanceof HakoError && e.code === Code.FAILED_PRECONDITION && /routes\[0\].*Network is unreachable/.test(e.message));
  await assert.rejects(net.updateInterface({ name: 'hv1', hwAddr: mac, mtu: 0, addresses: [] }), (e: unknown) => e instanceof HakoError && e.code === Code.ALREADY_EXISTS);
  await assert.rejects(new NetCtl(ctl).setMtu(9999, 1500), (e: unknown) => e instanceof HakoError && e.code === Code.NOT_FOUND);
  await assert.rejects(new NetCtl(ctl).addAddress(9999, '10.0.0.1', 24), (e: unknown) => e instanceof HakoError && e.code === Code.NOT_FOUND);
  const t0 = Date.now();
  await assert.rejects(net.updateInterface({ name: 'eth5', hwAddr: '52:54:00:99:99:99', mtu: 0, addresses: [] }), (e: unknown) => e instanceof HakoError && e.code === Code.NOT_FOUND && /52:54:00:99:99:99/.test(e.message));
  assert.ok(Date.now() - t0 < 3000);
});

test('the request lines are checked by the helper too', async () => {
  for (const [op, args] of [
    ['linkname', ['2', 'bad/name']], ['linkmtu', ['2', '67']], ['addradd', ['2', '10.0.0.1', '33']], ['routeadd', ['10.0.0.1', '8', '-', '-', '0', '2']],
    ['routeadd', ['10.0.0.0', '8', '2001:db8::1', '-', '0', '2']], ['neighset', ['2', '10.0.0.1', 'aa:bb:cc:dd:ee']], ['links', ['extra']], ['linkup', ['0']],
  ] as const) {
    await assert.rejects(ctl.call(op, [...args]), (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT, `${op} ${args.join(' ')}`);
  }
});
