// NIC hot-plug into a running VM, as `ctr run --cni` needs it: the sandbox makes a new network
// namespace (its holder's pid stands for it), "CNI" (here: ip, by hand) adds a veth later, and
// the sandbox follows: a NIC is plugged, mirrored and configured, and the host reaches the
// guest through the veth. Removing the veth unplugs it. Bad namespaces fail clearly, and
// nothing is left: no holder, tap, qdisc or VM.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { Logger, memorySink } from '../../src/log/index.js';
import { loadConfig } from '../../src/config/index.js';
import { ensureAssets } from '../../src/image/index.js';
import { Sandbox } from '../../src/sandbox/index.js';
import { Code, HakoError } from '../../src/errors/index.js';
import { BOOT_MS, assertClean, prefix, sweep, waitFor } from './cli-harness.js';

const sh = (cmd: string): string => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
const quiet = (cmd: string): void => {
  try {
    sh(`${cmd} 2>/dev/null`);
  } catch {
    // best effort
  }
};
const HOST_VETH = `hkv${process.pid % 100000}`;
const NS = `${prefix}-nic`;

function hostTaps(): string[] {
  return sh('ip -o link show').split('\n').filter((l) => /: hkt[0-9a-f]+/.test(l));
}

after(async () => {
  quiet(`ip link del ${HOST_VETH}`);
  quiet(`ip netns del ${NS}`);
  await sweep();
  assertClean('after the NIC hot-plug test');
  assert.deepEqual(hostTaps(), [], 'no tap is left in the host namespace');
});

test('a veth added after boot is hot-plugged, mirrored and configured; removing it unplugs the NIC', { timeout: BOOT_MS * 2 }, async () => {
  const { config } = await loadConfig();
  const log = new Logger(memorySink(), 'info');
  const assets = await ensureAssets({ log, cacheDir: config.runtime.cacheDir });
  const sb = await Sandbox.create({ id: `${prefix}-hot`, config, log, assets, network: { netns: { kind: 'new' }, watch: true } });
  try {
    const pid = sb.hostPid!;
    assert.ok(pid > 0, 'a namespace holder');
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/net`), readlinkSync('/proc/self/ns/net'), 'the holder has a namespace of its own');
    assert.deepEqual((await sb.api.listInterfaces()).map((i) => i.name).filter((n) => n !== 'lo'), [], 'no NIC before CNI ran');
    // What the bridge plugin does: a veth pair, one end renamed to eth0 in the pod, addresses, a default route.
    sh(`ip link add ${HOST_VETH} type veth peer name tmp${process.pid % 10000} netns /proc/${pid}/ns/net`);
    sh(`ip addr add 10.251.${process.pid % 200}.1/24 dev ${HOST_VETH} && ip link set ${HOST_VETH} up`);
    const ns = `nsenter --net=/proc/${pid}/ns/net`;
    sh(`${ns} ip link set tmp${process.pid % 10000} name eth0 && ${ns} ip addr add 10.251.${process.pid % 200}.2/24 dev eth0 && ${ns} ip link set eth0 up && ${ns} ip route add default via 10.251.${process.pid % 200}.1`);
    // Not /sys/class/net: nsenter --net keeps the host's sysfs mount, which shows the host's eth0.
    const mac = /link\/ether ([0-9a-f:]{17})/.exec(sh(`${ns} ip -o link show eth0`))?.[1] ?? '';
    await sb.syncNetwork();
    const ifs = await sb.api.listInterfaces();
    const eth0 = ifs.find((i) => i.name === 'eth0');
    assert.ok(eth0, `the guest has eth0: ${JSON.stringify(ifs)}`);
    assert.equal(eth0.hwAddr, mac, 'with the pod interface MAC');
    assert.deepEqual(eth0.addresses.filter((a) => a.address.includes('.')), [{ address: `10.251.${process.pid % 200}.2`, prefixLen: 24 }]);
    const routes = await sb.api.listRoutes();
    assert.ok(routes.some((r) => (r.dest === 'default' || r.dest === '' || r.dest === '0.0.0.0/0') && r.gateway === `10.251.${process.pid % 200}.1`), `a default route: ${JSON.stringify(routes)}`);
    assert.match(sh(`${ns} tc filter show dev eth0 ingress`), /mirred \(Egress Redirect to device hkt/, 'eth0 is mirrored to a tap');
    assert.deepEqual(hostTaps(), [], 'the tap lives in the pod namespace, not the host one');
    // The host reaches the guest's kernel through the veth, the tc mirror and the NIC.
    sh(`busybox ping -c 1 -W 10 10.251.${process.pid % 200}.2`);
    // CNI DEL: the veth goes; the sandbox follows on its own (netlink change feed).
    sh(`ip link del ${HOST_VETH}`);
    assert.ok(await waitFor(async () => !(await sb.api.listInterfaces()).some((i) => i.hwAddr === mac), 30_000), 'the NIC was unplugged');
  } finally {
    await sb.stop();
  }
  assert.ok(!existsSync(`/proc/${sb.hostPid}`), 'the holder is gone');
  assertClean('after the hot-plug sandbox');
});

test('a namespace path that does not exist, and an interface that cannot be mirrored, fail clearly and leave nothing', { timeout: BOOT_MS * 2 }, async () => {
  const { config } = await loadConfig();
  const log = new Logger(memorySink(), 'info');
  const assets = await ensureAssets({ log, cacheDir: config.runtime.cacheDir });
  await assert.rejects(
    Sandbox.create({ id: `${prefix}-nons`, config, log, assets, network: { netns: { kind: 'join', path: '/run/netns/no-such-namespace' } } }),
    (err: unknown) => err instanceof HakoError && err.code === Code.NOT_FOUND && /network namespace \/run\/netns\/no-such-namespace does not exist/.test(err.message),
  );
  assertClean('after a missing namespace');
  sh(`ip netns add ${NS} && ip -n ${NS} tuntap add tun7 mode tun && ip -n ${NS} addr add 10.252.0.2/24 dev tun7`);
  await assert.rejects(
    Sandbox.create({ id: `${prefix}-tun`, config, log, assets, network: { netns: { kind: 'join', path: `/run/netns/${NS}` } } }),
    (err: unknown) => err instanceof HakoError && /interface tun7 \(tun\) cannot be mirrored/.test(err.message),
  );
  assertClean('after an interface that cannot be mirrored');
  assert.equal(sh(`ip netns exec ${NS} tc qdisc show dev tun7`).includes('ingress'), false, 'no qdisc was left on it');
  sh(`ip netns del ${NS}`);
});
