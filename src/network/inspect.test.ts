import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLinks, parseRoutes } from './inspect.js';
import { endpointsOf, mirrorLines, tapName, TAP_PREFIX } from './mirror.js';

// Shaped like `ip -j -d addr show` in a pod namespace: lo, a CNI veth, hako's tap, a tun.
const ADDR = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, link_type: 'loopback', address: '00:00:00:00:00:00', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] },
  { ifindex: 3, ifname: 'eth0', flags: ['BROADCAST', 'UP', 'LOWER_UP'], mtu: 1450, link_type: 'ether', address: '1A:04:88:F4:CC:EF', linkinfo: { info_kind: 'veth' },
    addr_info: [{ family: 'inet', local: '10.213.0.7', prefixlen: 16, scope: 'global' }, { family: 'inet6', local: 'fe80::1804:88ff:fef4:ccef', prefixlen: 64, scope: 'link' }, { family: 'inet6', local: 'fd00::7', prefixlen: 64, scope: 'global' }] },
  { ifindex: 4, ifname: `${TAP_PREFIX}0123abcd0`, flags: ['UP'], mtu: 1450, link_type: 'ether', address: 'aa:65:0b:30:76:09', linkinfo: { info_kind: 'tun' }, addr_info: [] },
  { ifindex: 5, ifname: 'tunl0', flags: [], mtu: 1480, link_type: 'none', addr_info: [] },
]);

test('parseLinks keeps global addresses, lower-cases MACs and reads kind and state', () => {
  const links = parseLinks(ADDR);
  assert.equal(links.length, 4);
  const eth = links.find((l) => l.name === 'eth0')!;
  assert.deepEqual(eth, {
    index: 3, name: 'eth0', mac: '1a:04:88:f4:cc:ef', mtu: 1450, linkType: 'ether', kind: 'veth', up: true,
    addresses: [{ address: '10.213.0.7', prefixLen: 16, family: 4 }, { address: 'fd00::7', prefixLen: 64, family: 6 }],
  });
  assert.equal(links.find((l) => l.name === 'tunl0')!.mac, '');
  assert.throws(() => parseLinks('not json'), /not JSON/);
});

test('endpointsOf mirrors Ethernet links only, skips lo, taps and idle tunnels, refuses an addressed tun', () => {
  assert.deepEqual(endpointsOf(parseLinks(ADDR)).map((l) => l.name), ['eth0']);
  const tun = { index: 9, name: 'tun0', mac: '', mtu: 1500, linkType: 'none', kind: 'tun', up: true, addresses: [{ address: '10.9.0.2', prefixLen: 24, family: 4 as const }] };
  assert.throws(() => endpointsOf([tun]), /interface tun0 \(tun\) cannot be mirrored.*no MAC address/);
});

test('parseRoutes gives CIDRs, scopes and the kernel flag, and drops link-local IPv6 noise', () => {
  const v4 = parseRoutes(JSON.stringify([
    { dst: 'default', gateway: '10.213.0.1', dev: 'eth0', flags: [] },
    { dst: '10.213.0.0/16', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '10.213.0.7', flags: [] },
    { dst: '192.168.5.5', gateway: '10.213.0.1', dev: 'eth0', flags: [] },
    { type: 'blackhole', dst: '10.66.0.0/16', flags: [] },
  ]), 4);
  assert.deepEqual(v4, [
    { dest: 'default', gateway: '10.213.0.1', device: 'eth0', source: '', scope: 0, family: 4, kernel: false },
    { dest: '10.213.0.0/16', gateway: '', device: 'eth0', source: '10.213.0.7', scope: 253, family: 4, kernel: true },
    { dest: '192.168.5.5/32', gateway: '10.213.0.1', device: 'eth0', source: '', scope: 0, family: 4, kernel: false },
  ]);
  const v6 = parseRoutes(JSON.stringify([{ dst: 'fe80::/64', dev: 'eth0', protocol: 'kernel' }, { dst: 'fd00::/64', dev: 'eth0', protocol: 'kernel' }]), 6);
  assert.deepEqual(v6.map((r) => r.dest), ['fd00::/64']);
});

test('tapName is short, stable per sandbox and distinct per sandbox and index', () => {
  const a = tapName('sandbox-a', 0);
  assert.ok(a.length <= 15, a);
  assert.ok(a.startsWith(TAP_PREFIX));
  assert.equal(a, tapName('sandbox-a', 0));
  assert.notEqual(a, tapName('sandbox-a', 1));
  assert.notEqual(a, tapName('sandbox-b', 0));
  assert.throws(() => tapName('x', 100), /out of range/);
});

test('mirrorLines redirect ingress both ways', () => {
  const lines = mirrorLines('eth0', 'hkt1');
  assert.equal(lines.length, 4);
  assert.match(lines[1]!, /^filter add dev eth0 parent ffff: .* mirred egress redirect dev hkt1$/);
  assert.match(lines[3]!, /^filter add dev hkt1 parent ffff: .* mirred egress redirect dev eth0$/);
});
