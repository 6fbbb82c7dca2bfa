// The Task API of a live shim serving a real task started by ctr: concurrent calls on one
// connection (a blocked Wait does not block others), Update limits inside the VM, Stats.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { create, fromBinary } from '@bufbuild/protobuf';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import { Logger, streamSink } from '../../src/log/index.js';
import { ensureAssets } from '../../src/image/index.js';
import { installShim } from '../../src/shim/install.js';
import { Client, createClient, dialUnix, NAMESPACE_KEY } from '../../src/ttrpc/index.js';
import { Task } from '../../src/protocols/generated/containerd/shim_pb.js';
import { MetricsSchema } from '../../src/protocols/generated/containerd/cgroups-metrics_pb.js';
import { pidsOf, run, waitFor } from './shim-helpers.js';
import { frame, pbBytes, pbFields, request, TASK, WireConn } from './shim-wire.js';

const NS = 'hako-e2e';
const ID = `e2e-${randomBytes(3).toString('hex')}-api`;
const log = new Logger(streamSink(process.stderr), 'warn');
let socket = '';

function ctr(args: string[], input?: string) {
  return run('ctr', ['-n', NS, ...args], { input, timeoutMs: 180_000 });
}

before(async () => {
  await installShim({ restart: 'if-changed', log });
  const assets = await ensureAssets({ log });
  assert.equal((await ctr(['image', 'import', '--base-name', 'localhost/busybox', assets.busyboxArchive])).code, 0);
  const r = await ctr(['run', '-d', '--runtime', 'io.containerd.hako.v2', 'localhost/busybox:latest', ID, 'sleep', '1000']);
  assert.equal(r.code, 0, r.stderr);
  const address = readFileSync(`/run/containerd/io.containerd.runtime.v2.task/${NS}/${ID}/address`, 'utf8');
  socket = address.replace(/^unix:\/\//, '');
});

after(async () => {
  await ctr(['task', 'kill', '-s', 'SIGKILL', ID]);
  await waitFor(async () => !(await ctr(['task', 'ls'])).stdout.toString().includes(`${ID} `) || (await ctr(['task', 'rm', '-f', ID])).code === 0, 30_000, 500);
  await ctr(['container', 'rm', ID]);
  const gone = await waitFor(() => pidsOf('qemu-system', `guest=${ID}`).length === 0 && pidsOf('src/shim/main.', `-id ${ID} `).length === 0, 20_000);
  assert.ok(gone, 'VM and shim are gone');
});

test('one connection: a blocked Wait does not hold up 50 concurrent State/Pids/Connect calls', async () => {
  const w = await WireConn.dial(socket);
  try {
    w.write(frame(1, 1, request(TASK, 'Wait', Buffer.concat([pbBytes(1, ID)]), NS)));
    const ids: number[] = [];
    const frames: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const sid = 3 + 2 * i;
      ids.push(sid);
      const method = ['State', 'Pids', 'Connect'][i % 3]!;
      frames.push(frame(sid, 1, request(TASK, method, pbBytes(1, ID), NS)));
    }
    w.write(Buffer.concat(frames));
    await w.until((c) => ids.every((id) => c.response(id)), 60_000);
    assert.ok(ids.every((id) => w.response(id)!.code === 0), 'every call answered OK');
    assert.equal(w.response(1), undefined, 'Wait is still blocked');
    const state = pbFields(w.response(3)!.payload);
    assert.equal(state.get(4)?.[0], 2, 'State says RUNNING');
    const pid = state.get(3)?.[0] as number;
    assert.ok(pid > 0);
    // Kill on another connection releases the Wait with 128 + SIGKILL.
    const k = await WireConn.dial(socket);
    k.write(frame(1, 1, request(TASK, 'Kill', Buffer.concat([pbBytes(1, ID), Buffer.from([0x18, 9])]), NS)));
    await k.until((c) => c.responses.length === 1);
    assert.equal(k.responses[0]!.code, 0, k.responses[0]!.message);
    k.close();
    await w.until((c) => !!c.response(1), 60_000);
    assert.equal(w.response(1)!.code, 0);
    assert.equal(pbFields(w.response(1)!.payload).get(1)?.[0], 137);
  } finally {
    w.close();
  }
});

test('Update applies memory and CPU limits inside the VM; Stats reports them', async (t) => {
  const id = `${ID}-upd`;
  // ctr's default spec has no /sys/fs/cgroup mount: add one to read the limits from inside.
  const r = await ctr(['run', '-d', '--mount', 'type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro', '--runtime', 'io.containerd.hako.v2', 'localhost/busybox:latest', id, 'sleep', '1000']);
  assert.equal(r.code, 0, r.stderr);
  t.after(async () => {
    await ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    await new Promise((res) => setTimeout(res, 1000));
    await ctr(['task', 'rm', '-f', id]);
    await ctr(['container', 'rm', id]);
    await waitFor(() => pidsOf('qemu-system', `guest=${id}`).length === 0, 20_000);
  });
  const address = readFileSync(`/run/containerd/io.containerd.runtime.v2.task/${NS}/${id}/address`, 'utf8');
  const conn = new Client(await dialUnix(address));
  try {
    const task = createClient(Task, conn);
    const md = { metadata: { [NAMESPACE_KEY]: NS }, timeoutMs: 60_000 };
    const resources = { memory: { limit: 64 * 1024 * 1024 }, cpu: { quota: 50_000, period: 100_000 } };
    await task.update({
      id,
      resources: create(AnySchema, { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify(resources)) }),
    }, md);
    const read = await ctr(['task', 'exec', '--exec-id', 'm1', id, 'sh', '-c', 'd=/sys/fs/cgroup$(cut -d: -f3 /proc/1/cgroup); cat $d/memory.max $d/cpu.max']);
    assert.equal(read.stdout.toString(), `${64 * 1024 * 1024}\n50000 100000\n`, read.stderr);
    const s = await task.stats({ id }, md);
    assert.equal(s.stats?.typeUrl, 'io.containerd.cgroups.v2.Metrics');
    const m = fromBinary(MetricsSchema, s.stats!.value);
    assert.equal(m.memory?.usageLimit, BigInt(64 * 1024 * 1024));
    assert.ok((m.memory?.usage ?? 0n) > 0n);
    assert.ok((m.pids?.current ?? 0n) >= 1n);
  } finally {
    conn.close();
  }
});
