// Unit tests for AgentClient against an in-process fake agent over a Duplex pair: reply
// validation, timeouts on ordinary calls, cancellable long polls, UNAVAILABLE on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, HakoError } from '../errors/index.js';
import { fakeAgent as fake } from '../../test/lib/fake-agent.js';

async function rejectsWith(p: Promise<unknown>, code: Code, re?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HakoError, `not a HakoError: ${String(err)}`);
    assert.equal(err.code, code, `code ${err.code} (${err.message})`);
    if (re) assert.match(err.message, re);
    return true;
  });
}

const never = () => new Promise<never>(() => {});

test('valid replies come back as checked values', async () => {
  const exitedAt = new Date('2030-01-02T03:04:05.678Z');
  const { client } = fake({
    check: async () => ({ agentVersion: '0.1.0' }),
    getGuestDetails: async () => ({ agentVersion: '0.1.0', kernelRelease: '6.1.0-hako', uptimeAtAgentStartMs: 2100n, uptimeMs: 3000n, memTotalKib: 400000n, onlineCpus: 1, crunVersion: 'crun version 1.8.1' }),
    startContainer: async () => ({ pid: 42 }),
    waitProcess: async () => ({ exitStatus: 137, exitedAt: timestampFromDate(exitedAt) }),
    readStdout: async (req) => ({ data: Buffer.alloc(Math.min(req.maxLen, 5), 97), eof: false }),
    listProcesses: async () => ({ pids: [1, 2, 3] }),
    writeStdin: async (req) => ({ len: req.data.length }),
    statsContainer: async () => ({ memoryUsage: 4096n, pidsLimit: 0xffff_ffff_ffff_ffffn }),
  });
  assert.deepEqual(await client.check(), { agentVersion: '0.1.0' });
  const d = await client.getGuestDetails();
  assert.equal(d.kernelRelease, '6.1.0-hako');
  assert.equal(d.uptimeAtAgentStartMs, 2100);
  assert.equal(await client.startContainer('c1'), 42);
  assert.deepEqual(await client.waitProcess('c1', ''), { exitStatus: 137, exitedAt });
  const r = await client.readStdout('c1', '', 3);
  assert.equal(r.data.length, 3);
  assert.deepEqual(await client.listProcesses('c1'), [1, 2, 3]);
  assert.equal(await client.writeStdin('c1', '', Buffer.from('hi')), 2);
  const s = await client.statsContainer('c1');
  assert.equal(s.memoryUsage, 4096n);
  assert.equal(s.pidsLimit, 0xffff_ffff_ffff_ffffn);
  assert.ok(!("$typeName" in s));
  client.close();
});

test('out-of-range or oversized replies are refused as INTERNAL', async () => {
  const { client } = fake({
    startContainer: async () => ({ pid: 0 }),
    execProcess: async () => ({ pid: 5_000_000 }),
    waitProcess: async () => ({ exitStatus: 300, exitedAt: timestampFromDate(new Date()) }),
    readStdout: async (req) => ({ data: Buffer.alloc(req.maxLen + 1), eof: false }),
    readStderr: async () => ({ data: new Uint8Array(), eof: false }),
    writeStdin: async (req) => ({ len: req.data.length + 1 }),
    getGuestDetails: async () => ({ agentVersion: 'v', kernelRelease: 'x'.repeat(300), onlineCpus: 1 }),
    check: async () => ({ agentVersion: 'bad\nversion' }),
    getOOMEvent: async () => ({ containerId: '../../etc' }),
    listProcesses: async () => ({ pids: [1, 0] }),
  });
  await rejectsWith(client.startContainer('c1'), Code.INTERNAL, /pid 0/);
  await rejectsWith(client.execProcess({ containerId: 'c1', execId: 'e', process: { args: ['x'] }, stdin: false, terminal: false }), Code.INTERNAL);
  await rejectsWith(client.waitProcess('c1', ''), Code.INTERNAL, /exit status 300/);
  await rejectsWith(client.readStdout('c1', '', 16), Code.INTERNAL, /17 bytes/);
  await rejectsWith(client.readStderr('c1', '', 16), Code.INTERNAL, /without eof/);
  await rejectsWith(client.writeStdin('c1', '', Buffer.from('abc')), Code.INTERNAL);
  await rejectsWith(client.getGuestDetails(), Code.INTERNAL, /kernel_release/);
  await rejectsWith(client.check(), Code.INTERNAL, /control/);
  await rejectsWith(client.getOOMEvent(), Code.INTERNAL);
  await rejectsWith(client.listProcesses('c1'), Code.INTERNAL);
  client.close();
});

test('a missing exit time is refused, and max_len is capped at 1 MiB', async () => {
  let asked = 0;
  const { client } = fake({
    waitProcess: async () => ({ exitStatus: 0 }),
    readStdout: async (req) => {
      asked = req.maxLen;
      return { data: Buffer.alloc(1), eof: false };
    },
  });
  await rejectsWith(client.waitProcess('c1', ''), Code.INTERNAL, /exited_at/);
  await client.readStdout('c1', '', 64 << 20);
  assert.equal(asked, 1 << 20);
  await rejectsWith(client.readStdout('c1', '', 0), Code.INVALID_ARGUMENT);
  client.close();
});

test('agent errors keep their code and say which call failed', async () => {
  const { client } = fake({
    startContainer: async () => { throw new HakoError(Code.NOT_FOUND, 'container c9 not found'); },
  });
  await rejectsWith(client.startContainer('c9'), Code.NOT_FOUND, /^agent StartContainer: container c9 not found$/);
  await rejectsWith(client.pauseContainer('c9'), Code.UNIMPLEMENTED);
  client.close();
});

test('ordinary calls time out; long polls do not, but are cancellable', async () => {
  const { client } = fake({ startContainer: never, waitProcess: never, readStdout: never }, 100);
  await rejectsWith(client.startContainer('c1'), Code.DEADLINE_EXCEEDED, /StartContainer/);
  const ac = new AbortController();
  const wait = client.waitProcess('c1', '', { signal: ac.signal });
  const read = client.readStdout('c1', '', 10, { signal: ac.signal });
  const outcome = await Promise.race([wait.then(() => 'done', () => 'failed'), new Promise((r) => setTimeout(() => r('pending'), 300))]);
  assert.equal(outcome, 'pending', 'WaitProcess outlives the default call timeout');
  ac.abort();
  await rejectsWith(wait, Code.CANCELLED);
  await rejectsWith(read, Code.CANCELLED);
  client.close();
});

test('every pending call fails UNAVAILABLE when the channel closes, and later calls too', async () => {
  const { client, guestEnd } = fake({ waitProcess: never, getOOMEvent: never });
  const closed = new Promise<HakoError>((r) => client.onClose(r));
  const wait = client.waitProcess('c1', '');
  const oom = client.getOOMEvent();
  await new Promise((r) => setTimeout(r, 20));
  guestEnd.destroy();
  await rejectsWith(wait, Code.UNAVAILABLE);
  await rejectsWith(oom, Code.UNAVAILABLE);
  assert.equal((await closed).code, Code.UNAVAILABLE);
  assert.ok(client.closed);
  await rejectsWith(client.check(), Code.UNAVAILABLE);
});

test('waitReady retries Check until the agent answers', async () => {
  let calls = 0;
  const { client } = fake({
    check: async () => {
      calls++;
      if (calls < 3) return never();
      return { agentVersion: '0.1.0' };
    },
  });
  const r = await client.waitReady({ timeoutMs: 5_000, attemptTimeoutMs: 50 });
  assert.equal(r.agentVersion, '0.1.0');
  assert.equal(r.attempts, 3);
  await rejectsWith(fake({ check: never }).client.waitReady({ timeoutMs: 200, attemptTimeoutMs: 50 }), Code.DEADLINE_EXCEEDED);
  client.close();
});

test('oversized spec JSON is refused before it is sent', async () => {
  const { client } = fake({ createContainer: async () => ({}) });
  await rejectsWith(client.createContainer({ containerId: 'c1', spec: new Uint8Array(3 << 20), stdin: false, terminal: false }), Code.INVALID_ARGUMENT);
  await client.createContainer({ containerId: 'c1', spec: { ociVersion: '1.0.2' }, stdin: false, terminal: false });
  client.close();
});
