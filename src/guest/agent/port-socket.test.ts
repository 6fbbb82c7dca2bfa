// Unit tests for PortSocketChannel on a FIFO standing in for the virtio port (the real port is
// covered by test/integration/agent.test.ts): bytes reach the session, a destroyed session reopens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { nullLogger } from '../../log/index.js';
import { pipeWrap, PortSocketChannel } from './port-socket.js';

test('this Node has the pipe binding the agent drives its port with', () => {
  assert.ok(pipeWrap(), 'process.binding("pipe_wrap") is gone: the agent falls back to thread-pool reads (slower)');
});

test('bytes written to the port reach the session; a destroyed session is replaced by a new one', { timeout: 10_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hako-port-'));
  const fifo = join(dir, 'port');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const sessions: Duplex[] = [];
  let notify: (() => void) | null = null;
  const ch = PortSocketChannel.open(fifo, {
    log: nullLogger,
    onSession: (s) => {
      sessions.push(s);
      notify?.();
    },
    onFatal: (err) => assert.fail(err),
  });
  assert.ok(ch);
  const writer = openSync(fifo, 'w');
  try {
    assert.equal(sessions.length, 1);
    const got = new Promise<Buffer>((resolve) => sessions[0]!.once('data', resolve));
    writeSync(writer, 'hello');
    assert.equal((await got).toString(), 'hello');
    assert.equal(ch.sessionCount, 1);
    const next = new Promise<void>((resolve) => (notify = resolve));
    sessions[0]!.destroy();
    await next;
    assert.equal(sessions.length, 2, 'the port was opened again');
    const again = new Promise<Buffer>((resolve) => sessions[1]!.once('data', resolve));
    writeSync(writer, 'again');
    assert.equal((await again).toString(), 'again');
    assert.equal(ch.sessionCount, 2);
  } finally {
    ch.close();
    closeSync(writer);
    rmSync(dir, { recursive: true, force: true });
  }
});
