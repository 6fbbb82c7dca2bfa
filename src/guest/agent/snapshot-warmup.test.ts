// Unit test of the snapshot warm-up: it serves its Check and round-trips every Agent message,
// and leaves no timer or handle behind (the snapshot is taken once the event loop is empty).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmUp } from './snapshot-warmup.js';

const count = (names: string[]): Map<string, number> => {
  const m = new Map<string, number>();
  for (const n of names) m.set(n, (m.get(n) ?? 0) + 1);
  return m;
};

test('warmUp completes and leaves no active resources behind', async () => {
  const before = count(process.getActiveResourcesInfo());
  await warmUp();
  await new Promise((r) => setImmediate(r));
  // The test runner's own resources come and go; the warm-up must add none of any kind.
  for (const [name, n] of count(process.getActiveResourcesInfo())) assert.ok(n <= (before.get(name) ?? 0), `warmUp left a ${name} behind`);
});
