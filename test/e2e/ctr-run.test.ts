// ctr drives hako as it drives runc: real containerd, the real shim, real VMs. Runs in its
// own containerd namespace and checks that no VM, shim, sandbox state or mount is left.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Logger, streamSink } from '../../src/log/index.js';
import { ensureAssets } from '../../src/image/index.js';
import { installShim } from '../../src/shim/install.js';
import { mountsUnder, pidsOf, run, waitFor, type RunResult } from './shim-helpers.js';

const NS = 'hako-e2e';
const IMAGE = 'localhost/busybox:latest';
const RUNTIME = 'io.containerd.hako.v2';
const RUN_ID = randomBytes(3).toString('hex');
const log = new Logger(streamSink(process.stderr), 'warn');
const ids: string[] = [];
let n = 0;

/** newId names a container of this run (and so its sandbox). */
function newId(what: string): string {
  const id = `e2e-${RUN_ID}-${what}-${n++}`;
  ids.push(id);
  return id;
}

function ctr(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run('ctr', ['-n', NS, ...args], { input: opts.input, timeoutMs: opts.timeoutMs ?? 180_000 });
}

function out(r: RunResult): string {
  return r.stdout.toString();
}

async function taskStatus(id: string): Promise<string | undefined> {
  const r = await ctr(['task', 'ls']);
  const line = out(r).split('\n').find((l) => l.split(/\s+/)[0] === id);
  return line?.trim().split(/\s+/)[2];
}

/** leftovers lists what of container id still exists on the host. */
function leftovers(id: string): string[] {
  const found: string[] = [];
  if (pidsOf('qemu-system', `guest=${id}`).length) found.push('qemu');
  if (pidsOf('src/shim/main.', `-id ${id} `).length) found.push('shim');
  if (existsSync(`/run/hako/sandboxes/${id}`)) found.push('sandbox dir');
  const m = [...mountsUnder(`/run/hako/sandboxes/${id}`), ...mountsUnder(`/run/containerd/io.containerd.runtime.v2.task/${NS}/${id}`)];
  if (m.length) found.push(`mounts ${m.join(',')}`);
  return found;
}

async function assertClean(id: string): Promise<void> {
  const clean = await waitFor(() => leftovers(id).length === 0, 20_000, 100);
  assert.ok(clean, `left behind for ${id}: ${leftovers(id).join('; ')}`);
}

async function removeAll(id: string): Promise<void> {
  await ctr(['task', 'kill', '-s', 'SIGKILL', id]);
  await waitFor(async () => (await taskStatus(id)) !== 'RUNNING', 20_000, 200);
  await ctr(['task', 'rm', '-f', id]);
  await ctr(['container', 'rm', id]);
}

before(async () => {
  const r = await installShim({ restart: 'if-changed', log });
  log.warn('e2e setup', { ...r });
  const assets = await ensureAssets({ log });
  const imp = await ctr(['image', 'import', '--base-name', 'localhost/busybox', assets.busyboxArchive]);
  assert.equal(imp.code, 0, `image import: ${imp.stderr}`);
});

after(async () => {
  for (const id of ids) {
    if (leftovers(id).length || (await taskStatus(id))) await removeAll(id);
  }
});

test('ctr run --rm: output, exit code 5, the guest kernel, and nothing left behind', async () => {
  const id = newId('run');
  const r = await ctr(['run', '--rm', '--runtime', RUNTIME, IMAGE, id, 'sh', '-c', 'echo hi; echo err >&2; exit 5']);
  assert.equal(out(r), 'hi\n');
  assert.match(r.stderr, /err/);
  assert.equal(r.code, 5, r.stderr);
  log.warn('timing', { what: 'ctr run --rm sh -c ...', ms: r.ms });
  await assertClean(id);

  const id2 = newId('uname');
  const u = await ctr(['run', '--rm', '--runtime', RUNTIME, IMAGE, id2, 'uname', '-r']);
  assert.equal(u.code, 0, u.stderr);
  const guest = out(u).trim();
  assert.ok(guest.length > 0);
  assert.notEqual(guest, release(), 'uname -r shows the guest kernel, not the host one');
  await assertClean(id2);
});

test('ctr run --rm passes piped stdin through and the process sees EOF', async () => {
  const id = newId('stdin');
  const r = await ctr(['run', '--rm', '--runtime', RUNTIME, IMAGE, id, 'sh', '-c', 'cat; echo done'], { input: 'abc\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(out(r), 'abc\ndone\n');
  await assertClean(id);
});

test('a detached task: exec (with stdin), ps, metrics, pause/resume, kill, NOT_FOUND after exit, rm', async () => {
  const id = newId('detached');
  const d = await ctr(['run', '-d', '--runtime', RUNTIME, IMAGE, id, 'sh', '-c', 'trap "exit 7" TERM; while true; do sleep 1; done']);
  assert.equal(d.code, 0, d.stderr);
  assert.equal(await taskStatus(id), 'RUNNING');
  const e = await ctr(['task', 'exec', '--exec-id', 'x1', id, 'sh', '-c', 'echo from-exec; exit 3']);
  assert.equal(out(e), 'from-exec\n');
  assert.equal(e.code, 3, e.stderr);
  const ei = await ctr(['task', 'exec', '--exec-id', 'x2', id, 'cat'], { input: 'piped\n' });
  assert.equal(ei.code, 0, ei.stderr);
  assert.equal(out(ei), 'piped\n');
  const ps = await ctr(['task', 'ps', id]);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(out(ps), /PID/);
  const m = await ctr(['task', 'metrics', id]);
  assert.equal(m.code, 0, m.stderr);
  assert.match(out(m), /memory|cpu|pids/i);
  assert.equal((await ctr(['task', 'pause', id])).code, 0);
  assert.equal(await taskStatus(id), 'PAUSED');
  assert.equal((await ctr(['task', 'resume', id])).code, 0);
  assert.equal(await taskStatus(id), 'RUNNING');
  const k = await ctr(['task', 'kill', id]);
  assert.equal(k.code, 0, k.stderr);
  assert.ok(await waitFor(async () => (await taskStatus(id)) === 'STOPPED', 30_000, 200), 'SIGTERM stops the task');
  const again = await ctr(['task', 'kill', id]);
  assert.notEqual(again.code, 0, 'kill on a finished task fails (NOT_FOUND)');
  assert.equal((await ctr(['task', 'rm', id])).code, 0);
  assert.equal((await ctr(['container', 'rm', id])).code, 0);
  await assertClean(id);
});

test('ctr events shows task and exec events in the required order', async () => {
  const id = newId('events');
  const id2 = newId('evexec');
  const ev = spawn('ctr', ['events'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  ev.stdout.on('data', (c) => (text += c));
  const topicsOf = (cid: string) => text.split('\n').filter((l) => l.includes(NS) && l.includes(`"${cid}"`)).map((l) => /\/tasks\/[a-z-]+/.exec(l)?.[0]).filter(Boolean);
  try {
    await new Promise((r) => setTimeout(r, 500));
    const r = await ctr(['run', '--rm', '--runtime', RUNTIME, IMAGE, id, 'true']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await ctr(['run', '-d', '--runtime', RUNTIME, IMAGE, id2, 'sleep', '1000'])).code, 0);
    assert.equal((await ctr(['task', 'exec', '--exec-id', 'ev1', id2, 'true'])).code, 0);
    assert.equal((await ctr(['task', 'pause', id2])).code, 0);
    assert.equal((await ctr(['task', 'resume', id2])).code, 0);
    await removeAll(id2);
    await waitFor(() => topicsOf(id).includes('/tasks/delete') && topicsOf(id2).includes('/tasks/delete'), 10_000);
  } finally {
    ev.kill();
  }
  assert.deepEqual(topicsOf(id), ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
  assert.deepEqual(topicsOf(id2), [
    '/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/exit',
    '/tasks/paused', '/tasks/resumed', '/tasks/exit', '/tasks/delete',
  ]);
  await assertClean(id);
  await assertClean(id2);
});

test('a container killed by the guest OOM killer publishes /tasks/oom before its exit', async () => {
  const id = newId('oom');
  const ev = spawn('ctr', ['events'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  ev.stdout.on('data', (c) => (text += c));
  const topics = () => text.split('\n').filter((l) => l.includes(NS) && l.includes(`"${id}"`)).map((l) => /\/tasks\/[a-z-]+/.exec(l)?.[0]).filter(Boolean);
  let r: RunResult;
  try {
    await new Promise((res) => setTimeout(res, 500));
    // tmpfs pages are charged to the container's memory cgroup and cannot be reclaimed (no swap in the guest).
    // The limit stays under /dev/shm's 64 MiB size, so the cgroup limit is what stops dd.
    r = await ctr(['run', '--rm', '--memory-limit', String(32 << 20), '--runtime', RUNTIME, IMAGE, id,
      'sh', '-c', 'exec dd if=/dev/zero of=/dev/shm/fill bs=1M count=60']);
    await waitFor(() => topics().includes('/tasks/delete'), 15_000);
  } finally {
    ev.kill();
  }
  assert.equal(r.code, 137, `expected an OOM kill (137): ${out(r)}${r.stderr}`);
  const t = topics();
  assert.ok(t.includes('/tasks/oom'), `no /tasks/oom event: ${t.join(' ')}`);
  assert.ok(t.indexOf('/tasks/start') < t.indexOf('/tasks/oom'), `order: ${t.join(' ')}`);
  await assertClean(id);
});

test('--log-uri file:// appends the output to a file', async () => {
  const id = newId('logfile');
  const dir = mkdtempSync(join(tmpdir(), 'hako-e2e-log-'));
  try {
    const path = join(dir, 'out.log');
    const r = await ctr(['run', '--rm', '--log-uri', `file://${path}`, '--runtime', RUNTIME, IMAGE, id, 'sh', '-c', 'echo to-file']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(path, 'utf8'), 'to-file\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await assertClean(id);
});

test('--log-uri binary:// hands stdout/stderr to a logging binary on fds 3 and 4', async () => {
  const id = newId('logbin');
  const dir = mkdtempSync(join(tmpdir(), 'hako-e2e-logbin-'));
  try {
    const script = join(dir, 'logger.sh');
    writeFileSync(script, '#!/bin/sh\ntrap "" TERM\nout="$1"\necho "$CONTAINER_ID $CONTAINER_NAMESPACE" > "$out.env"\nexec 5>&-\ncat <&3 > "$out"\ncat <&4 > "$out.err"\n', { mode: 0o755 });
    const base = join(dir, 'log');
    const r = await ctr(['run', '--rm', '--log-uri', `binary://${script}?${encodeURIComponent(base)}`, '--runtime', RUNTIME, IMAGE, id, 'sh', '-c', 'echo o; echo e >&2']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(await waitFor(() => existsSync(`${base}.err`), 10_000));
    assert.equal(readFileSync(`${base}.env`, 'utf8'), `${id} ${NS}\n`);
    assert.equal(readFileSync(base, 'utf8'), 'o\n');
    assert.ok(await waitFor(() => readFileSync(`${base}.err`, 'utf8') === 'e\n', 5_000));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await assertClean(id);
});

test('ctr run -t: the process gets a terminal in the guest', async () => {
  const id = newId('tty');
  // script(1) gives ctr a pty on its side, as an interactive user would have.
  const cmd = `stty rows 41 cols 103; ctr -n ${NS} run --rm -t --runtime ${RUNTIME} ${IMAGE} ${id} sh -c 'tty; sleep 2; echo size=$(stty size)'`;
  const r = await run('script', ['-qec', cmd, '/dev/null'], { timeoutMs: 180_000 });
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.match(out(r), /\/dev\/pts\/\d+/);
  assert.doesNotMatch(out(r), /not a tty/);
  // ctr sends its own window size after Start, as it does with runc; the sleep leaves it time to arrive.
  assert.match(out(r), /size=41 103/);
  assert.doesNotMatch(r.stdout + r.stderr, /resize pty/, 'a resize must not fail');
  await assertClean(id);
});

test('containers of one pod (io.kubernetes.cri.sandbox-id) share one shim and one VM', async () => {
  const pod = newId('pod');
  const a = newId('poda');
  const b = newId('podb');
  const ann = `io.kubernetes.cri.sandbox-id=${pod}`;
  assert.equal((await ctr(['run', '-d', '--annotation', ann, '--runtime', RUNTIME, IMAGE, a, 'sleep', '1000'])).code, 0);
  const r = await ctr(['run', '--rm', '--annotation', ann, '--runtime', RUNTIME, IMAGE, b, 'sh', '-c', 'echo second']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(out(r), 'second\n');
  log.warn('timing', { what: 'ctr run --rm of a second container in a running pod VM', ms: r.ms });
  assert.equal(pidsOf('qemu-system', `guest=${pod}`).length, 1, 'one VM for the pod');
  assert.equal(pidsOf('src/shim/main.', `-id ${a} `).length, 1, 'the pod shim still serves the first container');
  assert.equal(await taskStatus(a), 'RUNNING');
  await removeAll(a);
  await assertClean(a);
  assert.ok(await waitFor(() => pidsOf('qemu-system', `guest=${pod}`).length === 0, 20_000), 'the pod VM goes with its last container');
  assert.ok(!existsSync(`/run/hako/sandboxes/${pod}`));
});

test('a malformed spec fails Create with a message naming the field', async () => {
  const id = newId('badspec');
  const dir = mkdtempSync(join(tmpdir(), 'hako-e2e-spec-'));
  try {
    const spec = { ociVersion: '1.0.2', process: { args: [], cwd: '/' }, root: { path: 'rootfs' }, linux: {} };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
    const r = await ctr(['run', '--rm', '--config', join(dir, 'config.json'), '--runtime', RUNTIME, id]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /process\.args/, r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await ctr(['container', 'rm', id]);
  await assertClean(id);
});

test('QEMU killed under a running task: exit event, and cleanup leaves nothing', async () => {
  const id = newId('qemukill');
  assert.equal((await ctr(['run', '-d', '--runtime', RUNTIME, IMAGE, id, 'sleep', '1000'])).code, 0);
  const qemu = pidsOf('qemu-system', `guest=${id}`);
  assert.equal(qemu.length, 1, 'one QEMU for the task');
  process.kill(qemu[0]!, 'SIGKILL');
  assert.ok(await waitFor(async () => (await taskStatus(id)) === 'STOPPED', 30_000, 200), 'the task is reported stopped');
  assert.equal((await ctr(['task', 'rm', id])).code, 0);
  assert.equal((await ctr(['container', 'rm', id])).code, 0);
  await assertClean(id);
});

test('shim killed with SIGKILL: containerd cleans up through `delete`, nothing left', async () => {
  const id = newId('shimkill');
  assert.equal((await ctr(['run', '-d', '--runtime', RUNTIME, IMAGE, id, 'sleep', '1000'])).code, 0);
  const shim = pidsOf('src/shim/main.', `-id ${id} `);
  assert.equal(shim.length, 1);
  process.kill(shim[0]!, 'SIGKILL');
  assert.ok(await waitFor(() => pidsOf('qemu-system', `guest=${id}`).length === 0, 30_000, 200), 'the VM is gone');
  await ctr(['task', 'rm', '-f', id]);
  assert.equal((await ctr(['container', 'rm', id])).code, 0);
  await assertClean(id);
});

test('containerd restarted while a task runs: the task keeps running and containerd reconnects', async () => {
  const id = newId('restart');
  assert.equal((await ctr(['run', '-d', '--runtime', RUNTIME, IMAGE, id, 'sleep', '1000'])).code, 0);
  const shimBefore = pidsOf('src/shim/main.', `-id ${id} `);
  const r = await installShim({ restart: 'always', log });
  assert.equal(r.containerd, 'restarted');
  assert.ok(await waitFor(async () => (await taskStatus(id)) === 'RUNNING', 30_000, 200), 'containerd sees the task running again');
  assert.deepEqual(pidsOf('src/shim/main.', `-id ${id} `), shimBefore, 'the same shim serves it');
  const e = await ctr(['task', 'exec', '--exec-id', 'after', id, 'echo', 'still-here']);
  assert.equal(out(e), 'still-here\n', e.stderr);
  await removeAll(id);
  await assertClean(id);
});
