// Unit tests of the hako network: IPv4 network arithmetic, the conflist's plugin order and
// keys, and the subnet-overlap check against a host's `ip -j addr show` output.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, HakoError } from '../errors/index.js';
import { findSubnetConflicts, hakoConflist, parseIpAddrJson, parseSubnet, DEFAULT_SUBNET } from './hako-network.js';
import { formatIpv4, formatIpv4Cidr, ipv4NetsOverlap, parseIpv4, parseIpv4Cidr } from './ipv4.js';

const invalid = (pattern: RegExp) => (err: unknown) => err instanceof HakoError && err.code === Code.INVALID_ARGUMENT && pattern.test(err.message);

test('IPv4 addresses and networks parse and print', () => {
  assert.equal(parseIpv4('10.213.0.1'), 0x0ad50001);
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  assert.equal(formatIpv4(0xffffffff), '255.255.255.255');
  assert.equal(formatIpv4(0x0ad50001), '10.213.0.1');
  for (const bad of ['10.213.0', '10.213.0.256', '010.0.0.1', '::1', '', '1.2.3.4 ']) assert.equal(parseIpv4(bad), undefined, bad);
  assert.deepEqual(parseIpv4Cidr('10.213.0.7/16'), { base: 0x0ad50000, prefix: 16 });
  assert.equal(formatIpv4Cidr(parseIpv4Cidr('192.168.1.9/0')), '0.0.0.0/0');
  assert.equal(formatIpv4Cidr(parseIpv4Cidr('192.168.1.9/32')), '192.168.1.9/32');
  assert.throws(() => parseIpv4Cidr('10.213.0.7/16', { strict: true }), invalid(/host bits set \(the network is 10\.213\.0\.0\/16\)/));
  for (const bad of ['10.213.0.0', '10.213.0.0/33', '10.213.0.0/', '10.213.0.0/1a', 'x/8']) {
    assert.throws(() => parseIpv4Cidr(bad), invalid(/not an IPv4 network in CIDR form/), bad);
  }
});

test('networks overlap when one contains the other', () => {
  const o = (a: string, b: string): boolean => ipv4NetsOverlap(parseIpv4Cidr(a), parseIpv4Cidr(b));
  assert.ok(o('10.213.0.0/16', '10.213.5.0/24'));
  assert.ok(o('10.213.5.0/24', '10.213.0.0/16'), 'symmetric');
  assert.ok(o('10.0.0.0/8', '10.213.0.0/16'));
  assert.ok(o('10.213.0.0/16', '10.213.255.255/32'));
  assert.ok(o('0.0.0.0/0', '192.0.2.0/24'));
  assert.ok(o('10.213.0.0/16', '10.213.0.0/16'));
  assert.ok(!o('10.213.0.0/16', '10.214.0.0/16'));
  assert.ok(!o('10.213.0.0/16', '10.212.255.255/32'));
  assert.ok(!o('192.168.0.0/24', '192.168.1.0/24'));
  assert.ok(!o('128.0.0.0/1', '127.255.255.255/32'), 'the top bit compares unsigned');
  assert.ok(o('128.0.0.0/1', '255.0.0.0/8'));
});

test('subnet conflicts: any interface but the bridge with an overlapping address', () => {
  const addrs = parseIpAddrJson(JSON.stringify([
    { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }, { family: 'inet6', local: '::1', prefixlen: 128 }] },
    { ifname: 'eth0', addr_info: [{ family: 'inet', local: '192.0.2.2', prefixlen: 24 }] },
    { ifname: 'hako0', addr_info: [{ family: 'inet', local: '10.213.0.1', prefixlen: 16 }] },
    { ifname: 'wg0', addr_info: [{ family: 'inet', local: '10.0.0.5', prefixlen: 8 }] },
    { ifname: 'tun1', addr_info: [{ family: 'inet', local: '10.213.40.2', prefixlen: 32 }] },
    { ifname: 'ifb0', addr_info: [] },
    { ifname: 'odd' },
  ]));
  assert.deepEqual(addrs.map((a) => a.ifname), ['lo', 'eth0', 'hako0', 'wg0', 'tun1'], 'IPv4 only');
  const net = parseSubnet(DEFAULT_SUBNET);
  assert.deepEqual(findSubnetConflicts(net, 'hako0', addrs).map((a) => `${a.ifname} ${a.address}/${a.prefixLength}`), ['wg0 10.0.0.5/8', 'tun1 10.213.40.2/32']);
  // The same address on another bridge name is a conflict: that bridge is not ours.
  assert.deepEqual(findSubnetConflicts(net, 'hako9', addrs).map((a) => a.ifname), ['hako0', 'wg0', 'tun1']);
  assert.deepEqual(findSubnetConflicts(parseSubnet('172.31.0.0/16'), 'hako0', addrs), []);
  assert.throws(() => parseIpAddrJson('not json'), /ip -j addr show printed no JSON/);
  assert.throws(() => parseIpAddrJson('{}'), /no list of interfaces/);
});

test('parseSubnet wants a network from /8 to /30', () => {
  assert.deepEqual(parseSubnet('10.213.0.0/30'), { base: 0x0ad50000, prefix: 30 });
  assert.throws(() => parseSubnet('10.213.0.0/31'), invalid(/prefix length from \/8 to \/30/));
  assert.throws(() => parseSubnet('10.0.0.0/7'), invalid(/prefix length/));
  assert.throws(() => parseSubnet('10.213.0.1/16'), invalid(/host bits set/));
});

test('the hako conflist: bridge, portmap, firewall, loopback last', () => {
  const c = hakoConflist({ subnet: '10.213.0.0/16', bridge: 'hako0' });
  assert.equal(c.name, 'hako');
  assert.equal(c.cniVersion, '1.0.0');
  assert.deepEqual(c.plugins.map((p) => p.type), ['bridge', 'portmap', 'firewall', 'loopback']);
  const [bridge, portmap] = c.plugins;
  assert.deepEqual(bridge, {
    type: 'bridge', bridge: 'hako0', isGateway: true, ipMasq: true, hairpinMode: true,
    ipam: { type: 'host-local', ranges: [[{ subnet: '10.213.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] },
  });
  assert.deepEqual(portmap, { type: 'portmap', capabilities: { portMappings: true }, snat: true });
  const t = hakoConflist({ subnet: '10.99.3.0/24', bridge: 'hkt3', name: 'hako-test-3' });
  assert.equal(t.name, 'hako-test-3');
  assert.equal((t.plugins[0]?.ipam as { ranges: Array<Array<{ subnet: string }>> }).ranges[0]?.[0]?.subnet, '10.99.3.0/24');
  assert.throws(() => hakoConflist({ subnet: '10.99.3.0/24', bridge: 'much-too-long-name' }), invalid(/interface name/));
  assert.throws(() => hakoConflist({ subnet: '10.99.3.1/24', bridge: 'hako0' }), invalid(/host bits/));
});
