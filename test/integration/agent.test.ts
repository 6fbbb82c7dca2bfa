// Boots a real guest (hako kernel + root image with the real hako-agent) under QEMU and drives
// the agent through AgentClient: guest facts, containers from the busybox image, stdio, exec, signals, tty.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentClient } from '../../src/agent-client/index.js';
import { corruptThenClient } from '../lib/corrupt-frame.js';
import { Code, HakoError } from '../../src/errors/index.js';
import { ensureAssets, type Assets } from '../../src/image/index.js';
import { run } from '../../src/image/run.js';
import { Logger, streamSink } from '../../src/log/index.js';
import { plainGuestArgv } from '../lib/plain-guest.js';

const log = new Logger(streamSink(process.stderr), 'info');
let assets: Assets;
let work: string;
let qemu: ChildProcess | undefined;
let qemuExit: Promise<number | null>;
let agent: AgentClient;
const timings: Record<string, number> = {};

/** spec builds an OCI runtime spec for the busybox rootfs on the share (read-only, shared by all tests). */
function spec(args: string[], opts: { terminal?: boolean; env?: string[]; memoryLimit?: number } = {}): object {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: opts.terminal ?? false,
      user: { uid: 0, gid: 0 },
      args,
      env: opts.env ?? ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: ['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_AUDIT_WRITE', 'CAP_CHOWN', 'CAP_SETUID', 'CAP_SETGID'],
        effective: ['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_AUDIT_WRITE', 'CAP_CHOWN', 'CAP_SETUID', 'CAP_SETGID'],
        permitted: ['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_AUDIT_WRITE', 'CAP_CHOWN', 'CAP_SETUID', 'CAP_SETGID'],
      },
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'box',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
      { destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'rw'] },
    ],
    linux: {
      resources: opts.memoryLimit ? { memory: { limit: opts.memoryLimit } } : {},
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }, { type: 'network', path: '/var/run/netns/ignored' }],
      maskedPaths: ['/proc/kcore', '/proc/keys'],
      readonlyPaths: ['/proc/sys'],
    },
  };
}

/** readAll reads a stream until eof (bounded by a deadline). */
async function readAll(kind: 'stdout' | 'stderr', id: string, execId = ''): Promise<string> {
  const parts: Buffer[] = [];
  const signal = AbortSignal.timeout(60_000);
  for (;;) {
    const r = kind === 'stdout' ? await agent.readStdout(id, execId, 65536, { signal }) : await agent.readStderr(id, execId, 65536, { signal });
    if (r.eof) return Buffer.concat(parts).toString('utf8');
    parts.push(Buffer.from(r.data));
  }
}

/** runContainer creates, starts and waits for a container, returning status and output. */
async function runContainer(id: string, s: object, opts: { stdin?: string; terminal?: boolean } = {}): Promise<{ pid: number; status: number; stdout: string; stderr: string; startMs: number }> {
  await agent.createContainer({ containerId: id, spec: s, stdin: opts.stdin !== undefined, terminal: opts.terminal ?? false });
  const out = readAll('stdout', id);
  const err = readAll('stderr', id);
  const t0 = Date.now();
  const pid = await agent.startContainer(id);
  const startMs = Date.now() - t0;
  if (opts.stdin !== undefined) {
    await agent.writeStdin(id, '', Buffer.from(opts.stdin));
    await agent.closeStdin(id, '');
  }
  const exit = await agent.waitProcess(id, '', { signal: AbortSignal.timeout(60_000) });
  const [stdout, stderr] = await Promise.all([out, err]);
  await agent.removeContainer(id, false);
  return { pid, status: exit.exitStatus, stdout, stderr, startMs };
}

async function consoleTail(): Promise<string> {
  return (await readFile(join(work, 'console.log'), 'utf8').catch(() => '')).slice(-4000);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hako-agent-it-'));
  assets = await ensureAssets({ log });
  const shared = join(work, 'shared');
  await mkdir(join(shared, 'data'), { recursive: true });
  await run(['umoci', 'raw', 'unpack', '--image', `${assets.busyboxLayout}:latest`, join(shared, 'rootfs')], { timeoutMs: 120_000 });
  const argv = plainGuestArgv({ kernel: assets.kernel, rootImage: assets.rootImage, work, shared, serial: `file:${join(work, 'console.log')}` });
  const t0 = Date.now();
  qemu = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let qemuErr = '';
  qemu.stderr!.on('data', (c: Buffer) => { qemuErr = (qemuErr + c.toString()).slice(-4000); });
  qemuExit = new Promise((r) => qemu!.on('exit', (code) => r(code)));
  agent = await AgentClient.connect(join(work, 'agent.sock'), { timeoutMs: 30_000, log });
  timings.connectMs = Date.now() - t0;
  try {
    const ready = await agent.waitReady({ timeoutMs: 120_000 });
    timings.readyMs = Date.now() - t0;
    timings.readyAttempts = ready.attempts;
  } catch (err) {
    throw new Error(`agent not ready: ${String(err)}\nqemu: ${qemuErr}\nconsole:\n${await consoleTail()}`);
  }
}, { timeout: 30 * 60_000 });

after(async () => {
  try {
    if (agent && !agent.closed) await agent.destroySandbox({ timeoutMs: 30_000 }).catch(() => {});
    agent?.close();
  } finally {
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      qemu.kill('SIGKILL');
      await qemuExit;
    }
    process.stderr.write(`agent integration timings: ${JSON.stringify(timings)}\n`);
    // The agent's own timing lines (boot path, container start) from the guest console.
    const lines = (await readFile(join(work, 'console.log'), 'utf8').catch(() => '')).split('\n');
    for (const l of lines.filter((x) => /"msg":"(hako-agent ready|sandbox created|container started|fatal)/.test(x)).slice(0, 20)) process.stderr.write(`guest: ${l.slice(0, 400)}\n`);
    if (work) await rm(work, { recursive: true, force: true });
  }
});

test('the agent started from the V8 startup snapshot that the image builder made', async () => {
  const text = await readFile(join(work, 'console.log'), 'utf8');
  const line = text.split('\n').find((l) => l.includes('"msg":"hako-agent ready"'));
  assert.ok(line, `no ready line on the console:\n${text.slice(-4000)}`);
  const ready = JSON.parse(line.slice(line.indexOf('{'))) as { startedFrom: string; nodeStartUptimeMs: number; mainStartUptimeMs: number };
  assert.equal(ready.startedFrom, 'snapshot', line);
  assert.ok(ready.mainStartUptimeMs >= ready.nodeStartUptimeMs, line);
  assert.doesNotMatch(text, /refused the agent snapshot/);
});

test('the agent drives its port from the event loop, not the thread pool', async () => {
  assert.match(await readFile(join(work, 'console.log'), 'utf8'), /"msg":"hako-agent ready".*"io":"event loop"/);
});

test('Check answers, and its round trip is measured', async () => {
  const n = 20;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) assert.equal((await agent.check()).agentVersion, '0.1.0');
  timings.checkRoundTripMs = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  assert.ok(timings.checkRoundTripMs < 2_000);
});

test('GetGuestDetails reports the guest kernel, not the host one', async () => {
  const d = await agent.getGuestDetails();
  assert.match(d.kernelRelease, /^6\.1\./);
  assert.notEqual(d.kernelRelease, release());
  assert.match(d.crunVersion, /crun version 1\./);
  assert.ok(d.uptimeAtAgentStartMs > 0 && d.uptimeAtAgentStartMs <= d.uptimeMs);
  assert.ok(d.memTotalKib > 100_000 && d.onlineCpus >= 1);
  timings.guestUptimeAtAgentStartMs = d.uptimeAtAgentStartMs;
});

test('containers need CreateSandbox first; it mounts the share', async () => {
  await assert.rejects(agent.createContainer({ containerId: 'early', spec: spec(['true']), stdin: false, terminal: false }),
    (e: HakoError) => e.code === Code.FAILED_PRECONDITION);
  await agent.createSandbox({ sandboxId: 'it', shareTag: 'hakoshare', hostname: 'hako-it', dns: ['10.0.2.3'] });
  await agent.createSandbox({ sandboxId: 'it', shareTag: 'hakoshare', hostname: 'hako-it' }); // idempotent
});

test('the guest clock can be set and its entropy pool reseeded', async () => {
  await agent.setGuestDateTime(new Date(Date.UTC(2031, 4, 6, 7, 8, 9)));
  const r = await runContainer('c-date', spec(['date', '-u', '+%Y-%m-%d']));
  assert.equal(r.stdout, '2031-05-06\n');
  await agent.setGuestDateTime(new Date());
  await agent.reseedRandomDev(Buffer.alloc(64, 7));
  await assert.rejects(agent.reseedRandomDev(new Uint8Array()), (e: HakoError) => e.code === Code.INVALID_ARGUMENT);
});

test('a container runs from the share: exit status, stdout and stderr', async () => {
  const r = await runContainer('c-out', spec(['sh', '-c', 'echo out; echo err >&2; cat /proc/1/cmdline | tr "\\0" " "; echo; hostname; exit 3']));
  timings.containerStartMs = r.startMs;
  assert.equal(r.status, 3);
  assert.equal(r.stdout, 'out\nsh -c echo out; echo err >&2; cat /proc/1/cmdline | tr "\\0" " "; echo; hostname; exit 3 \nbox\n');
  assert.equal(r.stderr, 'err\n');
  assert.ok(r.pid > 1);
});

test('stdin reaches the container, and output of a process that exits at once is kept', async () => {
  const r = await runContainer('c-in', spec(['sh', '-c', 'cat; echo done']), { stdin: 'hello over virtio-serial\n' });
  assert.equal(r.status, 0);
  assert.equal(r.stdout, 'hello over virtio-serial\ndone\n');
  const t0 = Date.now();
  const big = await runContainer('c-big', spec(['head', '-c', '4000000', '/dev/zero']));
  timings.stdout4MBMs = Date.now() - t0;
  assert.equal(big.stdout.length, 4_000_000);
  assert.ok(/^\0+$/.test(big.stdout));
});

test('crun runs unrandomized (TCG reuses its translations), container processes keep ASLR', async () => {
  // 00040000 is ADDR_NO_RANDOMIZE: the agent, and so crun, run with it (/etc/hako/agent).
  assert.ok((await readFile(join(work, 'console.log'), 'utf8')).includes('"personality":"00040000"'), 'the agent runs with ADDR_NO_RANDOMIZE');
  const r = await runContainer('c-aslr', spec(['sh', '-c', 'cat /proc/self/personality; cat /proc/sys/kernel/randomize_va_space']));
  assert.equal(r.stdout, '00000000\n2\n', 'the container process is randomized');
  const id = 'c-aslr-exec';
  await agent.createContainer({ containerId: id, spec: spec(['sleep', '1000']), stdin: false, terminal: false });
  await agent.startContainer(id);
  await agent.execProcess({ containerId: id, execId: 'p', process: { args: ['cat', '/proc/self/personality'], cwd: '/', env: ['PATH=/bin'] }, stdin: false, terminal: false });
  assert.equal((await agent.waitProcess(id, 'p')).exitStatus, 0);
  assert.equal(await readAll('stdout', id, 'p'), '00000000\n', 'an exec process is randomized too');
  await agent.removeContainer(id, true);
});

test('a missing command exits 127 with crun\'s message', async () => {
  const r = await runContainer('c-404', spec(['no-such-command']));
  assert.equal(r.status, 127);
  assert.match(r.stderr, /no-such-command.*not found/);
});

test('exec, signals (128+N), pause/resume, stats, pids, update and forced removal', async () => {
  const id = 'c-long';
  await agent.createContainer({ containerId: id, spec: spec(['sleep', '1000']), stdin: false, terminal: false });
  const initPid = await agent.startContainer(id);
  await assert.rejects(agent.createContainer({ containerId: id, spec: spec(['true']), stdin: false, terminal: false }),
    (e: HakoError) => e.code === Code.ALREADY_EXISTS);

  const t0 = Date.now();
  const execPid = await agent.execProcess({ containerId: id, execId: 'e1', process: { args: ['sh', '-c', 'echo from-exec; echo $$ > /data/e1; exit 5'], cwd: '/', env: ['PATH=/bin'] }, stdin: false, terminal: false });
  timings.execStartMs = Date.now() - t0;
  assert.ok(execPid > 1 && execPid !== initPid);
  assert.equal((await agent.waitProcess(id, 'e1')).exitStatus, 5);
  assert.equal(await readAll('stdout', id, 'e1'), 'from-exec\n');
  await assert.rejects(agent.execProcess({ containerId: id, execId: 'e1', process: { args: ['true'], cwd: '/' }, stdin: false, terminal: false }),
    (e: HakoError) => e.code === Code.ALREADY_EXISTS);

  const missingPid = await agent.execProcess({ containerId: id, execId: 'e404', process: { args: ['no-such-tool'], cwd: '/', env: ['PATH=/bin'] }, stdin: false, terminal: false });
  assert.ok(missingPid > 1);
  assert.equal((await agent.waitProcess(id, 'e404')).exitStatus, 127);
  assert.match(await readAll('stderr', id, 'e404'), /no-such-tool.*not found/);

  await agent.execProcess({ containerId: id, execId: 'e2', process: { args: ['sleep', '1000'], cwd: '/' }, stdin: false, terminal: false });
  const pids = await agent.listProcesses(id);
  assert.ok(pids.includes(initPid), `pids ${pids} include init ${initPid}`);
  assert.ok(pids.length >= 2);
  await agent.signalProcess({ containerId: id, execId: 'e2', signal: 15 });
  assert.equal((await agent.waitProcess(id, 'e2')).exitStatus, 128 + 15);
  await assert.rejects(agent.signalProcess({ containerId: id, execId: 'e2', signal: 15 }), (e: HakoError) => e.code === Code.NOT_FOUND);

  await agent.pauseContainer(id);
  await agent.resumeContainer(id);
  await agent.updateContainer(id, { memory: { limit: 64 << 20 } });
  const stats = await agent.statsContainer(id);
  assert.equal(stats.memoryUsageLimit, BigInt(64 << 20));
  assert.ok(stats.memoryUsage > 0n && stats.pidsCurrent >= 1n && stats.cpuUsageUsec > 0n);

  await assert.rejects(agent.removeContainer(id, false), (e: HakoError) => e.code === Code.FAILED_PRECONDITION);
  const wait = agent.waitProcess(id, '');
  await agent.signalProcess({ containerId: id, signal: 9, all: true });
  assert.equal((await wait).exitStatus, 128 + 9);
  await agent.removeContainer(id, true);
  await assert.rejects(agent.waitProcess(id, ''), (e: HakoError) => e.code === Code.NOT_FOUND);
});

test('an OOM kill is reported by GetOOMEvent', async () => {
  const oom = agent.getOOMEvent({ signal: AbortSignal.timeout(120_000) });
  const r = await runContainer('c-oom', spec(['sh', '-c', 'x=$(head -c 40000000 /dev/zero | tr "\\0" a); echo survived'], { memoryLimit: 12 << 20 }));
  assert.notEqual(r.status, 0, `the container should have been OOM-killed: ${r.stdout}`);
  assert.equal(await oom, 'c-oom');
});

test('a terminal container gets a pty that TtyWinResize resizes', async () => {
  const id = 'c-tty';
  await agent.createContainer({ containerId: id, spec: spec(['sh', '-c', 'tty; read line; stty size; echo "got:$line"'], { terminal: true }), stdin: true, terminal: true });
  const out = readAll('stdout', id);
  const err = readAll('stderr', id);
  await agent.startContainer(id);
  await agent.ttyWinResize(id, '', 33, 111);
  await agent.writeStdin(id, '', Buffer.from('typed\n'));
  const exit = await agent.waitProcess(id, '', { signal: AbortSignal.timeout(60_000) });
  const [text, errText] = await Promise.all([out, err]);
  await agent.removeContainer(id, false);
  assert.doesNotMatch(text, /not a tty/, 'the guest must give terminal processes a pty (hako-pty)');
  assert.equal(exit.exitStatus, 0, text);
  assert.equal(errText, '', 'a terminal has no separate stderr');
  assert.match(text, /\/dev\/pts\/\d+\r\n/);
  assert.match(text, /33 111\r\n/);
  assert.match(text, /got:typed\r\n/);
});

test('a corrupt frame resets the guest session; the next request on the same connection is served', async () => {
  agent.close();
  agent = await corruptThenClient(join(work, 'agent.sock'));
  assert.equal((await agent.check({ timeoutMs: 10_000 })).agentVersion, '0.1.0');
});

test('the host can reconnect: the guest starts a new ttRPC session', async () => {
  agent.close();
  agent = await AgentClient.connect(join(work, 'agent.sock'), { timeoutMs: 10_000 });
  const r = await agent.waitReady({ timeoutMs: 30_000 });
  assert.equal(r.agentVersion, '0.1.0');
  assert.ok((await agent.getGuestDetails()).uptimeMs > 0);
  // Every reconnect is served. The pauses put the new host's first bytes at different points of
  // the guest's reopening of its port: bytes sent while it reopens are carried into the new
  // session, but a request that lands exactly while the guest releases the port (virtio_console
  // drops a released port's data, and QEMU learns of the release a moment later) is lost, so the
  // host retries a first Check after 50 ms, as the sandbox's own connect does.
  const attempts: number[] = [];
  for (let i = 0; i < 10; i++) {
    agent.close();
    await new Promise((r) => setTimeout(r, 5 + 7 * i));
    agent = await AgentClient.connect(join(work, 'agent.sock'), { timeoutMs: 10_000 });
    const ready = await agent.waitReady({ firstAttemptMs: 50, attemptTimeoutMs: 1000, timeoutMs: 5000 });
    assert.equal(ready.agentVersion, '0.1.0', `reconnect ${i + 1}`);
    attempts.push(ready.attempts);
  }
  console.log(`# Check attempts per reconnect: ${attempts.join(' ')}`);
});

test('when the VM dies, pending calls fail UNAVAILABLE', async () => {
  await agent.createContainer({ containerId: 'c-last', spec: spec(['sleep', '1000']), stdin: false, terminal: false });
  await agent.startContainer('c-last');
  const wait = agent.waitProcess('c-last', '');
  qemu!.kill('SIGKILL');
  await assert.rejects(wait, (e: HakoError) => e.code === Code.UNAVAILABLE);
  await qemuExit;
});
