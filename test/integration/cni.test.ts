// Integration test of hako's CNI runtime side with Debian's real plugins and no VM: a
// fresh netns joins a test copy of the hako network (own bridge, own small subnet, own
// network name), is reached on its address and through a published port, and leaves no
// veth, lease or iptables rule behind; a failed ADD and a DEL after the netns vanished too.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Code, HakoError } from '../../src/errors/index.js';
import { cniAdd, cniDel, type CniAttachment } from '../../src/network/cni.js';
import { parseConflist } from '../../src/network/cni-config.js';
import { containerIpv4, type CniResult } from '../../src/network/cni-result.js';
import { checkSubnetFree, DEFAULT_PLUGIN_DIRS, hakoConflist, parseIpAddrJson } from '../../src/network/hako-network.js';
import { ensureHostPortFree, portMappingsArg, type PortMapping } from '../../src/network/ports.js';

const skip = process.getuid?.() !== 0 ? 'needs root (netns, bridge, iptables)'
  : !existsSync('/usr/lib/cni/bridge') ? 'needs containernetworking-plugins in /usr/lib/cni (npm run setup)'
    : false;

const tag = randomBytes(3).toString('hex');
const bridge = `hkt${tag}`;
const network = `hako-cni-test-${tag}`;
const leases = `/var/lib/cni/networks/${network}`;
const namespaces = [`hako-cni-${tag}-a`, `hako-cni-${tag}-b`, `hako-cni-${tag}-c`];
const ids = [`cni-it-${tag}-a`, `cni-it-${tag}-b`, `cni-it-${tag}-c`];
const children: ChildProcess[] = [];
// Attachments that may still be up when a test fails, for the after hook's DEL.
const live = new Map<string, { a: CniAttachment; result?: CniResult }>();

function run(argv: string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(argv[0] as string, argv.slice(1), { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${argv.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** iptablesMentioning returns the iptables-save lines (all tables) that hold any of words. */
async function iptablesMentioning(...words: string[]): Promise<string[]> {
  return (await run(['iptables-save'])).split('\n').filter((l) => words.some((w) => l.includes(w)));
}

/** leasesOf lists host-local's allocation files (one per address, first line the container id) held for id. */
async function leasesOf(id: string): Promise<string[]> {
  const files = (await readdir(leases).catch(() => [] as string[])).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  const mine: string[] = [];
  for (const f of files) if ((await readFile(`${leases}/${f}`, 'utf8').catch(() => '')).split(/\r?\n/)[0] === id) mine.push(f);
  return mine;
}

/** bridgePorts lists the interfaces enslaved to the test bridge (the host ends of veths). */
async function bridgePorts(): Promise<string[]> {
  const out = await run(['ip', '-j', 'link', 'show', 'master', bridge]).catch(() => '[]');
  return (JSON.parse(out || '[]') as Array<{ ifname: string }>).map((l) => l.ifname);
}

// A small subnet nobody on this host uses: 10.250.X.0/28, X random, checked by checkSubnetFree.
async function freeSubnet(): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const subnet = `10.250.${randomBytes(1)[0]}.0/28`;
    if (await checkSubnetFree(subnet, bridge).then(() => true, () => false)) return subnet;
  }
  throw new Error('no free 10.250.X.0/28 subnet on this host');
}

async function freeHostPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ host: '0.0.0.0', port: 0 }, r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** listenInNetns starts a TCP server in the netns on port that answers every connection with "hello <tag>". */
async function listenInNetns(ns: string, port: number): Promise<void> {
  const js = `require('net').createServer((s) => s.end('hello ${tag}\\n')).listen(${port}, '0.0.0.0', () => console.log('ready'))`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', js], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const deadline = Date.now() + 10_000;
  while (!out.includes('ready')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`listener in ${ns} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** fetchGreeting connects to host:port and returns what the server says before closing. */
function fetchGreeting(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, timeout: 5000 });
    let data = '';
    sock.on('data', (c: Buffer) => (data += c.toString()));
    sock.on('end', () => resolve(data.trim()));
    sock.on('timeout', () => sock.destroy(new Error(`no answer from ${host}:${port} within 5 s`)));
    sock.on('error', reject);
  });
}

/** scrubIptables deletes the rules whose comments name one of ids, and the per-container chains they jump to. */
async function scrubIptables(words: string[]): Promise<void> {
  for (const table of ['nat', 'filter']) {
    const rules = (await run(['iptables', '-t', table, '-S']).catch(() => '')).split('\n').filter((l) => words.some((w) => l.includes(w)));
    // bridge's masquerade chain is CNI-<hash>, portmap's DNAT chain CNI-DN-<hash> (names cut to 28 characters).
    const chains = new Set(rules.flatMap((r) => /-j (CNI-(?:DN-)?[0-9a-f]{16,})\b/.exec(r)?.[1] ?? []));
    for (const r of rules) await run(['sh', '-c', `iptables -t ${table} ${r.replace(/^-A /, '-D ')}`]).catch(() => {});
    for (const chain of chains) {
      await run(['iptables', '-t', table, '-F', chain]).catch(() => {});
      await run(['iptables', '-t', table, '-X', chain]).catch(() => {});
    }
  }
}

const subnet = skip === false ? await freeSubnet() : '10.250.0.0/28';
const conflist = hakoConflist({ subnet, bridge, name: network });

function attachment(i: number, extra: Partial<CniAttachment> = {}): CniAttachment {
  return { conflist, pluginDirs: DEFAULT_PLUGIN_DIRS, containerId: ids[i] as string, netns: `/run/netns/${namespaces[i]}`, ifname: 'eth0', timeoutMs: 20_000, ...extra };
}

after(async () => {
  if (skip !== false) return;
  for (const c of children) c.kill('SIGKILL');
  for (const { a, result } of live.values()) await cniDel({ ...a, prevResult: result }).catch(() => {});
  // Whatever a failed assertion left: rules naming our containers, the bridge, the namespaces, the leases.
  // Rules name a container by id (comments) or only by address (firewall, DNAT targets).
  await scrubIptables([...ids, subnet.replace(/0\/28$/, '')]);
  await run(['ip', 'link', 'del', bridge]).catch(() => {});
  for (const ns of namespaces) await run(['ip', 'netns', 'del', ns]).catch(() => {});
  await rm(leases, { recursive: true, force: true });
});

test('ADD: address, default route, loopback, reachable directly and through a published port; DEL leaves nothing', { skip, timeout: 120_000 }, async () => {
  const ns = namespaces[0] as string;
  const id = ids[0] as string;
  await run(['ip', 'netns', 'add', ns]);
  const hostPort = await freeHostPort();
  const mapping: PortMapping = { hostIP: '0.0.0.0', hostPort, containerPort: 8080, protocol: 'tcp' };
  await ensureHostPortFree(mapping);
  const a = attachment(0, { capabilityArgs: { portMappings: portMappingsArg([mapping]) } });
  live.set(id, { a });
  const result = await cniAdd(a);
  live.set(id, { a, result });

  // The result, and the netns as the kernel sees it.
  const c = containerIpv4(result, 'eth0');
  const gateway = subnet.replace(/0\/28$/, '1');
  assert.equal(c.gateway, gateway, 'host-local gives the first address to the gateway');
  assert.ok(c.address.startsWith(subnet.replace(/0\/28$/, '')) && c.prefixLength === 28, `${c.cidr} is in ${subnet}`);
  const eth0 = parseIpAddrJson(await run(['ip', '-n', ns, '-j', 'addr', 'show', 'eth0']));
  assert.deepEqual(eth0.map((x) => `${x.address}/${x.prefixLength}`), [c.cidr]);
  const routes = JSON.parse(await run(['ip', '-n', ns, '-j', 'route', 'show', 'default'])) as Array<{ gateway?: string; dev?: string }>;
  assert.deepEqual(routes.map((r) => [r.gateway, r.dev]), [[gateway, 'eth0']]);
  const lo = JSON.parse(await run(['ip', '-n', ns, '-j', 'link', 'show', 'lo'])) as Array<{ flags: string[] }>;
  assert.ok(lo[0]?.flags.includes('UP'), 'loopback, last in the chain, set lo up');
  assert.deepEqual(result.interfaces?.map((i) => i.name).filter((n) => n !== bridge && n !== 'eth0').length, 1, 'one host veth');
  const veth = result.interfaces?.find((i) => i.name !== bridge && (i.sandbox ?? '') === '')?.name as string;
  assert.deepEqual(await bridgePorts(), [veth]);
  assert.deepEqual(await leasesOf(id), [c.address], 'host-local keeps a file per address naming the container id');
  assert.equal((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim(), '1', 'bridge with isGateway turns on forwarding');
  assert.equal((await readFile(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, 'utf8')).trim(), '1', 'portmap with snat sets route_localnet on the bridge');
  assert.ok((await iptablesMentioning(id)).length >= 2, 'bridge (ipMasq) and portmap rules carry the container id in comments');
  assert.ok((await iptablesMentioning(`${c.address}/32`)).length >= 1, 'firewall rules name the container address');

  // The bridge now holds the gateway address: the subnet is free for this bridge, taken for any other.
  await checkSubnetFree(subnet, bridge);
  await assert.rejects(checkSubnetFree(subnet, 'hako0'), (e: unknown) => e instanceof HakoError && e.code === Code.FAILED_PRECONDITION
    && e.message.includes(`${gateway}/28 on ${bridge}`));

  // Reach a listener in the netns: directly, through 127.0.0.1 (portmap's snat + route_localnet)
  // and through the host's own non-loopback address.
  await listenInNetns(ns, 8080);
  assert.equal(await fetchGreeting(c.address, 8080), `hello ${tag}`);
  assert.equal(await fetchGreeting('127.0.0.1', hostPort), `hello ${tag}`, '127.0.0.1:HOSTPORT reaches the container');
  const hostAddr = parseIpAddrJson(await run(['ip', '-j', 'addr', 'show']))
    .find((x) => x.ifname !== bridge && x.ifname !== 'lo' && !x.address.startsWith('127.'));
  if (hostAddr !== undefined) assert.equal(await fetchGreeting(hostAddr.address, hostPort), `hello ${tag}`, `${hostAddr.address}:HOSTPORT reaches the container`);

  // DEL with the cached result: no veth, no lease, no rule; and DEL again is fine.
  await cniDel({ ...a, prevResult: result });
  live.delete(id);
  assert.ok(!(await bridgePorts()).includes(veth));
  await assert.rejects(run(['ip', 'link', 'show', veth]), /does not exist/);
  await assert.rejects(run(['ip', '-n', ns, 'link', 'show', 'eth0']), /does not exist/);
  assert.deepEqual(await leasesOf(id), []);
  assert.deepEqual(await iptablesMentioning(id, `${c.address}/32`), []);
  await cniDel({ ...a, prevResult: result });
  await assert.rejects(fetchGreeting('127.0.0.1', hostPort), /ECONNREFUSED/, 'the published port is gone');
});

test('a failed ADD (last plugin missing) leaves no veth, lease or rule', { skip, timeout: 60_000 }, async () => {
  const ns = namespaces[1] as string;
  const id = ids[1] as string;
  await run(['ip', 'netns', 'add', ns]);
  const broken = parseConflist({ ...conflist, plugins: [...conflist.plugins, { type: 'hako-no-such-plugin' }] }, 'broken');
  const a = { ...attachment(1, { capabilityArgs: { portMappings: portMappingsArg([{ hostIP: '0.0.0.0', hostPort: await freeHostPort(), containerPort: 80, protocol: 'tcp' }]) } }), conflist: broken };
  live.set(id, { a });
  const portsBefore = await bridgePorts();
  const err = await cniAdd(a).then(() => assert.fail('ADD succeeded'), (e: unknown) => e as HakoError);
  assert.equal(err.code, Code.NOT_FOUND);
  assert.match(err.message, new RegExp(`CNI ADD of network "${network}" for container ${id}: CNI plugin "hako-no-such-plugin" not found in /opt/cni/bin, /usr/lib/cni`));
  live.delete(id);
  assert.deepEqual(await bridgePorts(), portsBefore, 'no new veth on the bridge');
  assert.deepEqual(await leasesOf(id), []);
  assert.deepEqual(await iptablesMentioning(id), []);
  await assert.rejects(run(['ip', '-n', ns, 'link', 'show', 'eth0']), /does not exist/);
});

test('DEL after the netns vanished: every plugin runs, the lease and port rules go', { skip, timeout: 60_000 }, async () => {
  const ns = namespaces[2] as string;
  const id = ids[2] as string;
  await run(['ip', 'netns', 'add', ns]);
  const a = attachment(2, { capabilityArgs: { portMappings: portMappingsArg([{ hostIP: '0.0.0.0', hostPort: await freeHostPort(), containerPort: 80, protocol: 'tcp' }]) } });
  live.set(id, { a });
  const result = await cniAdd(a);
  live.set(id, { a, result });
  const c = containerIpv4(result, 'eth0');
  const veth = result.interfaces?.find((i) => i.name !== bridge && (i.sandbox ?? '') === '')?.name as string;
  assert.ok((await bridgePorts()).includes(veth));
  await run(['ip', 'netns', 'del', ns]);
  await cniDel({ ...a, prevResult: result });
  live.delete(id);
  // The veth died with the netns; host-local released the lease; portmap and firewall removed theirs.
  assert.ok(!(await bridgePorts()).includes(veth));
  assert.deepEqual(await leasesOf(id), []);
  const left = await iptablesMentioning(id, `${c.address}/32`);
  assert.deepEqual(left.filter((l) => l.includes('dnat name') || l.includes('CNI-FORWARD')), [], 'no portmap or firewall rule is left');
  // bridge 1.1.1 skips its ipMasq teardown when the netns is gone: it learns the addresses to
  // unmasquerade from the interface inside. Its POSTROUTING jump and chain stay behind, which is
  // why hako must run DEL before it deletes a netns. (Fails once a plugin release fixes this.)
  const masq = left.filter((l) => !l.includes('dnat name') && !l.includes('CNI-FORWARD'));
  assert.deepEqual(masq.map((l) => /-j (\S+)/.exec(l)?.[1]?.replace(/^CNI-[0-9a-f]{24}$/, 'CNI-<id>')), ['CNI-<id>', 'ACCEPT', 'MASQUERADE'], masq.join('\n'));
  await scrubIptables([id]);
  assert.deepEqual(await iptablesMentioning(id), []);
});
