// Unit tests of the Task service against a fake sandbox: state rules, error codes and
// the order of published events, without a VM or containerd.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary } from '@bufbuild/protobuf';
import { UInt32ValueSchema, AnySchema } from '@bufbuild/protobuf/wkt';
import { Code, HakoError } from '../errors/index.js';
import { Logger, memorySink } from '../log/index.js';
import type { CallContext } from '../ttrpc/index.js';
import { TaskExitSchema } from '../protocols/generated/containerd/events_pb.js';
import { Status } from '../protocols/generated/containerd/task-types_pb.js';
import { MetricsSchema } from '../protocols/generated/containerd/cgroups-metrics_pb.js';
import type { TaskEvent } from './events.js';
import { EXIT_STATUS_VM_GONE, PROCESS_SPEC_TYPE_URL, TaskService } from './task-service.js';
import { fakeBackend, type FakeContainer } from './testing/fake-sandbox.js';

const spec = {
  ociVersion: '1.0.2',
  process: { args: ['sh', '-c', 'echo hi'], cwd: '/', env: ['PATH=/bin'] },
  root: { path: 'rootfs' },
};

function setup(specOverride?: unknown, backendOpts: { hostPid?: number } = {}) {
  const bundle = mkdtempSync(join(tmpdir(), 'hako-shim-test-'));
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(specOverride ?? spec));
  const events: TaskEvent[] = [];
  const backend = fakeBackend(backendOpts);
  let shutdowns = 0;
  const svc = new TaskService({
    sandboxId: 'sb1', namespace: 'default', backend, log: new Logger(memorySink(), 'debug'), version: 'test',
    events: { publish: (e) => events.push(e) },
    onShutdown: () => { shutdowns++; },
  });
  const impl = svc.impl();
  const ctx = (): CallContext => ({ service: 'containerd.task.v2.Task', method: 'x', metadata: new Map(), namespace: 'default', signal: new AbortController().signal });
  const call = <K extends keyof typeof impl>(k: K, req: Record<string, unknown>) =>
    (impl[k] as (r: unknown, c: CallContext) => Promise<any>)(req, ctx());
  const createReq = (id = 'c1', extra: Record<string, unknown> = {}) =>
    ({ id, bundle, rootfs: [], terminal: false, stdin: '', stdout: '', stderr: '', checkpoint: '', parentCheckpoint: '', ...extra });
  const container = (id = 'c1') => backend.sandboxes[0]!.containers.get(id) as FakeContainer;
  const topics = () => events.map((e) => e.topic);
  const cleanup = () => rmSync(bundle, { recursive: true, force: true });
  return { svc, call, createReq, container, events, topics, backend, bundle, cleanup, shutdowns: () => shutdowns };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

async function rejectsWith(p: Promise<unknown>, code: Code, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HakoError, `want HakoError, got ${String(err)}`);
    assert.equal(err.code, code, `code ${err.code} (${err.message})`);
    if (re) assert.match(err.message, re);
    return true;
  });
}

test('create, start, exit, delete publish events in order; TaskStart precedes an immediate exit', async () => {
  const t = setup();
  try {
    const created = await t.call('create', t.createReq());
    assert.equal(created.pid, 0);
    const waitP = t.call('wait', { id: 'c1', execId: '' }); // Wait before Start must block, not fail
    const started = await t.call('start', { id: 'c1', execId: '' });
    assert.ok(started.pid > 0);
    assert.equal(readFileSync(join(t.bundle, 'init.pid'), 'utf8'), String(started.pid));
    t.container().init.exit(5);
    const w = await waitP;
    assert.equal(w.exitStatus, 5);
    assert.ok(w.exitedAt);
    const exitEv = t.events.find((e) => e.topic === '/tasks/exit')!;
    assert.equal(exitEv.event.typeUrl, 'containerd.events.TaskExit');
    const exit = fromBinary(TaskExitSchema, exitEv.event.value);
    assert.equal(exit.pid, started.pid, 'exit pid equals the started pid');
    assert.equal(exit.id, 'c1');
    assert.equal(exit.exitStatus, 5);
    // Wait after the exit answers at once with the saved status.
    assert.equal((await t.call('wait', { id: 'c1', execId: '' })).exitStatus, 5);
    const st = await t.call('state', { id: 'c1', execId: '' });
    assert.equal(st.status, Status.STOPPED);
    assert.equal(st.exitStatus, 5);
    await rejectsWith(t.call('kill', { id: 'c1', execId: '', signal: 9, all: false }), Code.NOT_FOUND);
    const del = await t.call('delete', { id: 'c1', execId: '' });
    assert.equal(del.exitStatus, 5);
    assert.equal(del.pid, started.pid);
    assert.ok(t.container().deleted);
    assert.deepEqual(t.topics(), ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
  } finally {
    t.cleanup();
  }
});

test('a process that exits during Start still gets TaskStart before TaskExit', async () => {
  const t = setup();
  try {
    await t.call('create', t.createReq());
    // The fake's init exits inside start(), before start() resolves.
    t.container().init.exitOnStart = 3;
    await t.call('start', { id: 'c1', execId: '' });
    await t.call('wait', { id: 'c1', execId: '' });
    assert.deepEqual(t.topics(), ['/tasks/create', '/tasks/start', '/tasks/exit']);
  } finally {
    t.cleanup();
  }
});

test('exec: added, started, exit in order; duplicate id is ALREADY_EXISTS; bad spec is INVALID_ARGUMENT', async () => {
  const t = setup();
  try {
    await t.call('create', t.createReq());
    await t.call('start', { id: 'c1', execId: '' });
    const procSpec = create(AnySchema, { typeUrl: PROCESS_SPEC_TYPE_URL, value: Buffer.from(JSON.stringify({ args: ['ls'], cwd: '/' })) });
    const req = { id: 'c1', execId: 'e1', terminal: false, stdin: '', stdout: '', stderr: '', spec: procSpec };
    await t.call('exec', req);
    await rejectsWith(t.call('exec', req), Code.ALREADY_EXISTS);
    const bad = create(AnySchema, { typeUrl: PROCESS_SPEC_TYPE_URL, value: Buffer.from(JSON.stringify({ args: [], cwd: '/' })) });
    await rejectsWith(t.call('exec', { ...req, execId: 'e2', spec: bad }), Code.INVALID_ARGUMENT, /spec\.args/);
    await rejectsWith(t.call('delete', { id: 'c1', execId: 'nope' }), Code.NOT_FOUND);
    const st = await t.call('start', { id: 'c1', execId: 'e1' });
    assert.equal((await t.call('state', { id: 'c1', execId: 'e1' })).status, Status.RUNNING);
    await rejectsWith(t.call('delete', { id: 'c1', execId: 'e1' }), Code.FAILED_PRECONDITION);
    t.container().execs.get('e1')!.exit(0);
    const w = await t.call('wait', { id: 'c1', execId: 'e1' });
    assert.equal(w.exitStatus, 0);
    const d = await t.call('delete', { id: 'c1', execId: 'e1' });
    assert.equal(d.pid, st.pid);
    const exitEv = fromBinary(TaskExitSchema, t.events.find((e) => e.topic === '/tasks/exit')!.event.value);
    assert.equal(exitEv.id, 'e1');
    assert.equal(exitEv.containerId, 'c1');
    assert.deepEqual(t.topics(), ['/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/exit']);
  } finally {
    t.cleanup();
  }
});

test('kill by signal reports 128+N; delete of a running task is refused; Shutdown waits for containers', async () => {
  const t = setup();
  try {
    await t.call('create', t.createReq());
    await t.call('start', { id: 'c1', execId: '' });
    await rejectsWith(t.call('delete', { id: 'c1', execId: '' }), Code.FAILED_PRECONDITION);
    await t.call('shutdown', { id: 'c1', now: false });
    await settle();
    assert.equal(t.shutdowns(), 0, 'Shutdown is a no-op while a container remains');
    await t.call('kill', { id: 'c1', execId: '', signal: 9, all: true });
    assert.deepEqual(t.container().kills, [{ signal: 9, all: true }]);
    assert.equal((await t.call('wait', { id: 'c1', execId: '' })).exitStatus, 137);
    await t.call('delete', { id: 'c1', execId: '' });
    await t.call('shutdown', { id: 'c1', now: false });
    await settle();
    assert.equal(t.shutdowns(), 1);
  } finally {
    t.cleanup();
  }
});

test('a malformed spec fails Create naming the field, and leaves nothing registered', async () => {
  const t = setup({ ...spec, process: { args: 'sh', cwd: '/' } });
  try {
    await rejectsWith(t.call('create', t.createReq()), Code.INVALID_ARGUMENT, /process\.args/);
    await rejectsWith(t.call('state', { id: 'c1', execId: '' }), Code.NOT_FOUND);
    assert.deepEqual(t.topics(), []);
  } finally {
    t.cleanup();
  }
  const t2 = setup({ ...spec, root: {} });
  try {
    await rejectsWith(t2.call('create', t2.createReq()), Code.INVALID_ARGUMENT, /root\.path/);
  } finally {
    t2.cleanup();
  }
});

test('duplicate create is ALREADY_EXISTS; unsupported stdio scheme is an error; checkpoint is UNIMPLEMENTED', async () => {
  const t = setup();
  try {
    await t.call('create', t.createReq());
    await rejectsWith(t.call('create', t.createReq()), Code.ALREADY_EXISTS);
    await rejectsWith(t.call('create', t.createReq('c2', { stdout: 'tcp://x' })), Code.INVALID_ARGUMENT, /STDIO scheme tcp/);
    await rejectsWith(t.call('checkpoint', { id: 'c1', path: '/tmp/x' }), Code.UNIMPLEMENTED);
    assert.equal(t.backend.sandboxes.length, 1, 'one VM for the shim');
  } finally {
    t.cleanup();
  }
});

test('the VM dying under a running task publishes its exit and releases Wait', async () => {
  const t = setup();
  try {
    await t.call('create', t.createReq());
    await t.call('start', { id: 'c1', execId: '' });
    const w = t.call('wait', { id: 'c1', execId: '' });
    t.backend.sandboxes[0]!.die();
    assert.equal((await w).exitStatus, EXIT_STATUS_VM_GONE);
    assert.deepEqual(t.topics(), ['/tasks/create', '/tasks/start', '/tasks/exit']);
  } finally {
    t.cleanup();
  }
});

test('pause/resume publish events; stats is cgroups v2 Metrics; connect reports pids; update needs JSON', async () => {
  const t = setup();
  try {
    await t.call('create', t.createReq());
    const { pid } = await t.call('start', { id: 'c1', execId: '' });
    await t.call('pause', { id: 'c1' });
    assert.equal((await t.call('state', { id: 'c1', execId: '' })).status, Status.PAUSED);
    await t.call('resume', { id: 'c1' });
    const s = await t.call('stats', { id: 'c1' });
    assert.equal(s.stats.typeUrl, 'io.containerd.cgroups.v2.Metrics');
    const m = fromBinary(MetricsSchema, s.stats.value);
    assert.equal(m.cpu?.usageUsec, 1234n);
    assert.equal(m.memory?.usage, 4096n);
    const c = await t.call('connect', { id: 'c1' });
    assert.equal(c.shimPid, process.pid);
    assert.equal(c.taskPid, pid);
    assert.deepEqual((await t.call('pids', { id: 'c1' })).processes, [{ pid }]);
    const res = create(AnySchema, { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from('{"memory":{"limit":1048576}}') });
    await t.call('update', { id: 'c1', resources: res, annotations: {} });
    assert.deepEqual(t.container().updates, ['{"memory":{"limit":1048576}}']);
    await rejectsWith(t.call('update', { id: 'c1', resources: create(AnySchema, { value: Buffer.from('[') }), annotations: {} }), Code.INVALID_ARGUMENT);
    await t.call('resizePty', { id: 'c1', execId: '', width: 80, height: 24 });
    assert.deepEqual(t.container().init.resized, [[24, 80]]);
    assert.deepEqual(t.topics(), ['/tasks/create', '/tasks/start', '/tasks/paused', '/tasks/resumed']);
  } finally {
    t.cleanup();
  }
});

test('killing a created, never started task ends it so a forced delete does not hang', async () => {
  const t = setup();
  try {
    await t.call('create', t.createReq());
    const w = t.call('wait', { id: 'c1', execId: '' });
    await t.call('kill', { id: 'c1', execId: '', signal: 9, all: true });
    assert.equal((await w).exitStatus, 137);
    await t.call('delete', { id: 'c1', execId: '' });
    assert.deepEqual(t.topics(), ['/tasks/create', '/tasks/exit', '/tasks/delete']);
  } finally {
    t.cleanup();
  }
});

test('with a pod namespace holder every answer carries its host pid, and Pids keeps the guest pids in info', async () => {
  const withNet = { ...spec, linux: { ...(spec as { linux?: object }).linux, namespaces: [{ type: 'pid' }, { type: 'network' }] } };
  const t = setup(withNet, { hostPid: 4242 });
  try {
    assert.equal((await t.call('create', t.createReq())).pid, 4242);
    assert.deepEqual(t.backend.netns, [{ kind: 'new', hostNetwork: false }]);
    assert.equal((await t.call('start', { id: 'c1', execId: '' })).pid, 4242);
    assert.equal((await t.call('state', { id: 'c1', execId: '' })).pid, 4242);
    assert.equal((await t.call('connect', { id: 'c1' })).taskPid, 4242);
    const ps = (await t.call('pids', { id: 'c1' })).processes as Array<{ pid: number; info?: { typeUrl: string; value: Uint8Array } }>;
    assert.equal(ps.length, 1);
    assert.equal(ps[0]!.pid, 4242);
    assert.equal(ps[0]!.info!.typeUrl, 'google.protobuf.UInt32Value');
    assert.notEqual(fromBinary(UInt32ValueSchema, ps[0]!.info!.value).value, 4242, 'info holds the guest pid');
  } finally {
    t.cleanup();
  }
});
