// `hako run` networking with the host's real CNI plugins: a published port answers on the host,
// two sandboxes get different addresses and reach each other over the bridge, --network none
// has loopback only, bad input fails clearly, and nothing is left: no namespace, veth, tap,
// iptables rule or IPAM lease, after a normal exit, after `hako rm -f`, and after a SIGKILLed owner.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { hako, prefix, sweep, waitFor, stateOf } from '../integration/cli-harness.js';
import { retry, tcpRead } from '../lib/net.js';

const ids: string[] = [];
let n = 0;
function newId(what: string): string {
  const id = `${prefix}-${what}-${n++}`;
  ids.push(id);
  return id;
}

/** leftovers lists what of sandbox id's network is still on the host. */
function leftovers(id: string): string[] {
  const found: string[] = [];
  if (existsSync(`/run/netns/hako-${id}`)) found.push(`netns hako-${id}`);
  const rules = execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => l.includes(id));
  if (rules.length > 0) found.push(`iptables: ${rules.join(' | ')}`);
  const leases = '/var/lib/cni/networks/hako';
  if (existsSync(leases)) {
    for (const f of readdirSync(leases)) {
      if (/^\d+\.\d+\.\d+\.\d+$/.test(f) && readFileSync(`${leases}/${f}`, 'utf8').includes(id)) found.push(`IPAM lease ${f}`);
    }
  }
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).split('\n').filter((l) => /: hkt[0-9a-f]+/.test(l));
  if (links.length > 0) found.push(`taps: ${links.length}`);
  if (existsSync(`/run/hako/sandboxes/${id}`)) found.push('sandbox dir');
  return found;
}

async function assertClean(id: string): Promise<void> {
  assert.ok(await waitFor(() => leftovers(id).length === 0, 20_000), `left behind for ${id}: ${leftovers(id).join('; ')}`);
}

after(async () => {
  for (const id of ids) await hako(['rm', '-f', id]);
  await sweep();
});

test('hako run -p publishes a port on the host, and rm -f takes the network down', async () => {
  const id = newId('pub');
  const r = await hako(['run', '-d', '--name', id, '-p', '18080:8080', 'busybox', '--', 'sh', '-c', 'while :; do echo hello-$(hostname) | nc -l -p 8080; done']);
  assert.equal(r.code, 0, r.stderr);
  const got = await retry(async () => {
    const s = await tcpRead('127.0.0.1', 18080);
    if (!s.includes('hello')) throw new Error(`got ${JSON.stringify(s)}`);
    return s;
  }, 30_000);
  assert.equal(got.trim(), `hello-${id}`);
  const dup = await hako(['run', '--rm', '-p', '18080:80', 'busybox', '--', 'true']);
  assert.notEqual(dup.code, 0, 'a second publish of 18080 fails');
  assert.match(dup.stderr, /18080.*already published/, dup.stderr);
  assert.equal((await hako(['rm', '-f', id])).code, 0);
  await assertClean(id);
});

test('two sandboxes get different addresses and reach each other over the bridge', async () => {
  const a = newId('peer-a');
  const b = newId('peer-b');
  assert.equal((await hako(['run', '-d', '--name', a, 'busybox', '--', 'sh', '-c', 'while :; do echo from-a | nc -l -p 7070; done'])).code, 0);
  try {
    const ipOf = async (id: string) => {
      const r = await hako(['exec', id, '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
      const m = /inet (\d+\.\d+\.\d+\.\d+)/.exec(r.stdout);
      assert.ok(m, `no address on ${id}: ${r.stdout}${r.stderr}`);
      return m[1]!;
    };
    const ipA = await ipOf(a);
    const r = await hako(['run', '--rm', '--name', b, 'busybox', '--', 'sh', '-c', `ip -4 -o addr show eth0; nc -w 5 ${ipA} 7070`]);
    assert.equal(r.code, 0, r.stderr);
    const ipB = /inet (\d+\.\d+\.\d+\.\d+)/.exec(r.stdout)?.[1];
    assert.ok(ipB && ipB !== ipA, `different addresses: ${ipA} and ${ipB}`);
    assert.match(r.stdout, /from-a/);
  } finally {
    await hako(['rm', '-f', a]);
  }
  await assertClean(a);
  await assertClean(b);
});

test('the container reaches the host, and resolv.conf, hosts and hostname are generated', async () => {
  const id = newId('out');
  const server = createServer((s) => s.end('host-says-hi\n'));
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  const port = (server.address() as { port: number }).port;
  try {
    const r = await hako(['run', '--rm', '--name', id, '--hostname', 'web1', '--dns', '10.0.0.53', '--dns-search', 'corp.test', '--add-host', 'db:10.9.9.9', 'busybox', '--',
      'sh', '-c', `gw=$(ip route | awk '/^default/ {print $3}'); nc -w 5 $gw ${port}; hostname; cat /etc/resolv.conf /etc/hosts`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /host-says-hi/);
    assert.match(r.stdout, /^web1$/m);
    assert.match(r.stdout, /^nameserver 10\.0\.0\.53$/m);
    assert.match(r.stdout, /^search corp\.test$/m);
    assert.match(r.stdout, /^10\.9\.9\.9\tdb$/m);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\.\d+\tweb1$/m);
  } finally {
    server.close();
  }
  await assertClean(id);
});

test('hako run --network none has loopback only', async () => {
  const id = newId('none');
  const r = await hako(['run', '--rm', '--name', id, '--network', 'none', 'busybox', '--', 'sh', '-c', 'ls /sys/class/net']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split(/\s+/), ['lo']);
  assert.ok(!existsSync(`/run/netns/hako-${id}`));
  await assertClean(id);
});

test('bad network input fails with a clear error and leaves nothing', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['-p', '70000:80'], /port mapping "70000:80".*outside 1-65535/],
    [['-p', '80'], /port mapping "80"/],
    [['--network', 'bridge'], /--network "bridge": want hako or none/],
    [['--network', 'none', '-p', '8080:80'], /cannot be combined with --network none/],
    [['--add-host', 'nocolon'], /--add-host "nocolon"/],
  ];
  for (const [flags, want] of cases) {
    const id = newId('bad');
    const r = await hako(['run', '--rm', '--name', id, ...flags, 'busybox', '--', 'true']);
    assert.notEqual(r.code, 0, `${flags.join(' ')} must fail`);
    assert.match(r.stderr, want, `${flags.join(' ')}: ${r.stderr}`);
    await assertClean(id);
  }
  // A host port something else listens on.
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(18181, '0.0.0.0', r));
  try {
    const id = newId('busy');
    const r = await hako(['run', '--rm', '--name', id, '-p', '18181:80', 'busybox', '--', 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /18181/, r.stderr);
    await assertClean(id);
  } finally {
    busy.close();
  }
});

test('a SIGKILLed hako run leaves a network that hako rm -f removes', async () => {
  const id = newId('killed');
  let child: import('node:child_process').ChildProcess | undefined;
  const running = hako(['run', '--name', id, '-p', '18282:80', 'busybox', '--', 'sleep', '1000'], { onSpawn: (c) => (child = c) });
  assert.ok(await waitFor(() => stateOf(id)?.status === 'ready' || (stateOf(id)?.containers.some((c) => c.status === 'running') ?? false), 120_000), 'the sandbox came up');
  assert.ok(existsSync(`/run/netns/hako-${id}`), 'its namespace exists');
  const owner = stateOf(id)!.ownerPid;
  process.kill(owner, 'SIGKILL');
  child?.kill('SIGKILL');
  await running;
  assert.ok(leftovers(id).length > 0, 'the network outlived the killed owner');
  const rm = await hako(['rm', '-f', id]);
  assert.equal(rm.code, 0, rm.stderr);
  await assertClean(id);
});

test('a missing CNI plugin and a subnet the host already uses fail clearly and leave nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hako-netcfg-'));
  const veth = `hkc${process.pid % 100000}`;
  try {
    const missing = join(dir, 'missing.toml');
    writeFileSync(missing, '[network]\nplugin_dirs = ["/nonexistent-cni-dir"]\nbridge = "hkbad0"\nsubnet = "10.215.0.0/24"\n');
    const id1 = newId('noplugin');
    const r1 = await hako(['run', '--rm', '--name', id1, 'busybox', '--', 'true'], { env: { ...process.env, HAKO_CONFIG: missing } });
    assert.notEqual(r1.code, 0);
    assert.match(r1.stderr, /CNI plugin "bridge" not found in \/nonexistent-cni-dir/, r1.stderr);
    await assertClean(id1);
    execFileSync('sh', ['-c', `ip link add ${veth} type veth peer name ${veth}p && ip addr add 10.216.3.1/24 dev ${veth}`]);
    const conflict = join(dir, 'conflict.toml');
    writeFileSync(conflict, '[network]\nbridge = "hkbad1"\nsubnet = "10.216.0.0/16"\n');
    const id2 = newId('overlap');
    const r2 = await hako(['run', '--rm', '--name', id2, 'busybox', '--', 'true'], { env: { ...process.env, HAKO_CONFIG: conflict } });
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, new RegExp(`subnet 10\\.216\\.0\\.0/16 overlaps an address of this host \\(10\\.216\\.3\\.1/24 on ${veth}\\)`), r2.stderr);
    await assertClean(id2);
    assert.equal(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).includes('hkbad'), false, 'no bridge was made');
  } finally {
    try {
      execFileSync('ip', ['link', 'del', veth], { stdio: 'ignore' });
    } catch {
      // not made
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('QEMU killed under a networked hako run: the run ends and its network goes', async () => {
  const id = newId('qkill');
  const running = hako(['run', '--rm', '--name', id, '-p', '18383:80', 'busybox', '--', 'sleep', '1000']);
  assert.ok(await waitFor(() => (stateOf(id)?.qemuPid ?? 0) > 0 && existsSync(`/run/netns/hako-${id}`), 120_000), 'the sandbox came up');
  assert.ok(await waitFor(() => stateOf(id)?.containers.some((c) => c.status === 'running') ?? false, 60_000), 'the container runs');
  process.kill(stateOf(id)!.qemuPid, 'SIGKILL');
  const r = await running;
  assert.notEqual(r.code, 0, 'the run reports the lost VM');
  await assertClean(id);
});
