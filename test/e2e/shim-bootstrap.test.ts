// The real containerd-shim-hako-v2 binary without a VM: start/serve/delete as containerd
// runs them, and the shim's socket probed by an independent, hand-written ttRPC client.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeBundle, mountsUnder, pidsOf, run, SHIM_BIN, shimArgs, waitFor, type Bundle } from './shim-helpers.js';
import { frame, pbBytes, pbFields, request, TASK, WireConn } from './shim-wire.js';

// A private containerd address makes the socket hash unique to this run.
const ADDRESS = `/run/hako-e2e-${randomBytes(4).toString('hex')}/containerd.sock`;
const env = { ...process.env, TTRPC_ADDRESS: `${ADDRESS}.ttrpc` };
const bundles: Bundle[] = [];

after(async () => {
  // Nothing of ours may outlive the tests.
  for (const pid of pidsOf('src/shim/main.', ADDRESS)) process.kill(pid, 'SIGKILL');
  for (const b of bundles) b.cleanup();
});

async function startShim(id: string, annotations: Record<string, string> = {}) {
  const b = makeBundle(annotations);
  bundles.push(b);
  const r = await run(SHIM_BIN, [...shimArgs(id, ADDRESS), 'start'], { cwd: b.dir, env, timeoutMs: 20_000 });
  assert.equal(r.code, 0, `start failed: ${r.stdout}${r.stderr}`);
  const address = r.stdout.toString();
  return { b, address, path: address.replace(/^unix:\/\//, ''), ms: r.ms };
}

async function connect(path: string, id: string) {
  const w = await WireConn.dial(path);
  w.write(frame(1, 1, request(TASK, 'Connect', pbBytes(1, id))));
  await w.until((c) => c.responses.length === 1);
  w.close();
  const r = w.responses[0]!;
  assert.equal(r.code, 0, r.message);
  const f = pbFields(r.payload);
  return { shimPid: f.get(1)?.[0] as number, taskPid: (f.get(2)?.[0] as number | undefined) ?? 0, version: String(f.get(3)?.[0] ?? '') };
}

async function shutdown(path: string): Promise<void> {
  const w = await WireConn.dial(path);
  w.write(frame(1, 1, request(TASK, 'Shutdown', pbBytes(1, 'x'))));
  await w.until((c) => c.responses.length === 1 || c.closed);
  w.close();
  assert.ok(await waitFor(() => !existsSync(path), 10_000), 'Shutdown removes the socket');
}

test('start prints only the address, writes <bundle>/address and leaves a detached 0600 server', async () => {
  const s = await startShim('boot1');
  assert.match(s.address, /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
  assert.equal(readFileSync(join(s.b.dir, 'address'), 'utf8'), s.address);
  assert.equal(statSync(s.path).mode & 0o777, 0o600);
  const c = await connect(s.path, 'boot1');
  assert.equal(c.taskPid, 0);
  assert.match(c.version, /^\d+\.\d+\.\d+/);
  // The server runs on in its own session; `start` returned, so it did not hold fds 1 and 2.
  const stat = readFileSync(`/proc/${c.shimPid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  assert.equal(Number(stat[3]), c.shimPid, 'the server leads its own session (setsid)');
  assert.ok(await waitFor(() => s.b.logLines().some((l) => JSON.parse(l).msg === 'serving'), 5_000), 'logs JSON lines into the log FIFO');
  await shutdown(s.path);
  assert.ok(await waitFor(() => { try { process.kill(c.shimPid, 0); return false; } catch { return true; } }, 5_000), 'the server exits');
});

test('containers of one pod share one shim; a stale socket is replaced', async () => {
  const a = await startShim('podc1', { 'io.kubernetes.cri.sandbox-id': 'pod-e2e' });
  const b = await startShim('podc2', { 'io.kubernetes.cri.sandbox-id': 'pod-e2e' });
  assert.equal(b.address, a.address);
  assert.equal(readFileSync(join(b.b.dir, 'address'), 'utf8'), a.address);
  assert.equal(pidsOf('src/shim/main.', ADDRESS, '-id podc').length, 1, 'one server for the pod');
  // Kill the server: its socket file stays behind, stale. The next start must replace it.
  const { shimPid } = await connect(a.path, 'podc1');
  process.kill(shimPid, 'SIGKILL');
  assert.ok(await waitFor(() => pidsOf('src/shim/main.', ADDRESS, '-id podc1').length === 0, 5_000));
  assert.ok(existsSync(a.path), 'the stale socket file is still there');
  const c = await startShim('podc3', { 'io.kubernetes.cri.sandbox-id': 'pod-e2e' });
  assert.equal(c.address, a.address);
  const again = await connect(c.path, 'podc3');
  assert.notEqual(again.shimPid, shimPid);
  await shutdown(c.path);
});

test('independent ttRPC client: unknown method/service, concurrency, oversized frames, garbage', async () => {
  const s = await startShim('wire1');
  try {
    const w = await WireConn.dial(s.path);
    w.write(frame(1, 1, request(TASK, 'NoSuchMethod', Buffer.alloc(0))));
    w.write(frame(3, 1, request('no.such.Service', 'Connect', Buffer.alloc(0))));
    w.write(frame(5, 1, request(TASK, 'Wait', pbBytes(1, 'nosuchtask'))));
    await w.until((c) => c.responses.length === 3);
    assert.equal(w.response(1)!.code, 12, 'unknown method: UNIMPLEMENTED');
    assert.equal(w.response(3)!.code, 12, 'unknown service: UNIMPLEMENTED');
    assert.equal(w.response(5)!.code, 5, 'Wait on an unknown task: NOT_FOUND');
    assert.equal(w.response(1)!.type, 2);

    // 100 calls written at once on one connection all come back, each on its own stream.
    const ids = Array.from({ length: 100 }, (_, i) => 7 + 2 * i);
    w.write(Buffer.concat(ids.map((id) => frame(id, 1, request(TASK, 'Connect', pbBytes(1, `c${id}`))))));
    await w.until((c) => ids.every((id) => c.response(id)));
    assert.ok(ids.every((id) => w.response(id)!.code === 0));

    // An oversized frame is answered RESOURCE_EXHAUSTED and skipped; the connection stays usable.
    const big = Buffer.alloc(5 << 20, 0x41);
    w.write(frame(301, 1, big));
    w.write(frame(303, 1, request(TASK, 'Connect', pbBytes(1, 'after-big'))));
    await w.until((c) => !!c.response(301) && !!c.response(303), 20_000);
    assert.equal(w.response(301)!.code, 8);
    assert.equal(w.response(303)!.code, 0);
    w.close();

    // Garbage: a malformed request payload is INVALID_ARGUMENT; a bad frame type closes the connection.
    const g = await WireConn.dial(s.path);
    g.write(frame(1, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])));
    await g.until((c) => c.responses.length === 1 || c.closed);
    if (g.responses.length) assert.notEqual(g.responses[0]!.code, 0);
    g.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await g.until((c) => c.closed, 10_000);
    // ... and the shim still serves new connections.
    const c = await connect(s.path, 'wire1');
    assert.ok(c.shimPid > 0);
  } finally {
    await shutdown(s.path);
  }
});

test('delete with the shim gone: DeleteResponse (137, now), rootfs unmounted, stale socket removed', async () => {
  const s = await startShim('del1');
  const { shimPid } = await connect(s.path, 'del1');
  writeFileSync(join(s.b.dir, 'init.pid'), '4242');
  // A bind mount on <bundle>/rootfs stands in for containerd's snapshot mount.
  const src = join(s.b.dir, 'src');
  mkdirSync(src);
  mkdirSync(join(s.b.dir, 'rootfs'));
  execFileSync('mount', ['--bind', src, join(s.b.dir, 'rootfs')]);
  process.kill(shimPid, 'SIGKILL');
  assert.ok(await waitFor(() => pidsOf('src/shim/main.', ADDRESS, '-id del1').length === 0, 5_000));
  const before = Date.now();
  const r = await run(SHIM_BIN, [...shimArgs('del1', ADDRESS), '-bundle', s.b.dir, 'delete'], { cwd: s.b.dir, env, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const f = pbFields(r.stdout);
  assert.equal(f.get(1)?.[0], 4242, 'pid from init.pid');
  assert.equal(f.get(2)?.[0], 137, 'exit status 128+SIGKILL');
  const ts = pbFields(f.get(3)![0] as Buffer);
  const secs = ts.get(1)![0] as number;
  assert.ok(Math.abs(secs * 1000 - before) < 60_000, 'exited_at is now');
  assert.deepEqual(mountsUnder(join(s.b.dir, 'rootfs')), []);
  assert.ok(!existsSync(s.path), 'the stale socket is removed');
  // A second delete (containerd may retry) also succeeds.
  const again = await run(SHIM_BIN, [...shimArgs('del1', ADDRESS), '-bundle', s.b.dir, 'delete'], { cwd: s.b.dir, env });
  assert.equal(again.code, 0, again.stderr);
});

test('bad invocations fail with a message and no server', async () => {
  const b = makeBundle();
  bundles.push(b);
  const r = await run(SHIM_BIN, ['-namespace', 'x', '-bogus', 'start'], { cwd: b.dir, env });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /flag provided but not defined: -bogus/);
  const child = spawn(SHIM_BIN, ['-v'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  await new Promise((r2) => child.on('close', r2));
  assert.match(out, /containerd-shim-hako-v2/);
});
