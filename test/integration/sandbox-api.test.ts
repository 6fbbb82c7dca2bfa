// The Sandbox API (docs/sandbox-api.md) against real QEMU, as the shim uses it: two containers
// in one VM, wait before start, stdio, exec, kill after exit, pause/resume, pids, stats, delete,
// and cleanupSandbox from outside while waits are pending (they must reject, not hang).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Code, HakoError } from '../../src/errors/index.js';
import { Logger, memorySink } from '../../src/log/index.js';
import { loadConfig } from '../../src/config/index.js';
import { ensureAssets } from '../../src/image/index.js';
import { unpackImage } from '../../src/storage/index.js';
import { Sandbox, cleanupSandbox, defaultSpec, readState } from '../../src/sandbox/index.js';
import { BOOT_MS, assertClean, ourMounts, ourQemus, prefix, sweep } from './cli-harness.js';

function collect(r: Readable | null): () => string {
  let s = '';
  r?.on('data', (c: Buffer) => (s += c.toString()));
  return () => s;
}

function isCode(code: Code): (err: unknown) => boolean {
  return (err) => err instanceof HakoError && err.code === code;
}

after(async () => {
  await sweep();
  assertClean('after the sandbox API test');
});

test('Sandbox, Container and Process against a real VM', { timeout: BOOT_MS * 3 }, async () => {
  const { config } = await loadConfig();
  const sink = memorySink();
  const log = new Logger(sink, 'info');
  const assets = await ensureAssets({ log, cacheDir: config.runtime.cacheDir });
  const image = await unpackImage({ ref: { path: assets.busyboxLayout, kind: 'dir' }, cacheDir: config.runtime.cacheDir, log });
  const work = mkdtempSync(join(tmpdir(), 'hako-sbapi-'));
  const id = `${prefix}-api`;
  const sb = await Sandbox.create({ id, config, log, assets });
  try {
    assert.equal(sb.dir, `/run/hako/sandboxes/${id}`);
    for (const mark of ['qemu-spawn', 'qmp-ready', 'agent-ready', 'sandbox-ready'] as const) {
      assert.ok((sb.timings.get(mark) ?? -1) >= 0, `timing mark ${mark}`);
    }
    assert.ok(sink.lines.some((l) => l.includes('"mark":"agent-ready"') && l.includes('guestUptimeAtAgentStartMs')), 'agent-ready is logged with the guest uptime');
    const base = { env: image.config.env, cwd: '/', user: { uid: 0, gid: 0 }, terminal: false, volumes: [] };

    // Container 1: stdin in, stdout and stderr out, exit 3; wait() called before start().
    const spec1 = defaultSpec({ ...base, hostname: 'one', args: ['sh', '-c', 'read x; echo "got $x"; echo err >&2; exit 3'] });
    const c1 = await sb.createContainer({ id: 'c1', spec: spec1, rootfs: await sb.mountImageRootfs('c1', image.rootfs), stdin: true, terminal: false });
    await assert.rejects(sb.createContainer({ id: 'c1', spec: spec1, rootfs: image.rootfs, stdin: false, terminal: false }), isCode(Code.ALREADY_EXISTS));
    assert.equal(c1.status, 'created');
    const out1 = collect(c1.init.stdout);
    const err1 = collect(c1.init.stderr);
    const waited = c1.init.wait();
    const pid1 = await c1.start();
    assert.ok(pid1 > 0 && c1.pid === pid1);
    c1.init.stdin!.end('hello\n');
    const exit1 = await waited;
    assert.equal(exit1.exitStatus, 3);
    assert.equal(out1(), 'got hello\n', 'all of stdout is there when wait resolves');
    assert.equal(err1(), 'err\n');
    assert.equal(c1.status, 'stopped');
    assert.deepEqual(c1.init.exited, exit1);
    await assert.rejects(c1.kill(15), isCode(Code.NOT_FOUND), 'kill after exit is NOT_FOUND');

    // Container 2 in the same VM, with a read-only volume: exec, pids, pause/resume, stats.
    const vol = join(work, 'vol');
    rmSync(vol, { force: true, recursive: true });
    writeFileSync(join(work, 'f'), 'volume file\n');
    const spec2 = defaultSpec({ ...base, hostname: 'two', args: ['sleep', '1000'], volumes: [{ source: work, destination: '/v', readonly: true }] });
    const c2 = await sb.createContainer({ id: 'c2', spec: spec2, rootfs: await sb.mountImageRootfs('c2', image.rootfs), stdin: false, terminal: false });
    await c2.start();
    const state = await readState(join(sb.dir, 'state.json'));
    assert.deepEqual(state.containers.map((c) => [c.id, c.status]), [['c1', 'stopped'], ['c2', 'running']]);
    assert.ok(state.containers[1]!.mounts.some((m) => m.endsWith('/shared/c2/volumes/0')));
    const e1 = await c2.exec({ execId: 'e1', process: { ...spec2.process, args: ['sh', '-c', 'cat /v/f; cat; touch /v/x || exit 9'] }, stdin: true, terminal: false });
    await assert.rejects(c2.exec({ execId: 'e1', process: spec2.process, stdin: false, terminal: false }), isCode(Code.ALREADY_EXISTS));
    const outE = collect(e1.stdout);
    assert.ok((await e1.start()) > 0);
    e1.stdin!.end('piped\n');
    assert.equal((await e1.wait()).exitStatus, 9, 'the volume is read-only');
    assert.equal(outE(), 'volume file\npiped\n');
    assert.equal(c2.process('e1'), e1);
    assert.ok((await c2.pids()).includes(c2.pid));
    await c2.pause();
    assert.equal(c2.status, 'paused');
    await c2.resume();
    assert.equal(c2.status, 'running');
    const stats = await c2.stats();
    assert.ok(stats.pidsCurrent >= 1n);
    await assert.rejects(c2.delete(), isCode(Code.FAILED_PRECONDITION), 'a running container needs force');
    await c2.delete({ force: true });
    assert.equal(sb.container('c2'), undefined);
    assert.ok(!ourMounts().some((m) => m.includes('/c2/')), 'c2 share entries and overlay are unmounted');
    await c1.delete();
    assert.deepEqual(sb.containers(), []);

    // Container 3 waits forever; cleanupSandbox from outside (as `hako rm -f` or a shim's
    // delete would) kills QEMU: the pending wait must reject promptly and onExit must fire.
    const spec3 = defaultSpec({ ...base, hostname: 'three', args: ['sleep', '1000'] });
    const c3 = await sb.createContainer({ id: 'c3', spec: spec3, rootfs: await sb.mountImageRootfs('c3', image.rootfs), stdin: false, terminal: false });
    await c3.start();
    const exited = new Promise<HakoError>((resolve) => sb.onExit(resolve));
    const pending = c3.init.wait();
    const t = Date.now();
    assert.equal(await cleanupSandbox(id, { stateDir: config.runtime.stateDir, log }), true);
    await assert.rejects(pending, isCode(Code.UNAVAILABLE));
    const reason = await exited;
    assert.match(reason.message, /VM exited unexpectedly|lost the guest agent/);
    assert.ok(Date.now() - t < 15_000, `waits fail promptly (${Date.now() - t} ms)`);
    assert.ok(!existsSync(sb.dir), 'cleanupSandbox removed the directory');
    assert.deepEqual(ourQemus(), []);
    assert.deepEqual(ourMounts(), []);
    await sb.stop(); // after a failure stop() still works and finds nothing left
    assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').indexOf(sb.dir) < 0);
  } finally {
    await sb.stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
});
