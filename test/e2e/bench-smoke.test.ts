// Smoke pass of the benchmark harness (bench/): one run of every suite against real
// containerd, checking that the harness produces complete, well-formed output.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarize } from '../../bench/lib/stats.js';
import { agentSplit, bootPhases, parseMarks } from '../../bench/suites/boot-marks.js';
import { parseElapsed } from '../../bench/suites/io.js';
import { isShimFor } from '../../bench/lib/ctr.js';
import { guestPhases, parseGuestConsole } from '../../bench/lib/guest-console.js';
import type { Results } from '../../bench/lib/results.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('bench helpers: statistics, timing marks, dd timing, shim matching', () => {
  const s = summarize([5, 1, 3, 2]);
  assert.deepEqual([s.n, s.median, s.min, s.max], [4, 2.5, 1, 5]);
  assert.equal(summarize([7]).median, 7);
  assert.throws(() => summarize([]));
  const t = (ms: number): string => new Date(1_000_000 + ms).toISOString();
  const marks = parseMarks(`noise\n{"time":"${t(300)}","msg":"timing","mark":"qemu","ms":100}\n` +
    `{"time":"${t(550)}","msg":"timing","mark":"agent","ms":350,"guestUptimeMs":900}\n{bad json\n`);
  assert.deepEqual(marks.map((m) => [m.name, m.ms, m.epochMs, m.fields]), [['qemu', 100, 1_000_300, undefined], ['agent', 350, 1_000_550, { guestUptimeMs: 900 }]]);
  const second = [{ name: 'qemu', ms: 120, epochMs: 2_000_320 }, { name: 'agent', ms: 330, epochMs: 2_000_530 }];
  const phases = bootPhases([
    { marks, spawnEpochMs: 1_000_000, exitEpochMs: 1_000_700 },
    { marks: second, spawnEpochMs: 2_000_000, exitEpochMs: 2_000_600 },
  ]);
  assert.deepEqual(phases.map((p) => [p.phase, p.ms.median]), [
    ['process start → sandbox clock starts (node + CLI startup)', 200],
    ['sandbox clock starts → qemu', 110],
    ['qemu → agent', 230],
    ['agent → host process exit', 110],
  ]);
  const split = agentSplit([{ spawnEpochMs: 0, exitEpochMs: 0, marks: [
    { name: 'qmp-ready', ms: 500 },
    { name: 'agent-ready', ms: 4500, fields: { guestUptimeAtAgentStartMs: 2000, guestUptimeMs: 3500 } },
  ] }]);
  assert.deepEqual(split.map((p) => p.ms.median), [2000, 2000]);
  assert.equal(parseElapsed('256+0 records in\n256+0 records out\n1.25\n'), 1.25);
  assert.equal(parseElapsed('no number'), undefined);
  const g = parseGuestConsole('\u001bc garbage\n{"msg":"hako-agent ready","nodeStartUptimeMs":2000,"mainStartUptimeMs":5000,"readyUptimeMs":5400}\n' +
    '{"msg":"container started","ms":900}\n{"msg":"container started","ms":1}\n{not json\n');
  assert.deepEqual(g, { nodeStartUptimeMs: 2000, mainStartUptimeMs: 5000, readyUptimeMs: 5400, containerStartMs: 900 });
  assert.deepEqual(Object.values(guestPhases([g])), [[2000], [3000], [400], [900]]);
  assert.ok(isShimFor(['/usr/bin/containerd-shim-runc-v2', '-namespace', 'default', '-id', 'c1', '-address', 'x'], 'c1'));
  assert.ok(isShimFor(['/usr/bin/node', '/work/main/dist/src/shim/main.js', '-namespace', 'default', '-id', 'c1', '-address', 'x'], 'c1'));
  assert.ok(!isShimFor(['/usr/bin/containerd-shim-runc-v2', '-namespace', 'default', '-id', 'c10', '-address', 'x'], 'c1'));
  assert.ok(!isShimFor(['sleep', '-id', 'c1'], 'c1'));
});

test('bench --smoke runs every suite and writes JSON, markdown and SVG', { timeout: 12 * 60_000 }, () => {
  assert.equal(process.getuid?.(), 0, 'the benchmark needs root (containerd, mounts, QEMU)');
  const out = mkdtempSync(join(tmpdir(), 'hako-bench-smoke-'));
  try {
    const r = spawnSync(process.execPath, [join(root, 'dist', 'bench', 'main.js'), '--smoke', '--no-kernel-build', `--out=${out}`], {
      encoding: 'utf8',
      timeout: 11 * 60_000,
      killSignal: 'SIGTERM',
    });
    assert.equal(r.status, 0, `bench --smoke failed (status ${r.status}, signal ${r.signal}):\n${r.stderr.slice(-3000)}`);
    const files = readdirSync(out).sort();
    const base = files.find((f) => f.endsWith('-smoke.json'));
    assert.ok(base, `no <date>-smoke.json in ${files.join(', ')}`);
    const results = JSON.parse(readFileSync(join(out, base), 'utf8')) as Results;
    assert.equal(results.format, 'hako-bench/1');
    assert.equal(results.machine.cores > 0, true);
    assert.ok(results.machine.memoryMiB > 0);
    assert.match(results.machine.versions.containerd ?? '', /containerd/);
    assert.ok(results.machine.accelerator.reason.length > 0);
    // runc is the baseline: when it cannot be measured the harness (or containerd) is broken.
    for (const suite of ['start', 'exec', 'memory', 'io'] as const) {
      const runc = results[suite].runc;
      assert.ok(runc?.ok, `runc ${suite} not measured: ${runc && !runc.ok ? runc.notMeasured : 'missing'}`);
    }
    assert.ok(results.memory.runc?.ok && results.memory.runc.perContainerKiB > 0);
    // The shim is one of the processes counted, for every runtime that was measured.
    for (const [rt, m] of Object.entries(results.memory)) {
      if (m?.ok) assert.ok(Object.keys(m.byName).some((n) => /shim/.test(n)), `${rt}: no shim among ${Object.keys(m.byName).join(', ')}`);
    }
    // Every other figure is either measured or says why not; nothing is silently absent.
    for (const suite of ['start', 'exec', 'memory', 'io'] as const) {
      for (const rt of ['runsc', 'hako'] as const) {
        const m = results[suite][rt];
        assert.ok(m !== undefined, `${suite}/${rt} missing from the results`);
        if (!m.ok) assert.ok(m.notMeasured.length > 0, `${suite}/${rt} not measured without a reason`);
      }
    }
    assert.ok(results.start['hako-run'] !== undefined && results.bootPath !== undefined && results.density.hako !== undefined);
    const md = readFileSync(join(out, base.replace(/\.json$/, '.md')), 'utf8');
    assert.match(md, /\| runc \(`ctr run --rm … true`\) \| \d/);
    assert.match(md, /### Memory per idle container/);
    const svg = readFileSync(join(out, base.replace(/\.json$/, '.svg')), 'utf8');
    assert.match(svg, /^<\?xml[^]*<svg [^]*<\/svg>\s*$/);
    // The run must leave no benchmark containers behind.
    const left = spawnSync('ctr', ['container', 'ls', '-q'], { encoding: 'utf8' });
    assert.equal(left.stdout.split('\n').filter((id) => id.startsWith('hb-')).join(' '), '');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
