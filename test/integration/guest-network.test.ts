// The guest side of networking on real QEMU: a VM with a virtio-net NIC on a tap that is moved into
// a test network namespace; the agent configures the NIC, routes and a neighbour, and the namespace pings the guest.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentClient, type GuestRoute } from '../../src/agent-client/index.js';
import { Code, HakoError } from '../../src/errors/index.js';
import { probeAccel } from '../../src/hypervisor/index.js';
import { QemuHypervisor, type QemuVm } from '../../src/hypervisor/qemu/index.js';
import { BASE_KERNEL_CMDLINE, ensureAssets } from '../../src/image/index.js';
import { Logger, streamSink } from '../../src/log/index.js';

const log = new Logger(streamSink(process.stderr), 'warn');
// Unique per run: parallel runs use their own tap and namespace (the subnet lives inside the namespace).
const tag = `${process.pid % 100_000}`;
const tap = `hkn${tag}`;
const ns = `hako-gnet-${tag}`;
const n = (process.pid % 250) + 1;
const hostIp = `10.250.${n}.1`;
const guestIp = `10.250.${n}.2`;
const pidHex = (process.pid & 0xffffff).toString(16).padStart(6, '0');
const guestMac = `52:54:00:${pidHex.slice(0, 2)}:${pidHex.slice(2, 4)}:${pidHex.slice(4, 6)}`;
let work = '';
let vm: QemuVm | undefined;
let agent: AgentClient | undefined;
let tapMac = '';
const timings: Record<string, number> = {};

const inNs = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
const ping = (waitS: number): boolean => spawnSync('ip', ['netns', 'exec', ns, 'busybox', 'ping', '-c1', `-W${waitS}`, guestIp], { stdio: 'ignore' }).status === 0;
const linkExists = (args: string[]): boolean => spawnSync('ip', [...args, 'link', 'show', tap], { stdio: 'ignore' }).status === 0;

async function consoleTail(): Promise<string> {
  return (await readFile(join(work, 'console.log'), 'utf8').catch(() => '')).slice(-3000);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hako-guest-net-'));
  const assets = await ensureAssets({ log });
  const { accel } = await probeAccel('auto');
  vm = await new QemuHypervisor({ log }).start({
    id: `guest-net-${tag}`,
    vcpus: 1,
    memoryMiB: 512,
    accel: accel.kind === 'tcg' ? { ...accel, tbSizeMiB: 64 } : accel,
    runtimeDir: join(work, 'vm'),
    kernel: { path: assets.kernel, params: BASE_KERNEL_CMDLINE.split(' ') },
    devices: [
      { kind: 'blk', id: 'root', path: assets.rootImage, readonly: true },
      { kind: 'serial-console', logPath: join(work, 'console.log') },
      { kind: 'virtio-serial-port', name: 'agent.channel.0', socketPath: join(work, 'agent.sock') },
      { kind: 'rng' },
      // QEMU creates the tap in the host's namespace; the test moves it into its own.
      { kind: 'net-tap', ifname: tap, mac: guestMac },
    ],
  });
  execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['link', 'set', tap, 'netns', ns]);
  inNs('ip', 'link', 'set', 'lo', 'up');
  inNs('ip', 'addr', 'add', `${hostIp}/24`, 'dev', tap);
  inNs('ip', 'link', 'set', tap, 'up');
  tapMac = (JSON.parse(inNs('ip', '-j', 'link', 'show', tap)) as Array<{ address: string }>)[0]!.address;
  // The namespace never answers ARP (arp_ignore 8) and knows the guest statically: the guest can
  // only answer a ping through the permanent neighbour entry that AddARPNeighbors gives it.
  inNs('sh', '-c', `echo 8 > /proc/sys/net/ipv4/conf/${tap}/arp_ignore`);
  inNs('ip', 'neigh', 'replace', guestIp, 'lladdr', guestMac, 'dev', tap, 'nud', 'permanent');
  const t0 = Date.now();
  agent = await AgentClient.connect(join(work, 'agent.sock'), { timeoutMs: 30_000, log });
  try {
    await agent.waitReady({ timeoutMs: 120_000 });
  } catch (err) {
    throw new Error(`agent not ready: ${String(err)}\nconsole:\n${await consoleTail()}`);
  }
  timings.readyMs = Date.now() - t0;
}, { timeout: 30 * 60_000 });

after(async () => {
  agent?.close();
  const pid = vm?.pid;
  await vm?.stop({ timeoutMs: 5_000 }).catch(() => {});
  process.stderr.write(`guest network timings: ${JSON.stringify(timings)}\n`);
  // The agent's own timing lines from the guest console.
  const lines = (await readFile(join(work, 'console.log'), 'utf8').catch(() => '')).split('\n');
  for (const l of lines.filter((x) => /"msg":"(hako-agent ready|interface updated|routes updated|fatal)/.test(x)).slice(0, 20)) process.stderr.write(`guest: ${l.slice(0, 400)}\n`);
  // The tap goes with QEMU; then the namespace is deleted. Checked here, so a failed test is cleaned up too.
  const tapInNs = linkExists(['-n', ns]);
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  if (work) await rm(work, { recursive: true, force: true });
  if (pid !== undefined) assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the VM process is gone');
  assert.ok(!tapInNs, 'the tap is gone from the namespace');
  assert.ok(!linkExists([]), 'no tap in the host namespace');
  assert.ok(!execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').some((l) => l.split(' ')[0] === ns), 'the namespace is gone');
});

const wantRoutes: GuestRoute[] = [
  { dest: 'default', gateway: hostIp, device: 'eth0', source: '', scope: 0 },
  { dest: '10.251.0.0/16', gateway: hostIp, device: 'eth0', source: '', scope: 0 },
];
const routeKey = (r: GuestRoute): string => `${r.dest} via ${r.gateway || '-'} dev ${r.device} src ${r.source || '-'} scope ${r.scope}`;
const expectedRoutes = [
  `0.0.0.0/0 via ${hostIp} dev eth0 src - scope 0`,
  `10.250.${n}.0/24 via - dev eth0 src ${guestIp} scope 253`,
  `10.251.0.0/16 via ${hostIp} dev eth0 src - scope 0`,
].sort();

test('UpdateInterface names the NIC found by its MAC and sets MTU and address', async () => {
  const t0 = Date.now();
  const got = await agent!.updateInterface({ name: 'eth0', hwAddr: guestMac, mtu: 1400, addresses: [{ address: guestIp, prefixLen: 24 }] });
  timings.updateInterfaceMs = Date.now() - t0;
  assert.deepEqual(got, { name: 'eth0', hwAddr: guestMac, mtu: 1400, addresses: [{ address: guestIp, prefixLen: 24 }] });
});

test('UpdateRoutes installs the default and a static route; ListInterfaces and ListRoutes report exactly that', async () => {
  const t0 = Date.now();
  const routes = await agent!.updateRoutes(wantRoutes);
  timings.updateRoutesMs = Date.now() - t0;
  assert.deepEqual(routes.map(routeKey).sort(), expectedRoutes);
  assert.deepEqual((await agent!.listRoutes()).map(routeKey).sort(), expectedRoutes);
  const ifaces = await agent!.listInterfaces();
  assert.deepEqual(ifaces.find((i) => i.name === 'eth0'), { name: 'eth0', hwAddr: guestMac, mtu: 1400, addresses: [{ address: guestIp, prefixLen: 24 }] });
  assert.deepEqual(ifaces.find((i) => i.name === 'lo')?.addresses, [{ address: '127.0.0.1', prefixLen: 8 }, { address: '::1', prefixLen: 128 }]);
  assert.deepEqual(ifaces.filter((i) => i.name !== 'lo' && i.name !== 'eth0' && i.addresses.length > 0), [], 'no other link has an address');
});

test('the guest answers a ping from the namespace only once it has the permanent neighbour', async () => {
  assert.ok(!ping(2), 'without the neighbour entry the guest cannot answer (the namespace ignores ARP)');
  const t0 = Date.now();
  await agent!.addArpNeighbors([{ ipAddress: hostIp, device: 'eth0', llAddress: tapMac }]);
  timings.addArpNeighborsMs = Date.now() - t0;
  const t1 = Date.now();
  assert.ok(ping(5), `the guest answers ${guestIp}\nconsole:\n${await consoleTail()}`);
  timings.pingMs = Date.now() - t1;
});

test('a warm UpdateInterface + UpdateRoutes round trip', async () => {
  const t0 = Date.now();
  await agent!.updateInterface({ name: 'eth0', hwAddr: guestMac, mtu: 1400, addresses: [{ address: guestIp, prefixLen: 24 }] });
  const t1 = Date.now();
  const routes = await agent!.updateRoutes(wantRoutes);
  timings.warmUpdateInterfaceMs = t1 - t0;
  timings.warmUpdateRoutesMs = Date.now() - t1;
  assert.deepEqual(routes.map(routeKey).sort(), expectedRoutes);
  // The address was replaced, not doubled, and the neighbour survived (the link stayed up).
  assert.ok(ping(5), 'still answers');
});

test('an unknown MAC is NOT_FOUND after the agent\'s wait', async () => {
  const t0 = Date.now();
  await assert.rejects(agent!.updateInterface({ name: 'eth1', hwAddr: '52:54:00:fe:fe:fe', mtu: 0, addresses: [] }),
    (e: unknown) => e instanceof HakoError && e.code === Code.NOT_FOUND && /52:54:00:fe:fe:fe/.test(e.message));
  const ms = Date.now() - t0;
  timings.notFoundMs = ms;
  assert.ok(ms >= 9_500 && ms < 20_000, `NOT_FOUND after ${ms} ms`);
});

test('invalid input is INVALID_ARGUMENT from the agent, naming the field', async () => {
  const bad: Array<[() => Promise<unknown>, RegExp]> = [
    [() => agent!.updateInterface({ name: 'eth0', hwAddr: '52:54:00:00:00', mtu: 0, addresses: [] }), /interface\.hw_addr/],
    [() => agent!.updateInterface({ name: 'lo', hwAddr: guestMac, mtu: 0, addresses: [] }), /interface\.name/],
    [() => agent!.updateInterface({ name: 'eth0', hwAddr: guestMac, mtu: 10, addresses: [] }), /interface\.mtu/],
    [() => agent!.updateInterface({ name: 'eth0', hwAddr: guestMac, mtu: 0, addresses: [{ address: '10.0.0.300', prefixLen: 24 }] }), /interface\.addresses\[0\]\.address/],
    [() => agent!.updateRoutes([{ dest: '10.251.0.1/16', gateway: hostIp, device: 'eth0', source: '', scope: 0 }]), /routes\[0\]\.dest/],
    [() => agent!.addArpNeighbors([{ ipAddress: hostIp, device: 'eth0', llAddress: 'nope' }]), /neighbors\[0\]\.ll_address/],
  ];
  for (const [call, field] of bad) {
    await assert.rejects(call(), (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT && field.test(e.message));
  }
  // Nothing changed.
  assert.deepEqual((await agent!.listRoutes()).map(routeKey).sort(), expectedRoutes);
});
