// Unit tests for PipeGate on a real child's pipe: every byte arrives with pacing, the pipe is read
// in larger chunks, and a hold stops the flow until release.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PipeGate } from './pipe-gate.js';

function stream(bytes: number, paceMs: number, onGate?: (g: PipeGate) => void): Promise<{ total: number; events: number }> {
  // Many small writes, as a chatty process makes them.
  const child = spawn('sh', ['-c', `head -c ${bytes} /dev/zero | dd bs=512 2>/dev/null`], { stdio: ['ignore', 'pipe', 'ignore'] });
  const gate = new PipeGate(child.stdout, paceMs);
  onGate?.(gate);
  let total = 0;
  let events = 0;
  child.stdout.on('data', (c: Buffer) => {
    total += c.length;
    events++;
    gate.chunk();
  });
  return new Promise((resolve) => child.stdout.once('end', () => {
    gate.close();
    resolve({ total, events });
  }));
}

test('a paced pipe delivers every byte and ends, in fewer, larger chunks', { timeout: 30_000 }, async () => {
  const paced = await stream(2_000_000, 5);
  assert.equal(paced.total, 2_000_000);
  const unpaced = await stream(2_000_000, 0);
  assert.equal(unpaced.total, 2_000_000);
  assert.ok(paced.events <= unpaced.events, `paced ${paced.events} chunks, unpaced ${unpaced.events}`);
  assert.ok(paced.total / paced.events > 16 * 1024, `paced chunks average ${Math.round(paced.total / paced.events)} bytes`);
});

test('hold stops the flow across pacing until release', { timeout: 30_000 }, async () => {
  let gate!: PipeGate;
  let released = false;
  let early = 0;
  const done = stream(20_000_000, 2, (g) => {
    gate = g;
  });
  await new Promise((r) => setTimeout(r, 50));
  gate.hold();
  let seen = 0;
  (gate as unknown as { stream: NodeJS.ReadableStream }).stream.on('data', (c: Buffer) => (seen += c.length));
  // Data already queued may still arrive; after that nothing until release.
  await new Promise((r) => setTimeout(r, 50));
  const probe = (gate as unknown as { stream: NodeJS.ReadableStream }).stream;
  probe.on('data', () => {
    if (!released) early++;
  });
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(seen < 20_000_000, 'the stream was still running when held');
  released = true;
  gate.release();
  const r = await done;
  assert.equal(r.total, 20_000_000);
  assert.equal(early, 0, 'no data while held');
});
