// Pod networking through containerd: `ctr run --cni` gives the VM an eth0 from the conflist,
// the host and the container reach each other over TCP, containers of one pod share localhost,
// and the task pid is a host process in the pod's namespace. Nothing may be left: no tap, no
// mirror, no namespace holder, no VM.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Logger, streamSink } from '../../src/log/index.js';
import { ensureAssets } from '../../src/image/index.js';
import { installShim } from '../../src/shim/install.js';
import { parseIpv4Cidr, ipv4NetsOverlap } from '../../src/network/ipv4.js';
import { pidsOf, run, waitFor, type RunResult } from './shim-helpers.js';
import { retry, tcpRead } from '../lib/net.js';

const NS = 'hako-e2e-net';
const IMAGE = 'localhost/busybox:latest';
const RUNTIME = 'io.containerd.hako.v2';
const RUN_ID = randomBytes(3).toString('hex');
const log = new Logger(streamSink(process.stderr), 'warn');
const ids: string[] = [];
let n = 0;

function newId(what: string): string {
  const id = `net-${RUN_ID}-${what}-${n++}`;
  ids.push(id);
  return id;
}

function ctr(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return run('ctr', ['-n', NS, ...args], { timeoutMs: opts.timeoutMs ?? 180_000 });
}

/** cniSubnet is the subnet of the conflist ctr uses (the first in /etc/cni/net.d). */
function cniSubnet(): string {
  const files = readdirSync('/etc/cni/net.d').filter((f) => /\.(conflist|conf|json)$/.test(f)).sort();
  assert.ok(files.length > 0, 'no CNI configuration in /etc/cni/net.d: setup writes one (npm run setup)');
  const conf = JSON.parse(readFileSync(`/etc/cni/net.d/${files[0]}`, 'utf8')) as { plugins?: Array<{ ipam?: { subnet?: string; ranges?: Array<Array<{ subnet: string }>> } }> };
  for (const p of conf.plugins ?? []) {
    const s = p.ipam?.subnet ?? p.ipam?.ranges?.[0]?.[0]?.subnet;
    if (s) return s;
  }
  throw new Error(`no IPAM subnet in /etc/cni/net.d/${files[0]}`);
}

/** hostLeftovers lists hako network pieces that must never outlive a sandbox. */
function hostLeftovers(): string[] {
  const found: string[] = [];
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  for (const l of links.split('\n')) if (/: hkt[0-9a-f]+/.test(l)) found.push(`tap in the host namespace: ${l.split(':')[1]?.trim()}`);
  // A holder lives as long as its shim (it gets SIGKILL when its parent dies); one whose parent is
  // gone (reparented to init) has leaked.
  for (const pid of pidsOf('hako-netns')) {
    let ppid: string | undefined;
    try {
      ppid = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1];
    } catch {
      continue; // exited meanwhile
    }
    if (ppid === '1') found.push(`orphaned namespace holder ${pid}`);
  }
  return found;
}

async function assertClean(id: string): Promise<void> {
  const gone = () => pidsOf('qemu-system', `guest=${id}`).length === 0 && hostLeftovers().length === 0;
  assert.ok(await waitFor(gone, 20_000, 100), `left behind for ${id}: qemu ${pidsOf('qemu-system', `guest=${id}`).join(',')}; ${hostLeftovers().join('; ')}`);
}

/** ctrRunForeground starts `ctr run --rm --cni` and leaves it running (ctr does CNI DEL when it returns). */
function ctrRunForeground(args: string[]): { child: ChildProcess; done: Promise<number | null>; output: () => string } {
  const child = spawn('ctr', ['-n', NS, 'run', '--rm', '--cni', '--runtime', RUNTIME, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, done, output: () => out };
}

async function taskPid(id: string): Promise<number> {
  let pid = 0;
  await waitFor(async () => {
    const r = await ctr(['task', 'ls']);
    const line = r.stdout.toString().split('\n').find((l) => l.split(/\s+/)[0] === id);
    const f = line?.trim().split(/\s+/);
    if (f && f[2] === 'RUNNING') pid = Number(f[1]);
    return pid > 0;
  }, 120_000, 200);
  assert.ok(pid > 0, `task ${id} never ran`);
  return pid;
}

before(async () => {
  await installShim({ restart: 'if-changed', log });
  const assets = await ensureAssets({ log });
  const imp = await ctr(['image', 'import', '--base-name', 'localhost/busybox', assets.busyboxArchive]);
  assert.equal(imp.code, 0, `image import: ${imp.stderr}`);
  // Shims of earlier tests may still be exiting: wait for them rather than blame them on us.
  assert.ok(await waitFor(() => hostLeftovers().length === 0, 20_000, 200), `clean before the tests: ${hostLeftovers().join('; ')}`);
});

after(async () => {
  for (const id of ids) {
    await ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    await ctr(['task', 'rm', '-f', id]);
    await ctr(['container', 'rm', id]);
  }
});

test('ctr run --cni: eth0 gets an address of the conflist subnet', async () => {
  const id = newId('addr');
  const r = await ctr(['run', '--rm', '--cni', '--runtime', RUNTIME, IMAGE, id, 'sh', '-c', 'ip -4 -o addr show eth0; ip route']);
  assert.equal(r.code, 0, r.stderr.toString());
  const m = /inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(r.stdout.toString());
  assert.ok(m, `no IPv4 address on eth0: ${r.stdout}`);
  assert.ok(ipv4NetsOverlap(parseIpv4Cidr(`${m[1]}/32`), parseIpv4Cidr(cniSubnet())), `${m[1]} is not in ${cniSubnet()}`);
  assert.match(r.stdout.toString(), /^default via /m, 'a default route');
  log.warn('timing', { what: 'ctr run --rm --cni', ms: r.ms });
  await assertClean(id);
});

test('ctr run --cni: the host reaches a listener in the container, the container reaches the host, and the task pid is in the pod namespace', async () => {
  const id = newId('tcp');
  const server = createServer((s) => s.once('data', (d) => { received.push(d.toString().trim()); s.end(); }));
  const received: string[] = [];
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  const port = (server.address() as AddressInfo).port;
  const fg = ctrRunForeground([IMAGE, id, 'sh', '-c', 'while :; do echo pong | nc -l -p 8080; done']);
  try {
    const pid = await taskPid(id);
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/net`), readlinkSync('/proc/self/ns/net'), 'the task pid lives in its own network namespace');
    const ip = await retry(async () => {
      const r = await ctr(['task', 'exec', '--exec-id', 'ip', id, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
      const m = /inet (\d+\.\d+\.\d+\.\d+)/.exec(r.stdout.toString());
      if (!m) throw new Error(`no address yet: ${r.stdout}${r.stderr}`);
      return m[1]!;
    }, 30_000);
    const nsAddr = execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-4', '-o', 'addr'], { encoding: 'utf8' });
    assert.ok(nsAddr.includes(ip), `the pod namespace of the task pid holds ${ip}: ${nsAddr}`);
    assert.equal((await retry(() => tcpRead(ip, 8080, 5000).then((s) => (s.trim() === 'pong' ? s : Promise.reject(new Error(s)))), 20_000)).trim(), 'pong');
    const gw = /default via (\S+)/.exec((await ctr(['task', 'exec', '--exec-id', 'rt', id, 'ip', 'route'])).stdout.toString())?.[1];
    assert.ok(gw, 'a default gateway');
    const r = await ctr(['task', 'exec', '--exec-id', 'out', id, 'sh', '-c', `echo ping | nc -w 5 ${gw} ${port}`]);
    assert.equal(r.code, 0, r.stderr.toString());
    assert.ok(await waitFor(() => received.includes('ping'), 5000), `the host got ${JSON.stringify(received)}`);
    const ps = await ctr(['task', 'ps', id]);
    assert.equal(ps.code, 0, ps.stderr.toString());
    assert.match(ps.stdout.toString(), new RegExp(`^${pid}\\s`, 'm'), `ctr task ps shows the task pid: ${ps.stdout}`);
  } finally {
    server.close();
    await ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    await fg.done;
  }
  await assertClean(id);
});

test('two containers of one pod talk over localhost', async () => {
  const pod = newId('pod');
  const b = newId('podb');
  const ann = `io.kubernetes.cri.sandbox-id=${pod}`;
  assert.equal((await ctr(['run', '-d', '--annotation', ann, '--runtime', RUNTIME, IMAGE, pod, 'sh', '-c', 'while :; do echo from-a | nc -l -p 9090; done'])).code, 0);
  try {
    await taskPid(pod);
    const r = await retry(async () => {
      const x = await ctr(['run', '--rm', '--annotation', ann, '--runtime', RUNTIME, IMAGE, b, 'nc', '-w', '3', '127.0.0.1', '9090']);
      if (!x.stdout.toString().includes('from-a')) throw new Error(`${x.stdout}${x.stderr}`);
      return x;
    }, 20_000);
    assert.equal(r.stdout.toString().trim(), 'from-a');
  } finally {
    await ctr(['task', 'kill', '-s', 'SIGKILL', pod]);
    await waitFor(async () => !(await ctr(['task', 'ls'])).stdout.toString().includes(`${pod} `), 20_000, 200);
    await ctr(['task', 'rm', '-f', pod]);
    await ctr(['container', 'rm', pod]);
  }
  await assertClean(pod);
});

test('QEMU killed under a networked pod: the task stops, ctr removes its network, nothing is left', async () => {
  const id = newId('qkill');
  const fg = ctrRunForeground([IMAGE, id, 'sleep', '1000']);
  await taskPid(id);
  const qemu = pidsOf('qemu-system', `guest=${id}`);
  assert.equal(qemu.length, 1);
  process.kill(qemu[0]!, 'SIGKILL');
  const code = await fg.done;
  assert.notEqual(code, null, fg.output());
  await assertClean(id);
});

test('shim killed under a networked pod: containerd cleans up through delete, nothing is left', async () => {
  const id = newId('shimkill');
  const fg = ctrRunForeground([IMAGE, id, 'sleep', '1000']);
  const pid = await taskPid(id);
  const shim = pidsOf('src/shim/main.', `-id ${id} `);
  assert.equal(shim.length, 1);
  process.kill(shim[0]!, 'SIGKILL');
  assert.ok(await waitFor(() => !existsSync(`/proc/${pid}`), 20_000, 100), 'the namespace holder went with its shim');
  await waitFor(() => pidsOf('qemu-system', `guest=${id}`).length === 0, 30_000, 200);
  await ctr(['task', 'rm', '-f', id]);
  await fg.done;
  await assertClean(id);
});
