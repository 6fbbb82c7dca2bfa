// Unit tests of the sandbox's pure parts: the default spec, env merging, user lookup, state.json,
// and Process/OutputPump semantics over a fake agent (drain before wait, backpressure, failure).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, HakoError, errorf } from '../errors/index.js';
import { nullLogger } from '../log/index.js';
import type { AgentClient } from '../agent-client/index.js';
import { Process } from './process.js';
import { DEFAULT_CAPABILITIES, defaultSpec, isBindMount, mergeEnv, resolveUser } from './spec.js';
import { listSandboxIds, readState, writeState, type SandboxState } from './state.js';
import { sandboxPaths, validSandboxId } from './paths.js';
import { OutputPump } from './stdio.js';

test('defaultSpec: namespaces without network, default mounts, capabilities, env, volumes', () => {
  const spec = defaultSpec({
    args: ['sh'], env: ['A=1', 'PATH=/bin'], cwd: '/w', user: { uid: 5, gid: 6 }, terminal: true, hostname: 'h',
    volumes: [{ source: '/host', destination: '/c', readonly: true }],
  });
  const ns = (spec.linux!.namespaces as Array<{ type: string }>).map((n) => n.type);
  assert.deepEqual(ns.sort(), ['cgroup', 'ipc', 'mount', 'pid', 'uts']);
  assert.deepEqual(spec.mounts!.slice(0, 7).map((m) => m.destination), ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);
  assert.deepEqual(spec.mounts![7], { destination: '/c', type: 'bind', source: '/host', options: ['rbind', 'ro'] });
  assert.ok(isBindMount(spec.mounts![7]!) && !isBindMount(spec.mounts![0]!));
  assert.deepEqual(spec.process.env, ['PATH=/bin', 'TERM=xterm', 'HOSTNAME=h', 'A=1']);
  assert.equal(spec.process.cwd, '/w');
  assert.deepEqual(spec.process.user, { uid: 5, gid: 6 });
  assert.deepEqual(spec.process.capabilities!.bounding, DEFAULT_CAPABILITIES);
  assert.equal(spec.process.terminal, true);
  assert.throws(() => defaultSpec({ args: [], env: [], cwd: '/', user: { uid: 0, gid: 0 }, terminal: false, hostname: 'h', volumes: [] }), /no command/);
  assert.deepEqual(mergeEnv(['A=1', 'B=2'], ['A=3', 'C']), ['A=3', 'B=2', 'C']);
});

test('resolveUser reads passwd and group inside the rootfs', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hako-user-'));
  try {
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nweb:x:1000:1001::/home/web:/bin/sh\n');
    await writeFile(join(root, 'etc/group'), 'root:x:0:\nstaff:x:50:\n');
    assert.deepEqual(await resolveUser(root, ''), { uid: 0, gid: 0 });
    assert.deepEqual(await resolveUser(root, 'web'), { uid: 1000, gid: 1001 });
    assert.deepEqual(await resolveUser(root, '1000'), { uid: 1000, gid: 1001 });
    assert.deepEqual(await resolveUser(root, 'web:staff'), { uid: 1000, gid: 50 });
    assert.deepEqual(await resolveUser(root, '7:8'), { uid: 7, gid: 8 });
    await assert.rejects(resolveUser(root, 'nobody'), /not in the image's \/etc\/passwd/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('state.json round trip, listing, and id validation', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hako-state-'));
  try {
    const paths = sandboxPaths(dir, 'sb1');
    assert.equal(paths.dir, join(dir, 'sandboxes', 'sb1'));
    await mkdir(paths.dir, { recursive: true });
    const st: SandboxState = { version: 1, id: 'sb1', status: 'ready', created: 'x', ownerPid: 1, qemuPid: 2, containers: [{ id: 'c', status: 'running', pid: 3, mounts: [] }], annotations: { a: 'b' } };
    await writeState(paths.state, st);
    assert.deepEqual(await readState(paths.state), st);
    assert.deepEqual(await listSandboxIds(dir), ['sb1']);
    await writeFile(paths.state, '{"nope":1}');
    await assert.rejects(readState(paths.state), /not a hako sandbox state/);
    await assert.rejects(readState(join(dir, 'missing.json')), (e: unknown) => e instanceof HakoError && e.code === Code.NOT_FOUND);
    assert.throws(() => validSandboxId('../x'), /sandbox id/);
    assert.throws(() => validSandboxId('a'.repeat(65)), /sandbox id/);
    assert.deepEqual(await listSandboxIds(join(dir, 'none')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** fakeAgent scripts a guest process: output chunks, then an exit. */
function fakeAgent(script: { out: string[]; err: string[]; status: number; exitAfterMs?: number; waitError?: HakoError }) {
  const out = [...script.out];
  const err = [...script.err];
  const written: string[] = [];
  let reads = 0;
  const api = {
    readStdout: async () => {
      reads++;
      await new Promise((r) => setTimeout(r, 5));
      const d = out.shift();
      return d === undefined ? { data: new Uint8Array(0), eof: true } : { data: Buffer.from(d), eof: false };
    },
    readStderr: async () => {
      const d = err.shift();
      return d === undefined ? { data: new Uint8Array(0), eof: true } : { data: Buffer.from(d), eof: false };
    },
    writeStdin: async (_c: string, _e: string, data: Uint8Array) => {
      written.push(Buffer.from(data).toString());
      return data.length;
    },
    closeStdin: async () => void written.push('<EOF>'),
    waitProcess: async () => {
      await new Promise((r) => setTimeout(r, script.exitAfterMs ?? 0));
      if (script.waitError) throw script.waitError;
      return { exitStatus: script.status, exitedAt: new Date(1000) };
    },
    ttyWinResize: async () => {},
  };
  return { api: api as unknown as AgentClient, written, reads: () => reads };
}

test('Process: wait resolves after exit AND drained output; stdin is forwarded then closed', async () => {
  const f = fakeAgent({ out: ['a', 'b', 'c'], err: ['e'], status: 3 });
  let failure: HakoError | undefined;
  const exits: number[] = [];
  const p = new Process(
    { api: f.api, containerId: 'c', log: nullLogger, failure: () => failure, onExit: (_p, i) => exits.push(i.exitStatus) },
    { execId: 'x', stdin: true, terminal: false, starter: async () => 42 },
  );
  let out = '';
  p.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const waited = p.wait();
  assert.equal(await p.start(), 42);
  p.stdin!.end('input');
  const exit = await waited;
  assert.equal(exit.exitStatus, 3);
  assert.equal(out, 'abc', 'every chunk arrived before wait resolved');
  assert.deepEqual(exits, [3]);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(f.written, ['input', '<EOF>']);
  await assert.rejects(p.resize(1, 1), /has no terminal/);
});

test('Process: a failed start rejects wait; a VM failure rejects a pending wait', async () => {
  const f = fakeAgent({ out: [], err: [], status: 0, exitAfterMs: 60_000 });
  const p1 = new Process(
    { api: f.api, containerId: 'c', log: nullLogger, failure: () => undefined, onExit: () => {} },
    { execId: '', stdin: false, terminal: false, starter: async () => { throw errorf(Code.NOT_FOUND, 'no such binary'); } },
  );
  await assert.rejects(p1.start(), /no such binary/);
  await assert.rejects(p1.wait(), /no such binary/);

  let failure: HakoError | undefined;
  const f2 = fakeAgent({ out: [], err: [], status: 0, exitAfterMs: 60_000 });
  const p2 = new Process(
    { api: f2.api, containerId: 'c', log: nullLogger, failure: () => failure, onExit: () => {} },
    { execId: '', stdin: false, terminal: false, starter: async () => 7 },
  );
  await p2.start();
  const pending = p2.wait();
  failure = errorf(Code.UNAVAILABLE, 'the VM exited unexpectedly');
  p2.fail(failure);
  await assert.rejects(pending, /VM exited unexpectedly/);
});

test('OutputPump reads ahead only to the high-water mark, then waits for the consumer', async () => {
  let served = 0;
  const chunk = Buffer.alloc(256 * 1024, 1);
  const pump = new OutputPump('stdout', async () => {
    served++;
    return served > 20 ? { data: new Uint8Array(0), eof: true } : { data: chunk, eof: false };
  }, nullLogger);
  pump.start();
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(served <= 6, `stopped reading at the high-water mark (served ${served})`);
  let got = 0;
  pump.stream.on('data', (c: Buffer) => (got += c.length));
  await pump.drained;
  await new Promise((r) => pump.stream.once('end', r));
  assert.equal(got, 20 * chunk.length);
});

test('OutputPump drains and discards when the consumer destroys its stream', async () => {
  let served = 0;
  const pump = new OutputPump('stdout', async () => {
    served++;
    return served > 50 ? { data: new Uint8Array(0), eof: true } : { data: Buffer.alloc(200 * 1024), eof: false };
  }, nullLogger);
  pump.start();
  await new Promise((r) => setTimeout(r, 50));
  pump.stream.destroy();
  await pump.drained;
  assert.equal(served, 51, 'read to EOF so the guest process never blocks on output');
});
