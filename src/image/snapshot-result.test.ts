// Unit tests for judging the snapshot-building guest's files: each way the build or its check can
// fail is a reason to fall back to the plain bundle, and only a clean pass counts as built.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { judgeSnapshot, readSnapshotFiles, SNAPSHOT_FILE, type SnapshotFiles } from './snapshot-result.js';

const pass: SnapshotFiles = {
  buildStatus: '0\n', checkStatus: '0\n', checkJson: '{"ok":true,"agentVersion":"0.1.0","methods":28}\n', buildLog: '', snapshotBytes: 5_000_000,
};

test('judgeSnapshot accepts only a clean build whose self-check passed', () => {
  assert.deepEqual(judgeSnapshot(pass, 1234), { built: true, bytes: 5_000_000, ms: 1234 });
});

test('judgeSnapshot says why a snapshot cannot be used, with the build log tail', () => {
  const cases: [Partial<SnapshotFiles>, RegExp][] = [
    [{ buildStatus: undefined }, /did not finish building/],
    [{ buildStatus: '1\n', buildLog: 'line1\nTypeError: boom\n' }, /--build-snapshot exited with status 1: line1 \| TypeError: boom/],
    [{ snapshotBytes: undefined }, /wrote no snapshot/],
    [{ snapshotBytes: 0 }, /wrote no snapshot/],
    [{ snapshotBytes: 65 * 1048576 }, /over the 67108864-byte limit/],
    [{ checkStatus: undefined }, /did not finish checking/],
    [{ checkStatus: '14\n', buildLog: 'Failed to load the startup snapshot' }, /could not start from the snapshot \(status 14\): Failed to load/],
    [{ checkJson: 'hello\n' }, /printed no JSON line \(got "hello"\)/],
    [{ checkJson: '{"ok":false}\n' }, /self-check failed: \{"ok":false\}/],
    [{ checkJson: '[1]\n' }, /self-check failed/],
  ];
  for (const [change, want] of cases) {
    const got = judgeSnapshot({ ...pass, ...change }, 1);
    assert.equal(got.built, false, JSON.stringify(change));
    assert.match((got as { reason: string }).reason, want);
  }
});

test('readSnapshotFiles reads what the guest left and leaves missing files undefined', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hako-snapshot-result-'));
  try {
    assert.deepEqual(await readSnapshotFiles(dir), {
      buildStatus: undefined, checkStatus: undefined, checkJson: undefined, buildLog: undefined, snapshotBytes: undefined,
    });
    await writeFile(join(dir, 'build.status'), '0\n');
    await writeFile(join(dir, 'check.status'), '0\n');
    await writeFile(join(dir, 'check.json'), pass.checkJson!);
    await writeFile(join(dir, 'build.log'), '');
    await writeFile(join(dir, SNAPSHOT_FILE), Buffer.alloc(4096));
    const files = await readSnapshotFiles(dir);
    assert.equal(files.snapshotBytes, 4096);
    assert.deepEqual(judgeSnapshot(files, 7), { built: true, bytes: 4096, ms: 7 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
