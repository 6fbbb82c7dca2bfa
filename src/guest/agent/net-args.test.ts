// Unit tests for the agent's checks on network arguments: what passes, normalised, and that
// each refusal is INVALID_ARGUMENT naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, HakoError } from '../../errors/index.js';
import { addressBytes, checkInterface, checkNeighbors, checkRoutes, MAX_NEIGHBORS, MAX_ROUTES } from './net-args.js';

function refuses(fn: () => unknown, field: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HakoError, String(err));
    assert.equal(err.code, Code.INVALID_ARGUMENT);
    assert.match(err.message, field);
    return true;
  });
}

const iface = (over: Record<string, unknown> = {}) => ({ name: 'eth0', hwAddr: '52:54:00:AB:cd:01', mtu: 1400, addresses: [{ address: '10.0.0.2', prefixLen: 24 }], ...over });
const route = (over: Record<string, unknown> = {}) => ({ dest: '', gateway: '', device: 'eth0', source: '', scope: 0, ...over });

test('a good interface passes with its MAC in lower case', () => {
  const c = checkInterface(iface({ addresses: [{ address: '10.0.0.2', prefixLen: 24 }, { address: '2001:db8::2', prefixLen: 64 }] }));
  assert.deepEqual(c, {
    name: 'eth0', mac: '52:54:00:ab:cd:01', mtu: 1400,
    addresses: [{ address: '10.0.0.2', prefixLen: 24, family: 4 }, { address: '2001:db8::2', prefixLen: 64, family: 6 }],
  });
  assert.equal(checkInterface(iface({ mtu: 0, addresses: [] })).mtu, 0, 'MTU 0 leaves it');
});

test('bad interfaces are refused naming the field', () => {
  refuses(() => checkInterface(undefined), /^interface is missing/);
  refuses(() => checkInterface(iface({ name: '' })), /^interface\.name/);
  refuses(() => checkInterface(iface({ name: 'a'.repeat(16) })), /^interface\.name/);
  refuses(() => checkInterface(iface({ name: 'eth 0' })), /^interface\.name/);
  refuses(() => checkInterface(iface({ name: 'eth/0' })), /^interface\.name/);
  refuses(() => checkInterface(iface({ name: '..' })), /^interface\.name/);
  refuses(() => checkInterface(iface({ name: 'lo' })), /^interface\.name must not be lo/);
  refuses(() => checkInterface(iface({ hwAddr: '' })), /^interface\.hw_addr/);
  refuses(() => checkInterface(iface({ hwAddr: '52:54:00:ab:cd' })), /^interface\.hw_addr/);
  refuses(() => checkInterface(iface({ hwAddr: '52-54-00-ab-cd-01' })), /^interface\.hw_addr/);
  refuses(() => checkInterface(iface({ hwAddr: '01:00:5e:00:00:01' })), /^interface\.hw_addr .* not a unicast/);
  refuses(() => checkInterface(iface({ hwAddr: '00:00:00:00:00:00' })), /^interface\.hw_addr .* not a unicast/);
  for (const mtu of [67, 65536, 1.5, -1]) refuses(() => checkInterface(iface({ mtu })), /^interface\.mtu/);
  refuses(() => checkInterface(iface({ addresses: Array.from({ length: 17 }, (_, i) => ({ address: `10.0.0.${i + 1}`, prefixLen: 24 })) })), /^interface\.addresses has 17/);
  refuses(() => checkInterface(iface({ addresses: [{ address: '10.0.0.256', prefixLen: 24 }] })), /^interface\.addresses\[0\]\.address/);
  refuses(() => checkInterface(iface({ addresses: [{ address: '10.0.0.2 ', prefixLen: 24 }] })), /^interface\.addresses\[0\]\.address/);
  refuses(() => checkInterface(iface({ addresses: [{ address: 'fe80::1%eth0', prefixLen: 64 }] })), /^interface\.addresses\[0\]\.address/);
  refuses(() => checkInterface(iface({ addresses: [{ address: '0.0.0.0', prefixLen: 8 }] })), /unspecified/);
  refuses(() => checkInterface(iface({ addresses: [{ address: '10.0.0.2', prefixLen: 33 }] })), /^interface\.addresses\[0\]\.prefix_len/);
  refuses(() => checkInterface(iface({ addresses: [{ address: '10.0.0.2', prefixLen: 0 }] })), /^interface\.addresses\[0\]\.prefix_len/);
  refuses(() => checkInterface(iface({ addresses: [{ address: '2001:db8::1', prefixLen: 129 }] })), /^interface\.addresses\[0\]\.prefix_len/);
  refuses(() => checkInterface(iface({ addresses: [{ address: '2001:db8::1', prefixLen: 64 }, { address: '2001:DB8:0::1', prefixLen: 48 }] })), /^interface\.addresses\[1\]\.address .* twice/);
});

test('routes: default forms, CIDR, families', () => {
  const [a, b, c, d, e] = checkRoutes([
    route({ gateway: '10.0.0.1' }),
    route({ dest: 'default', gateway: 'fe80::1' }),
    route({ dest: '10.251.0.0/16', gateway: '10.0.0.1', source: '10.0.0.2' }),
    route({ dest: '10.0.0.0/24', scope: 253 }),
    route({ dest: '::/0', gateway: '2001:db8::1' }),
  ]);
  assert.deepEqual(a, { family: 4, dest: '0.0.0.0', prefixLen: 0, gateway: '10.0.0.1', source: '', scope: 0, device: 'eth0' });
  assert.equal(b!.family, 6);
  assert.equal(b!.dest, '::');
  assert.deepEqual(c, { family: 4, dest: '10.251.0.0', prefixLen: 16, gateway: '10.0.0.1', source: '10.0.0.2', scope: 0, device: 'eth0' });
  assert.equal(d!.scope, 253);
  assert.deepEqual([e!.dest, e!.prefixLen, e!.family], ['::', 0, 6]);
  assert.equal(checkRoutes([route({ source: '2001:db8::2' })])[0]!.family, 6, 'a default without gateway takes the source\'s family');
  assert.equal(checkRoutes([route()])[0]!.family, 4, 'else IPv4');
});

test('bad routes are refused naming the field', () => {
  refuses(() => checkRoutes(Array.from({ length: MAX_ROUTES + 1 }, () => route({ gateway: '10.0.0.1' }))), /^routes has 65/);
  refuses(() => checkRoutes([route({ gateway: '10.0.0.1' }), route({ dest: '10.1.0.0', gateway: '10.0.0.1' })]), /^routes\[1\]\.dest .* CIDR/);
  refuses(() => checkRoutes([route({ dest: '10.1.0.1/16' })]), /^routes\[0\]\.dest 10\.1\.0\.1\/16 has host bits/);
  refuses(() => checkRoutes([route({ dest: '2001:db8::1/64' })]), /^routes\[0\]\.dest .* host bits/);
  refuses(() => checkRoutes([route({ dest: '10.1.0.0/33' })]), /^routes\[0\]\.dest/);
  refuses(() => checkRoutes([route({ dest: 'foo/8' })]), /^routes\[0\]\.dest/);
  refuses(() => checkRoutes([route({ dest: '10.1.0.0/16', gateway: '2001:db8::1' })]), /^routes\[0\]\.gateway .* family/);
  refuses(() => checkRoutes([route({ gateway: '10.0.0.1', source: '2001:db8::1' })]), /^routes\[0\]\.source .* family/);
  refuses(() => checkRoutes([route({ gateway: 'x' })]), /^routes\[0\]\.gateway/);
  refuses(() => checkRoutes([route({ device: '' })]), /^routes\[0\]\.device/);
  refuses(() => checkRoutes([route({ scope: 256 })]), /^routes\[0\]\.scope/);
});

test('neighbours: permanent entries only, fields named', () => {
  assert.deepEqual(checkNeighbors([{ ipAddress: '10.0.0.1', device: 'eth0', llAddress: 'AA:bb:cc:dd:ee:ff', state: 0 }]), [{ ip: '10.0.0.1', device: 'eth0', mac: 'aa:bb:cc:dd:ee:ff' }]);
  assert.equal(checkNeighbors([{ ipAddress: '2001:db8::1', device: 'eth0', llAddress: 'aa:bb:cc:dd:ee:ff', state: 0x80 }]).length, 1);
  const n = (over: Record<string, unknown>) => ({ ipAddress: '10.0.0.1', device: 'eth0', llAddress: 'aa:bb:cc:dd:ee:ff', state: 0, ...over });
  refuses(() => checkNeighbors(Array.from({ length: MAX_NEIGHBORS + 1 }, () => n({}))), /^neighbors has 257/);
  refuses(() => checkNeighbors([n({}), n({ ipAddress: '10.0.0' })]), /^neighbors\[1\]\.ip_address/);
  refuses(() => checkNeighbors([n({ llAddress: 'aa:bb:cc:dd:ee' })]), /^neighbors\[0\]\.ll_address/);
  refuses(() => checkNeighbors([n({ device: 'x'.repeat(16) })]), /^neighbors\[0\]\.device/);
  refuses(() => checkNeighbors([n({ state: 2 })]), /^neighbors\[0\]\.state/);
});

test('addressBytes reads both families, with :: and embedded IPv4', () => {
  assert.deepEqual(addressBytes('10.1.2.3'), [10, 1, 2, 3]);
  assert.deepEqual(addressBytes('2001:db8::1'), [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(addressBytes('::'), new Array(16).fill(0));
  assert.deepEqual(addressBytes('::ffff:1.2.3.4').slice(10), [0xff, 0xff, 1, 2, 3, 4]);
  assert.deepEqual(addressBytes('1:2:3:4:5:6:7:8').slice(14), [0, 8]);
});
