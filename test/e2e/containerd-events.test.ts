// e2e: hako's ttRPC client publishes a TaskExit to the real containerd through
// Events/Forward on its ttRPC socket, and `ctr events` must print it with every field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Events } from '../../src/protocols/generated/containerd/events-service_pb.js';
import { TaskExitSchema } from '../../src/protocols/generated/containerd/events_pb.js';
import { Client, createClient, dialUnix, NAMESPACE_KEY } from '../../src/ttrpc/index.js';
import { CONTAINERD_TTRPC_SOCKET, ensureContainerd } from '../lib/containerd.js';

const NS = 'hako-e2e-events';

/** Line is one `ctr events` line: Go's time.String(), namespace, topic, event JSON. */
interface Line {
  at: number;
  namespace: string;
  topic: string;
  event: Record<string, unknown>;
}

function parseLine(line: string): Line | null {
  // e.g. 2026-11-29 10:50:01.123 +0000 UTC hako-e2e-events /tasks/exit {"container_id":...}
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)? ([+-])(\d\d)(\d\d) \S+ (\S+) (\S+) (\{.*\})$/.exec(line);
  if (!m) return null;
  const frac = Number(`0${m[3] ?? '.0'}`);
  const offsetMin = (m[4] === '-' ? -1 : 1) * (Number(m[5]) * 60 + Number(m[6]));
  const at = Date.parse(`${m[1]}T${m[2]}Z`) + Math.round(frac * 1000) - offsetMin * 60_000;
  return { at, namespace: m[7]!, topic: m[8]!, event: JSON.parse(m[9]!) as Record<string, unknown> };
}

test('ctr events prints a TaskExit published by hako through Events/Forward', { timeout: 90_000 }, async (t) => {
  await ensureContainerd({ signal: AbortSignal.timeout(60_000) });

  const ctr = spawn('ctr', ['-n', NS, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  ctr.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  ctr.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const client = new Client(await dialUnix(CONTAINERD_TTRPC_SOCKET), { defaultTimeoutMs: 5000 });
  t.after(() => {
    client.close();
    ctr.kill('SIGTERM');
  });
  const events = createClient(Events, client);

  const tag = `${process.pid}-${Date.now()}`;
  const publish = async (id: string, typeUrl: string, when: Date) => {
    const exit = create(TaskExitSchema, { containerId: `ctr-${id}`, id: `exec-${id}`, pid: 4242, exitStatus: 137, exitedAt: timestampFromDate(new Date(when.getTime() - 250)) });
    await events.forward(
      { envelope: { timestamp: timestampFromDate(when), namespace: NS, topic: '/tasks/exit', event: { typeUrl, value: toBinary(TaskExitSchema, exit) } } },
      { metadata: { [NAMESPACE_KEY]: NS } },
    );
  };
  const find = (id: string): Line | undefined =>
    stdout
      .split('\n')
      .map(parseLine)
      .find((l): l is Line => l !== null && l.event.container_id === `ctr-${id}`);
  const waitLine = async (id: string, ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const l = find(id);
      if (l) return l;
      if (ctr.exitCode !== null) assert.fail(`ctr events exited ${ctr.exitCode}: ${stderr}`);
      await sleep(25);
    }
    return undefined;
  };

  // `ctr events` subscribes asynchronously and says nothing when it is ready: publish
  // the same event until it shows up (each copy is identical, so any copy will do).
  const first = `${tag}-a`;
  const when = new Date(Date.now() - 1000);
  when.setMilliseconds(123);
  let line: Line | undefined;
  for (let i = 0; i < 40 && !line; i++) {
    await publish(first, 'containerd.events.TaskExit', when);
    line = await waitLine(first, 500);
  }
  assert.ok(line, `ctr events never printed the TaskExit. stdout:\n${stdout}\nstderr:\n${stderr}`);
  assert.equal(line.namespace, NS);
  assert.equal(line.topic, '/tasks/exit');
  assert.equal(line.at, when.getTime(), 'the envelope timestamp is the one we sent');
  assert.deepEqual(
    { ...line.event, exited_at: undefined },
    { container_id: `ctr-${first}`, id: `exec-${first}`, pid: 4242, exit_status: 137, exited_at: undefined },
  );
  assert.equal(Date.parse(line.event.exited_at as string), when.getTime() - 250);

  // The bare type URL matters: with the googleapis prefix containerd's typeurl cannot
  // decode the event, and ctr skips it. Events reach a subscriber in order, so once the
  // later good event is printed, the bad one would have been printed before it.
  const bad = `${tag}-b`;
  const good = `${tag}-c`;
  await publish(bad, 'type.googleapis.com/containerd.events.TaskExit', new Date());
  await publish(good, 'containerd.events.TaskExit', new Date());
  assert.ok(await waitLine(good, 10_000), 'the event after the prefixed one arrives');
  assert.equal(find(bad), undefined, 'a prefixed type URL is not understood by containerd');
  assert.match(stderr, /type\.googleapis\.com\/containerd\.events\.TaskExit/);
});
