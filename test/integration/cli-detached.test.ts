// Detached containers against real QEMU: `hako run -d` returns while the VM keeps running,
// `hako ps/exec/kill/rm` reach it through its owner, and signals end it with 128+N.

import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { BOOT_MS, assertClean, hako, ourQemus, prefix, stateOf, sweep, waitFor } from './cli-harness.js';

afterEach(async () => {
  await sweep();
  assertClean('after test');
});

test('run -d, ps, exec (status, stdin, env), kill with a trapped signal, rm', { timeout: BOOT_MS * 3 }, async () => {
  const id = `${prefix}-det`;
  const run = await hako(['run', '-d', '--name', id, '-e', 'MARK=detached', 'busybox', '--', 'sh', '-c',
    'trap "exit 3" TERM; while true; do sleep 1; done']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `${id}\n`, 'prints the id');
  assert.doesNotMatch(run.stderr, /"level"|error/i, 'no log lines or errors on stderr by default');
  assert.equal(ourQemus().length, 1, 'the VM keeps running after hako run -d returned');

  const ps = await hako(['ps']);
  assert.equal(ps.code, 0);
  assert.match(ps.stdout, new RegExp(`^${id}\\s+busybox\\s+.*\\brunning\\b`, 'm'));

  const ex = await hako(['exec', id, '--', 'sh', '-c', 'echo "$MARK $$"; ps | grep -c "sleep\\|sh -c"; exit 5']);
  assert.equal(ex.code, 5, ex.stderr);
  const [mark] = ex.stdout.split('\n');
  assert.match(mark!, /^detached \d+$/, 'exec sees the container environment');
  const byPrefix = await hako(['exec', '-i', id.slice(0, -1), 'cat'], { input: 'through stdin\n' });
  assert.equal(byPrefix.code, 0, byPrefix.stderr);
  assert.equal(byPrefix.stdout, 'through stdin\n', 'exec -i by unique id prefix');
  const missing = await hako(['exec', id, '--', 'no-such-cmd']);
  assert.equal(missing.code, 127, 'a missing command in exec is 127');

  const rmRunning = await hako(['rm', id]);
  assert.notEqual(rmRunning.code, 0);
  assert.match(rmRunning.stderr, /is running.*rm -f/);

  const kill = await hako(['kill', id, 'TERM']);
  assert.equal(kill.code, 0, kill.stderr);
  assert.ok(await waitFor(() => stateOf(id)?.status === 'stopped', 60_000), 'the container stops after SIGTERM');
  assert.equal(stateOf(id)?.containers[0]?.exitStatus, 3, 'the trap ran: exit 3');
  assert.deepEqual(ourQemus(), [], 'the VM is gone once the container exited');
  const ps2 = await hako(['ps']);
  assert.match(ps2.stdout, new RegExp(`^${id}\\s.*exited \\(3\\)`, 'm'));
  const exStopped = await hako(['exec', id, '--', 'true']);
  assert.equal(exStopped.code, 125);
  assert.match(exStopped.stderr, /is not running/);

  const rm = await hako(['rm', id]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(rm.stdout, `${id}\n`);
});

test('kill KILL gives 128+9; rm -f removes a running container', { timeout: BOOT_MS * 3 }, async () => {
  const a = `${prefix}-k`;
  const b = `${prefix}-f`;
  const [ra, rb] = await Promise.all([
    hako(['run', '-d', '--name', a, 'busybox', '--', 'sleep', '1000']),
    hako(['run', '-d', '--name', b, 'busybox', '--', 'sleep', '1000']),
  ]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);

  assert.equal((await hako(['kill', a, '9'])).code, 0);
  assert.ok(await waitFor(() => stateOf(a)?.status === 'stopped', 60_000));
  assert.equal(stateOf(a)?.containers[0]?.exitStatus, 128 + 9);
  assert.equal((await hako(['rm', a])).code, 0);

  const rmf = await hako(['rm', '-f', b]);
  assert.equal(rmf.code, 0, rmf.stderr);
  assert.equal(stateOf(b), undefined);
  const killGone = await hako(['kill', b]);
  assert.equal(killGone.code, 125);
  assert.match(killGone.stderr, /no such container/);
});
