// Unit tests for AgentClient's network calls against a fake agent: what the host sends, the checks
// on its own arguments, and that answers out of bounds or malformed are refused (INTERNAL).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, HakoError } from '../errors/index.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ARPNeighbor, Interface, InterfaceSchema, Route } from '../protocols/generated/hako/agent_pb.js';
import { fakeAgent } from '../../test/lib/fake-agent.js';
import { MAX_REPLY_INTERFACES, MAX_REPLY_ROUTES, type GuestInterface, type GuestRoute } from './network.js';

async function rejectsWith(p: Promise<unknown>, code: Code, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HakoError, `not a HakoError: ${String(err)}`);
    assert.equal(err.code, code, `code ${err.code} (${err.message})`);
    assert.match(err.message, re);
    return true;
  });
}

const eth0: GuestInterface = { name: 'eth0', hwAddr: '52:54:00:AB:CD:EF', mtu: 1400, addresses: [{ address: '10.250.7.2', prefixLen: 24 }] };
const back = { name: 'eth0', hwAddr: '52:54:00:ab:cd:ef', mtu: 1400, addresses: [{ address: '10.250.7.2', prefixLen: 24 }] };
const defaultRoute: GuestRoute = { dest: '0.0.0.0/0', gateway: '10.250.7.1', device: 'eth0', source: '', scope: 0 };

test('the network calls send their arguments and return the checked answers', async () => {
  let sentIface: Interface | undefined;
  let sentRoutes: Route[] = [];
  let sentNeighbors: ARPNeighbor[] = [];
  const { client } = fakeAgent({
    updateInterface: async (req) => { sentIface = req.interface; return back; },
    updateRoutes: async (req) => { sentRoutes = req.routes?.routes ?? []; return { routes: [defaultRoute] }; },
    listInterfaces: async () => ({ interfaces: [{ name: 'lo', hwAddr: '00:00:00:00:00:00', mtu: 65536, addresses: [{ address: '::1', prefixLen: 128 }] }, back] }),
    listRoutes: async () => ({ routes: [defaultRoute, { dest: '2001:db8::/64', gateway: '', device: 'eth0', source: '2001:db8::2', scope: 0 }] }),
    addARPNeighbors: async (req) => { sentNeighbors = req.neighbors; return {}; },
  });
  assert.deepEqual(await client.updateInterface(eth0), back);
  assert.deepEqual([sentIface?.name, sentIface?.hwAddr, sentIface?.mtu, sentIface?.addresses[0]?.prefixLen], ['eth0', '52:54:00:AB:CD:EF', 1400, 24]);
  assert.deepEqual(await client.updateRoutes([{ dest: 'default', gateway: '10.250.7.1', device: 'eth0', source: '', scope: 0 }]), [defaultRoute]);
  assert.deepEqual(sentRoutes.map((r) => [r.dest, r.gateway, r.device, r.scope]), [['default', '10.250.7.1', 'eth0', 0]]);
  assert.equal((await client.listInterfaces()).length, 2);
  assert.equal((await client.listRoutes())[1]!.source, '2001:db8::2');
  await client.addArpNeighbors([{ ipAddress: '10.250.7.1', device: 'eth0', llAddress: 'aa:bb:cc:dd:ee:ff' }]);
  assert.deepEqual(sentNeighbors.map((n) => [n.ipAddress, n.device, n.llAddress, n.state]), [['10.250.7.1', 'eth0', 'aa:bb:cc:dd:ee:ff', 0]]);
  client.close();
});

test('the host refuses arguments of the wrong shape or count before calling', async () => {
  let calls = 0;
  const { client } = fakeAgent({
    updateInterface: async () => { calls++; return back; },
    updateRoutes: async () => { calls++; return {}; },
    addARPNeighbors: async () => { calls++; return {}; },
  });
  await rejectsWith(client.updateInterface({ ...eth0, mtu: 1400.5 }), Code.INVALID_ARGUMENT, /interface\.mtu/);
  await rejectsWith(client.updateInterface({ ...eth0, mtu: -1 }), Code.INVALID_ARGUMENT, /interface\.mtu/);
  await rejectsWith(client.updateInterface({ ...eth0, addresses: [{ address: '10.0.0.1', prefixLen: 200 }] }), Code.INVALID_ARGUMENT, /addresses\[0\]\.prefix_len/);
  await rejectsWith(client.updateInterface({ ...eth0, addresses: new Array(17).fill(eth0.addresses[0]) }), Code.INVALID_ARGUMENT, /interface\.addresses has 17/);
  await rejectsWith(client.updateRoutes(new Array(65).fill(defaultRoute)), Code.INVALID_ARGUMENT, /routes has 65/);
  await rejectsWith(client.updateRoutes([{ ...defaultRoute, scope: 300 }]), Code.INVALID_ARGUMENT, /routes\[0\]\.scope/);
  await rejectsWith(client.addArpNeighbors(new Array(257).fill({ ipAddress: '10.0.0.1', device: 'eth0', llAddress: 'aa:bb:cc:dd:ee:ff' })), Code.INVALID_ARGUMENT, /neighbors has 257/);
  assert.equal(calls, 0);
  client.close();
});

test('malformed or oversized answers are refused as INTERNAL', async () => {
  const cases: Array<[string, MessageInitShape<typeof InterfaceSchema> | undefined, RegExp]> = [
    ['another interface', { ...back, name: 'eth1' }, /answered for eth1/],
    ['another MAC', { ...back, hwAddr: '52:54:00:ab:cd:00' }, /answered for eth0 \(52:54:00:ab:cd:00\)/],
    ['a bad MAC', { ...back, hwAddr: 'zz' }, /hw_addr/],
    ['a long name', { ...back, name: 'e'.repeat(16) }, /not an interface name/],
    ['a name with a space', { ...back, name: 'eth 0' }, /not an interface name/],
    ['a bad address', { ...back, addresses: [{ address: '10.250.7.300', prefixLen: 24 }] }, /not an IP address/],
    ['a bad prefix', { ...back, addresses: [{ address: '10.250.7.2', prefixLen: 33 }] }, /prefix length 33/],
    ['too many addresses', { ...back, addresses: new Array(257).fill({ address: '10.250.7.2', prefixLen: 24 }) }, /257 addresses/],
  ];
  for (const [what, answer, re] of cases) {
    const { client } = fakeAgent({ updateInterface: async () => answer ?? {} });
    await rejectsWith(client.updateInterface(eth0), Code.INTERNAL, re).catch((err: unknown) => { throw new Error(`${what}: ${String(err)}`); });
    client.close();
  }
  const routeCases: Array<[Partial<Route>, RegExp]> = [
    [{ dest: '0.0.0.0' }, /CIDR/],
    [{ dest: '0.0.0.0/33' }, /CIDR/],
    [{ dest: 'default' }, /not an IP address/],
    [{ gateway: '2001:db8::1' }, /family/],
    [{ source: 'x' }, /not an IP address/],
    [{ device: '' }, /not an interface name/],
    [{ scope: 256 }, /scope 256/],
  ];
  for (const [bad, re] of routeCases) {
    const { client } = fakeAgent({ listRoutes: async () => ({ routes: [{ ...defaultRoute, ...bad }] }) });
    await rejectsWith(client.listRoutes(), Code.INTERNAL, re);
    client.close();
  }
  const many = fakeAgent({
    listRoutes: async () => ({ routes: new Array(MAX_REPLY_ROUTES + 1).fill(defaultRoute) }),
    listInterfaces: async () => ({ interfaces: new Array(MAX_REPLY_INTERFACES + 1).fill(back) }),
  });
  await rejectsWith(many.client.listRoutes(), Code.INTERNAL, /4097 routes/);
  await rejectsWith(many.client.listInterfaces(), Code.INTERNAL, /1025 interfaces/);
  many.client.close();
});

test('the agent\'s own refusals keep their code', async () => {
  const { client } = fakeAgent({
    updateInterface: async () => { throw new HakoError(Code.NOT_FOUND, 'UpdateInterface: no link with MAC 52:54:00:ab:cd:ef appeared within 10000 ms'); },
  });
  await rejectsWith(client.updateInterface(eth0), Code.NOT_FOUND, /^agent UpdateInterface: .*52:54:00:ab:cd:ef/);
  client.close();
});
