// The agent's fallback port I/O (blocking reads in the thread pool, forced by the kernel parameter
// hako.agent.port_io=pool) against a real guest: calls, a container, a reconnect, a corrupt frame.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentClient } from '../../src/agent-client/index.js';
import { corruptThenClient } from '../lib/corrupt-frame.js';
import { ensureAssets } from '../../src/image/index.js';
import { run } from '../../src/image/run.js';
import { Logger, streamSink } from '../../src/log/index.js';
import { plainGuestArgv } from '../lib/plain-guest.js';

const log = new Logger(streamSink(process.stderr), 'warn');
let work: string;
let qemu: ChildProcess | undefined;
let agent: AgentClient;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'hako-port-io-'));
  const assets = await ensureAssets({ log });
  const shared = join(work, 'shared');
  await mkdir(shared, { recursive: true });
  await run(['umoci', 'raw', 'unpack', '--image', `${assets.busyboxLayout}:latest`, join(shared, 'rootfs')], { timeoutMs: 120_000 });
  const argv = plainGuestArgv({
    kernel: assets.kernel, rootImage: assets.rootImage, work, shared, serial: `file:${join(work, 'console.log')}`,
    kernelParams: ['hako.agent.port_io=pool'],
  });
  qemu = spawn('qemu-system-x86_64', argv, { stdio: 'ignore' });
  agent = await AgentClient.connect(join(work, 'agent.sock'), { timeoutMs: 30_000, log });
  await agent.waitReady({ timeoutMs: 120_000 });
}, { timeout: 30 * 60_000 });

after(async () => {
  agent?.close();
  if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
    const gone = new Promise((r) => qemu!.once('exit', r));
    qemu.kill('SIGKILL');
    await gone;
  }
  if (work) await rm(work, { recursive: true, force: true });
});

test('the kernel parameter selects thread-pool port I/O', async () => {
  assert.match(await readFile(join(work, 'console.log'), 'utf8'), /"msg":"hako-agent ready".*"io":"thread pool"/);
});

test('calls and a container work over thread-pool port I/O', async () => {
  for (let i = 0; i < 10; i++) assert.equal((await agent.check()).agentVersion, '0.1.0');
  await agent.createSandbox({ sandboxId: 'pio', shareTag: 'hakoshare', hostname: 'pio' });
  const spec = {
    ociVersion: '1.0.2',
    process: { user: { uid: 0, gid: 0 }, args: ['sh', '-c', 'head -c 300000 /dev/zero; echo done'], env: ['PATH=/bin'], cwd: '/' },
    root: { path: 'rootfs', readonly: true },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755'] },
    ],
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }] },
  };
  await agent.createContainer({ containerId: 'c1', spec, stdin: false, terminal: false });
  await agent.startContainer('c1');
  let out = 0;
  let tail = '';
  for (;;) {
    const r = await agent.readStdout('c1', '', 1 << 20, { signal: AbortSignal.timeout(60_000) });
    if (r.eof) break;
    out += r.data.length;
    tail = (tail + Buffer.from(r.data).toString('latin1')).slice(-5);
  }
  assert.equal(out, 300_005);
  assert.equal(tail, 'done\n');
  assert.equal((await agent.waitProcess('c1', '')).exitStatus, 0);
  await agent.removeContainer('c1', false);
});

test('over thread-pool port I/O, a corrupt frame resets the session and the host can reconnect', async () => {
  agent.close();
  agent = await corruptThenClient(join(work, 'agent.sock'));
  assert.equal((await agent.check({ timeoutMs: 10_000 })).agentVersion, '0.1.0');
  agent.close();
  agent = await AgentClient.connect(join(work, 'agent.sock'), { timeoutMs: 10_000 });
  assert.equal((await agent.waitReady({ timeoutMs: 30_000 })).agentVersion, '0.1.0');
});
