// Unit tests for a container's own cgroup, on a plain directory standing in for cgroupfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTAINER_CPU_WEIGHT, makeCgroup } from './container-cgroup.js';

async function fakeCgroup(controllers: string): Promise<{ dir: string; done: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'hako-cg-'));
  const dir = join(root, 'c1');
  await mkdir(dir);
  await writeFile(join(dir, 'cgroup.controllers'), controllers);
  return { dir, done: () => rm(root, { recursive: true, force: true }) };
}

test('makeCgroup delegates every controller and lowers the CPU weight below the agent\'s', async () => {
  const { dir, done } = await fakeCgroup('cpuset cpu io memory pids\n');
  try {
    await makeCgroup(dir);
    assert.equal(await readFile(join(dir, 'cgroup.subtree_control'), 'utf8'), '+cpuset +cpu +io +memory +pids');
    assert.equal(await readFile(join(dir, 'cpu.weight'), 'utf8'), String(CONTAINER_CPU_WEIGHT));
    assert.ok(CONTAINER_CPU_WEIGHT < 100, 'below the default weight of the root cgroup\'s nice-0 agent');
  } finally {
    await done();
  }
});

test('makeCgroup leaves cpu.weight alone without the cpu controller', async () => {
  const { dir, done } = await fakeCgroup('memory pids\n');
  try {
    await makeCgroup(dir);
    await assert.rejects(readFile(join(dir, 'cpu.weight'), 'utf8'), { code: 'ENOENT' });
  } finally {
    await done();
  }
});
