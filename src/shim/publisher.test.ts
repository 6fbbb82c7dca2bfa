// Tests of the event publisher against a fake containerd Events service on a unix socket:
// order, envelope fields, bare type URLs, and delivery after containerd comes back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { Logger, memorySink } from '../log/index.js';
import { NAMESPACE_KEY, registerService, Server } from '../ttrpc/index.js';
import { Events, type Envelope } from '../protocols/generated/containerd/events-service_pb.js';
import { TaskExitSchema } from '../protocols/generated/containerd/events_pb.js';
import { taskEvents } from './events.js';
import { Publisher } from './publisher.js';

function fakeContainerd(path: string) {
  const got: Array<{ env: Envelope; ns: string | undefined }> = [];
  const server = new Server();
  registerService(server, Events, {
    forward: async (req, ctx) => {
      got.push({ env: req.envelope!, ns: ctx.metadata.get(NAMESPACE_KEY)?.[0] });
      return {};
    },
  });
  // Own listener, so "containerd going away" can drop live connections at once.
  const socks = new Set<Socket>();
  const net = createServer((sock) => { socks.add(sock); sock.on('close', () => socks.delete(sock)); server.serve(sock); });
  return {
    got,
    listen: () => new Promise<void>((r) => { rmSync(path, { force: true }); net.listen(path, r); }),
    stop: () => new Promise<void>((r) => { for (const s of socks) s.destroy(); net.close(() => r()); }),
  };
}

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('publishes in order with namespace, non-zero timestamps and bare type URLs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hako-pub-'));
  const sock = join(dir, 'containerd.sock.ttrpc');
  const fc = fakeContainerd(sock);
  await fc.listen();
  const pub = new Publisher({ address: `unix://${sock}`, namespace: 'ns1', log: new Logger(memorySink()) });
  try {
    pub.publish(taskEvents.create({ containerId: 'c1', bundle: '/b', pid: 0 }));
    pub.publish(taskEvents.start({ containerId: 'c1', pid: 42 }));
    pub.publish(taskEvents.exit({ containerId: 'c1', id: 'c1', pid: 42, exitStatus: 137 }));
    pub.publish(taskEvents.delete({ containerId: 'c1', pid: 42, exitStatus: 137 }));
    await pub.flush(5_000);
    assert.deepEqual(fc.got.map((g) => g.env.topic), ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    for (const g of fc.got) {
      assert.equal(g.env.namespace, 'ns1');
      assert.equal(g.ns, 'ns1');
      assert.ok(g.env.timestamp && g.env.timestamp.seconds > 0n);
      assert.ok(!g.env.event!.typeUrl.includes('/'), `bare type URL: ${g.env.event!.typeUrl}`);
    }
    assert.equal(fc.got[2]!.env.event!.typeUrl, 'containerd.events.TaskExit');
    assert.equal(fromBinary(TaskExitSchema, fc.got[2]!.env.event!.value).exitStatus, 137);
  } finally {
    pub.close();
    await fc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('queues while containerd is away and delivers in order once it is back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hako-pub-'));
  const sock = join(dir, 'containerd.sock.ttrpc');
  const pub = new Publisher({ address: sock, namespace: 'default', log: new Logger(memorySink()) });
  const fc = fakeContainerd(sock);
  try {
    for (let i = 0; i < 20; i++) pub.publish(taskEvents.start({ containerId: `c${i}`, pid: i + 1 }));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(pub.pending, 20);
    await fc.listen();
    await until(() => fc.got.length === 20);
    assert.deepEqual(fc.got.map((g) => g.env.topic), Array(20).fill('/tasks/start'));
    // The envelope keeps the time the event happened, not when it was delivered.
    const first = fc.got[0]!.env.timestamp!;
    assert.ok(Number(first.seconds) * 1000 <= Date.now() - 250);
    // A restart of containerd drops the connection; later events still arrive.
    await fc.stop();
    const fc2 = fakeContainerd(sock);
    await fc2.listen();
    pub.publish(taskEvents.oom({ containerId: 'c1' }));
    await until(() => fc2.got.length === 1);
    assert.equal(fc2.got[0]!.env.event!.typeUrl, 'containerd.events.TaskOOM');
    await fc2.stop();
  } finally {
    pub.close();
    await fc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the queue is bounded', () => {
  const pub = new Publisher({ address: '/nonexistent/sock', namespace: 'default', log: new Logger(memorySink()), maxQueue: 3 });
  for (let i = 0; i < 10; i++) pub.publish(taskEvents.start({ containerId: 'c', pid: i }));
  assert.ok(pub.pending <= 3);
  pub.close();
});
