// Integration tests of the QEMU driver against real qemu-system-x86_64 under TCG with no kernel:
// the VM sits in its firmware, which is enough for QMP, pause/resume, stop paths, crashes and cleanup.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, HakoError } from '../../src/errors/index.js';
import { hasEvents, hasQmp, type VmDescription, type VmEvent } from '../../src/hypervisor/index.js';
import { QemuHypervisor, killLeftoverVm, qemuRuntimeFiles, type QemuVm } from '../../src/hypervisor/qemu/index.js';

const root = await mkdtemp(join(tmpdir(), 'hako-qemu-it-'));
const hv = new QemuHypervisor();
let n = 0;

function desc(over: Partial<VmDescription> = {}): VmDescription {
  n++;
  return { id: `it${n}`, vcpus: 1, memoryMiB: 64, accel: { kind: 'tcg' }, devices: [], runtimeDir: join(root, `vm${n}`), ...over };
}

/** qemuPidsUnder lists live processes whose command line mentions dir (our QEMUs). */
async function qemuPidsUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (cmd.startsWith('qemu-system') && cmd.includes(dir) && state !== 'Z' && state !== '') pids.push(Number(name));
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const started: QemuVm[] = [];
async function start(d: VmDescription): Promise<QemuVm> {
  const vm = await hv.start(d, { timeoutMs: 10_000 });
  started.push(vm);
  return vm;
}

after(async () => {
  // Belt and braces: stop what the tests started, then fail loudly if any QEMU survived.
  await Promise.all(started.map((vm) => vm.stop({ timeoutMs: 500, termTimeoutMs: 500 }).catch(() => {})));
  const left = await qemuPidsUnder(root);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  await rm(root, { recursive: true, force: true });
  assert.deepEqual(left, [], 'QEMU processes left behind by the tests');
});

test('start: QMP answers, pidfile and log are in the runtime dir', async () => {
  const d = desc();
  const vm = await start(d);
  const files = qemuRuntimeFiles(d.runtimeDir);
  assert.ok(alive(vm.pid));
  assert.equal((await readFile(files.pidFile, 'utf8')).trim(), String(vm.pid));
  assert.ok(existsSync(files.logFile));
  assert.ok(vm.startupMs > 0 && vm.startupMs < 10_000);
  assert.deepEqual(await vm.state(), { running: true, status: 'running' });
  assert.ok(hasQmp(vm) && hasEvents(vm));
  const version = await vm.qmp<{ qemu: { major: number } }>('query-version');
  assert.ok(version.qemu.major >= 7);
  await assert.rejects(vm.qmp('no-such-command'), (e: unknown) => e instanceof HakoError && e.code === Code.UNIMPLEMENTED && /CommandNotFound/.test(e.message));
  assert.equal(vm.exit(), undefined);
  await vm.stop();
});

test('pause and resume change the run state and emit STOP/RESUME', async () => {
  const vm = await start(desc());
  const events: VmEvent[] = [];
  const off = vm.onEvent((ev) => events.push(ev));
  await vm.pause();
  assert.deepEqual(await vm.state(), { running: false, status: 'paused' });
  await vm.resume({ timeoutMs: 2000 });
  assert.deepEqual(await vm.state(), { running: true, status: 'running' });
  off();
  assert.deepEqual(events.map((e) => e.name), ['STOP', 'RESUME']);
  assert.ok(events[0]!.timestampMs > Date.now() - 60_000);
  await vm.stop();
});

test('stop takes the QMP quit path and cleans up', async () => {
  const d = desc();
  const vm = await start(d);
  const exit = await vm.stop();
  assert.deepEqual(exit, { code: 0, signal: null, reason: 'stop', stoppedBy: 'quit', detail: 'qemu stopped by QMP quit (exited with code 0)' });
  assert.equal(await vm.exited, exit);
  assert.equal(vm.exit(), exit);
  assert.equal(await vm.stop(), exit, 'a second stop returns the same exit');
  assert.ok(!alive(vm.pid));
  const files = qemuRuntimeFiles(d.runtimeDir);
  assert.ok(!existsSync(files.qmpSocket) && !existsSync(files.pidFile));
  await assert.rejects(vm.state(), (e: unknown) => e instanceof HakoError && e.code === Code.FAILED_PRECONDITION);
});

test('stop escalates to SIGKILL when QEMU cannot answer', async () => {
  const vm = await start(desc());
  // A stopped process neither answers quit nor handles SIGTERM; only SIGKILL ends it.
  process.kill(vm.pid, 'SIGSTOP');
  const t0 = Date.now();
  const exit = await vm.stop({ timeoutMs: 300, termTimeoutMs: 300 });
  assert.equal(exit.reason, 'stop');
  assert.equal(exit.stoppedBy, 'sigkill');
  assert.equal(exit.signal, 'SIGKILL');
  assert.ok(Date.now() - t0 < 3000);
});

test('an aborted stop goes straight to SIGKILL', async () => {
  const vm = await start(desc());
  const exit = await vm.stop({ signal: AbortSignal.abort() });
  assert.equal(exit.stoppedBy, 'sigkill');
});

test('kill -9 of QEMU is noticed as an exit', async () => {
  const d = desc();
  const vm = await start(d);
  process.kill(vm.pid, 'SIGKILL');
  const exit = await vm.exited;
  assert.equal(exit.reason, 'killed');
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(exit.code, null);
  // QEMU could not clean up after itself; the driver did.
  assert.ok(!existsSync(qemuRuntimeFiles(d.runtimeDir).pidFile));
  await assert.rejects(vm.pause(), (e: unknown) => e instanceof HakoError && e.code === Code.FAILED_PRECONDITION);
});

test('a quit that did not come from stop() is host-quit', async () => {
  const viaQmp = await start(desc());
  await viaQmp.qmp('quit').catch(() => {});
  const e1 = await viaQmp.exited;
  assert.equal(e1.reason, 'host-quit');
  assert.match(e1.detail, /host-qmp-quit/);

  const viaSignal = await start(desc());
  process.kill(viaSignal.pid, 'SIGTERM');
  const e2 = await viaSignal.exited;
  assert.equal(e2.reason, 'host-quit');
  assert.match(e2.detail, /host-signal/);
});

test('start failure with a bad device path reports QEMU\'s own error line and leaves nothing', async () => {
  const d = desc({ devices: [{ kind: 'blk', id: 'root', path: join(root, 'no-such.img'), readonly: true }] });
  const err = await hv.start(d).catch((e: unknown) => e);
  assert.ok(err instanceof HakoError, String(err));
  assert.match(err.message, /qemu exited with code 1 during start: qemu-system-x86_64: -blockdev .*no-such\.img.*No such file or directory/);
  assert.deepEqual(await qemuPidsUnder(d.runtimeDir), []);
  assert.ok(!existsSync(qemuRuntimeFiles(d.runtimeDir).qmpSocket));
});

test('a missing QEMU binary is a clear error', async () => {
  const bad = new QemuHypervisor({ binary: join(root, 'no-qemu') });
  await assert.rejects(bad.start(desc()), (e: unknown) => e instanceof HakoError && e.code === Code.NOT_FOUND && /cannot run .*no-qemu/.test(e.message));
});

test('abort during start kills QEMU and leaves no process or socket', async () => {
  for (const delayMs of [0, 5, 30]) {
    const d = desc({ devices: [{ kind: 'virtio-serial-port', name: 'agent.channel.0', socketPath: join(root, `agent-${n}.sock`) }] });
    const ac = new AbortController();
    const p = hv.start(d, { signal: ac.signal });
    setTimeout(() => ac.abort(), delayMs);
    const err = await p.then(
      (vm) => {
        started.push(vm);
        return undefined;
      },
      (e: unknown) => e,
    );
    if (err === undefined) continue; // QEMU won the race; the after hook stops it.
    assert.ok(err instanceof HakoError && err.code === Code.CANCELLED, String(err));
    assert.deepEqual(await qemuPidsUnder(d.runtimeDir), [], `delay ${delayMs}`);
    assert.ok(!existsSync(qemuRuntimeFiles(d.runtimeDir).qmpSocket));
    assert.ok(!existsSync((d.devices[0] as { socketPath: string }).socketPath));
  }
  await assert.rejects(hv.start(desc(), { signal: AbortSignal.abort() }), (e: unknown) => e instanceof HakoError && e.code === Code.CANCELLED);
});

test('a start that exceeds its timeout is DEADLINE_EXCEEDED and leaves nothing', async () => {
  const d = desc();
  await assert.rejects(hv.start(d, { timeoutMs: 1 }), (e: unknown) => e instanceof HakoError && e.code === Code.DEADLINE_EXCEEDED);
  assert.deepEqual(await qemuPidsUnder(d.runtimeDir), []);
});

test('a second VM in a live runtime dir is refused', async () => {
  const d = desc();
  const vm = await start(d);
  await assert.rejects(hv.start({ ...d, id: 'other' }), (e: unknown) => e instanceof HakoError && e.code === Code.ALREADY_EXISTS);
  assert.deepEqual(await vm.state(), { running: true, status: 'running' });
  await vm.stop();
});

test('killLeftoverVm kills the QEMU of a process that died, and only that', async () => {
  const d = desc();
  // A separate Node process starts the VM and is then SIGKILLed, orphaning its QEMU.
  const driver = new URL('../../src/hypervisor/qemu/index.js', import.meta.url).href;
  const script = `const { QemuHypervisor } = await import(${JSON.stringify(driver)});
    const vm = await new QemuHypervisor().start(${JSON.stringify(d)});
    process.stdout.write(String(vm.pid) + '\\n'); setInterval(() => {}, 1000);`;
  const owner = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const qemuPid = await new Promise<number>((resolve, reject) => {
    owner.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
    owner.once('exit', (code) => reject(new Error(`owner exited early (${code})`)));
  });
  owner.kill('SIGKILL');
  await new Promise((resolve) => owner.once('exit', resolve));
  assert.ok(alive(qemuPid), 'QEMU outlives its owner');

  // A stale pidfile naming some other live process (ourselves) is not obeyed.
  const decoy = desc();
  await mkdir(decoy.runtimeDir, { recursive: true });
  await writeFile(qemuRuntimeFiles(decoy.runtimeDir).pidFile, `${process.pid}\n`);
  assert.equal(await killLeftoverVm(decoy.runtimeDir), undefined);
  assert.ok(!existsSync(qemuRuntimeFiles(decoy.runtimeDir).pidFile), 'the stale pidfile is removed');

  assert.equal(await killLeftoverVm(d.runtimeDir), qemuPid);
  assert.deepEqual(await qemuPidsUnder(d.runtimeDir), []);
  assert.ok(!existsSync(qemuRuntimeFiles(d.runtimeDir).pidFile));
  assert.equal(await killLeftoverVm(d.runtimeDir), undefined, 'nothing left the second time');
  // The runtime dir is usable again.
  const vm = await start(d);
  await vm.stop();
});
