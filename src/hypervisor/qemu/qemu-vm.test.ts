// Unit tests of explainExit: how a QEMU exit, its last SHUTDOWN event and a stop in progress
// become a VmExit reason. The real-process paths are covered by test/integration/qemu-driver.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explainExit } from './qemu-vm.js';

test('a stop in progress wins, naming the step that worked', () => {
  const e = explainExit({ code: 0, signal: null }, { guest: false, reason: 'host-qmp-quit' }, 'quit', '');
  assert.deepEqual(e, { code: 0, signal: null, reason: 'stop', stoppedBy: 'quit', detail: 'qemu stopped by QMP quit (exited with code 0)' });
  assert.equal(explainExit({ code: null, signal: 'SIGKILL' }, undefined, 'sigkill', '').detail, 'qemu stopped by SIGKILL (killed by SIGKILL)');
});

test('guest power-off, reboot and panic', () => {
  assert.equal(explainExit({ code: 0, signal: null }, { guest: true, reason: 'guest-shutdown' }, undefined, '').reason, 'guest-shutdown');
  assert.equal(explainExit({ code: 0, signal: null }, { guest: true, reason: 'guest-reset' }, undefined, '').reason, 'guest-reset');
  assert.equal(explainExit({ code: 0, signal: null }, { guest: true, reason: 'guest-panic' }, undefined, '').reason, 'guest-reset');
});

test('a quit or signal from someone else is host-quit', () => {
  const e = explainExit({ code: 0, signal: null }, { guest: false, reason: 'host-signal' }, undefined, '');
  assert.equal(e.reason, 'host-quit');
  assert.match(e.detail, /host-signal/);
  assert.equal(explainExit({ code: 0, signal: null }, undefined, undefined, '').reason, 'host-quit');
});

test('SIGKILL is killed; SIGSEGV and error exits are crashed with the log tail', () => {
  const k = explainExit({ code: null, signal: 'SIGKILL' }, undefined, undefined, 'ignored tail');
  assert.equal(k.reason, 'killed');
  assert.equal(k.detail, 'qemu killed by SIGKILL');
  const s = explainExit({ code: null, signal: 'SIGSEGV' }, undefined, undefined, 'boom');
  assert.equal(s.reason, 'crashed');
  assert.equal(s.detail, 'qemu killed by SIGSEGV: boom');
  const c = explainExit({ code: 1, signal: null }, undefined, undefined, 'qemu-system-x86_64: error');
  assert.deepEqual(c, { code: 1, signal: null, reason: 'crashed', detail: 'qemu exited with code 1: qemu-system-x86_64: error' });
});

test('an adopted QEMU (exit status unknown) is explained by its shutdown event, or as killed', () => {
  const quit = explainExit({ code: null, signal: null }, { guest: true, reason: 'guest-shutdown' }, undefined, '');
  assert.equal(quit.reason, 'guest-shutdown');
  const gone = explainExit({ code: null, signal: null }, undefined, undefined, 'tail');
  assert.equal(gone.reason, 'killed');
  assert.match(gone.detail, /exit status unknown: not our child.*without a shutdown event: tail/);
  assert.match(explainExit({ code: null, signal: null }, undefined, 'sigkill', '').detail, /stopped by SIGKILL \(ended \(exit status unknown/);
});
