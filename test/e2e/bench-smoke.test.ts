// Smoke pass of the benchmark harness (bench/): one run of every suite against real containerd,
// hako in all three modes, checking complete, well-formed output and that nothing is left behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarize } from '../../bench/lib/stats.js';
import { agentSplit, bootPhases, parseMarks } from '../../bench/suites/boot-marks.js';
import { parseElapsed } from '../../bench/suites/io.js';
import { isShimFor } from '../../bench/lib/ctr.js';
import { guestPhases, parseGuestConsole } from '../../bench/lib/guest-console.js';
import type { Results } from '../../bench/lib/results.js';
import { HAKO_MODES, hakoRow, hakoRunRow, parseHakoModes, rowLabel } from '../../bench/lib/hako-modes.js';
import { DROP_IN, MARKER, dropInText } from '../../bench/lib/drop-in.js';
import { PIDFILE } from '../../bench/lib/pool-daemon.js';
import { parseFactoryInit } from '../../bench/lib/mode-session.js';
import { countSources, sourceMismatch } from '../../bench/lib/vm-source.js';
import { bootPath, CLONE_SPLIT_NOTE } from '../../bench/suites/hako-run.js';
import { parseConfig } from '../../src/config/index.js';
import { parseMasqRules } from '../../bench/lib/cni-leftovers.js';
import { netScripts } from '../../bench/lib/net-scripts.js';
import { mibPerSecond } from '../../bench/lib/tcp-probe.js';
import { percentile } from '../../bench/lib/stats.js';

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

test('bench helpers: hako modes, rows, the drop-in, VM sources, boot path per mode', () => {
  assert.deepEqual(parseHakoModes('pool, cold'), ['cold', 'pool'], 'kept in table order');
  assert.throws(() => parseHakoModes('warm'), /unknown mode warm/);
  assert.throws(() => parseHakoModes(''), /at least one/);
  assert.deepEqual([rowLabel('runc'), rowLabel(hakoRow('template')), rowLabel(hakoRunRow('pool'))], ['runc', 'hako template', 'hako run pool']);
  // The drop-in is hako configuration: cold turns the factory off, the others on.
  for (const mode of HAKO_MODES) {
    const text = dropInText(mode);
    assert.ok(text.startsWith(MARKER));
    assert.equal(parseConfig(text, 'drop-in').factory.template, mode !== 'cold');
  }
  assert.deepEqual(parseFactoryInit('template 9abfcf1cc9dd built in 13.2s: /run/hako/factory/templates/9abf\n'), { built: true, line: 'template 9abfcf1cc9dd built in 13.2s: /run/hako/factory/templates/9abf' });
  assert.equal(parseFactoryInit('template 9abfcf1cc9dd is ready (built 2026-12-02T14:15:36.907Z): /run/x\n').built, false);
  const counts = countSources(['pool', 'pool', 'template', undefined]);
  assert.deepEqual(counts, { pool: 2, template: 1, unknown: 1 });
  assert.match(sourceMismatch('pool', counts) ?? '', /1 of 4 VMs did not come from pool: template 1/);
  assert.equal(sourceMismatch('pool', { pool: 3, unknown: 1 }), undefined);
  const line = (mark: string, ms: number, extra = ''): string => `{"time":"${new Date(5_000 + ms).toISOString()}","msg":"timing","mark":"${mark}","ms":${ms}${extra}}`;
  const clone = parseMarks([line('template-ready', 5), line('qemu-spawn', 10), line('qmp-ready', 150), line('state-loaded', 200),
    line('agent-ready', 400, ',"vmSource":"template","guestUptimeAtAgentStartMs":6000')].join('\n'));
  assert.equal(clone[4]!.vmSource, 'template');
  const cold = parseMarks([line('qemu-spawn', 10), line('qmp-ready', 150), line('agent-ready', 4000, ',"vmSource":"cold","guestUptimeAtAgentStartMs":2500')].join('\n'));
  const runs = [{ marks: clone, spawnEpochMs: 4_800, exitEpochMs: 5_500 }, { marks: cold, spawnEpochMs: 4_800, exitEpochMs: 9_500 }];
  const tb = bootPath('template', runs, countSources(['template', 'cold']));
  assert.ok(tb.ok);
  assert.equal(tb.runs, 1, 'only the runs whose VM came from the mode');
  assert.deepEqual(tb.agentSplit, []);
  assert.equal(tb.agentSplitNote, CLONE_SPLIT_NOTE);
  assert.ok(tb.phases.some((p) => p.phase === 'qmp-ready → state-loaded'));
  const cb = bootPath('cold', runs, countSources(['template', 'cold']));
  assert.ok(cb.ok && cb.agentSplit.length === 2 && cb.agentSplitNote === undefined);
  assert.equal(bootPath('pool', runs, {}).ok, false);
});

test('bench helpers: network suite (masquerade rules, rates, percentiles, container scripts)', () => {
  const rules = parseMasqRules([
    '-P POSTROUTING ACCEPT',
    '-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
    '-A POSTROUTING -s 10.213.0.15/32 -m comment --comment "name: \\"hako\\" id: \\"default-hb-runc-net-1\\"" -j CNI-04401b6ed782235590412aa3',
    '-A POSTROUTING -s 10.99.0.2/32 -m comment --comment "name: \\"other\\" id: \\"default-hb-x\\"" -j CNI-0123456789abcdef01234567',
  ].join('\n'), 'hako');
  assert.deepEqual(rules, [{ source: '10.213.0.15/32', comment: 'name: "hako" id: "default-hb-runc-net-1"', cniId: 'default-hb-runc-net-1', chain: 'CNI-04401b6ed782235590412aa3' }]);
  // Two streams side by side: all bytes over the first to the last byte of either.
  assert.equal(mibPerSecond([{ bytes: 1048576, firstMs: 0, lastMs: 1000 }, { bytes: 1048576, firstMs: 500, lastMs: 2000 }]), 1);
  assert.equal(percentile([5, 1, 4, 2, 3, 6, 7, 8, 9, 10], 90), 9);
  assert.equal(percentile([3], 90), 3);
  assert.equal(netScripts('runc').form, 'exec');
  assert.equal(netScripts('runsc').form, 'copy');
  assert.match(netScripts('hako').sender(5101, 16), /^exec nc -l -p 5101 -e dd if=\/dev\/zero bs=65536 count=16/);
});

test('bench --smoke runs every suite, hako in every mode, and writes JSON, markdown and SVG', { timeout: 20 * 60_000 }, () => {
  assert.equal(process.getuid?.(), 0, 'the benchmark needs root (containerd, mounts, QEMU)');
  const out = mkdtempSync(join(tmpdir(), 'hako-bench-smoke-'));
  try {
    const r = spawnSync(process.execPath, [join(root, 'dist', 'bench', 'main.js'), '--smoke', '--no-kernel-build', `--out=${out}`], {
      encoding: 'utf8',
      timeout: 19 * 60_000,
      killSignal: 'SIGTERM',
    });
    assert.equal(r.status, 0, `bench --smoke failed (status ${r.status}, signal ${r.signal}):\n${r.stderr.slice(-3000)}`);
    const files = readdirSync(out).sort();
    const base = files.find((f) => f.endsWith('-smoke.json'));
    assert.ok(base, `no <date>-smoke.json in ${files.join(', ')}`);
    const results = JSON.parse(readFileSync(join(out, base), 'utf8')) as Results;
    assert.equal(results.format, 'hako-bench/2');
    assert.equal(results.machine.cores > 0, true);
    assert.ok(results.machine.memoryMiB > 0);
    assert.match(results.machine.versions.containerd ?? '', /containerd/);
    assert.ok(results.machine.accelerator.reason.length > 0);
    // A smoke run covers every hako mode, each set up (or saying why not).
    assert.deepEqual(results.hakoModes, [...HAKO_MODES]);
    for (const mode of HAKO_MODES) assert.ok(results.modeSetup.some((s) => s.mode === mode), `no setup recorded for hako ${mode}`);
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
    const present = (what: string, m: { ok: boolean; notMeasured?: string } | undefined): void => {
      assert.ok(m !== undefined, `${what} missing from the results`);
      if (!m.ok) assert.ok((m.notMeasured ?? '').length > 0, `${what} not measured without a reason`);
    };
    for (const suite of ['start', 'exec', 'memory'] as const) {
      present(`${suite}/runsc`, results[suite].runsc);
      for (const mode of HAKO_MODES) present(`${suite}/${hakoRow(mode)}`, results[suite][hakoRow(mode)]);
    }
    for (const mode of HAKO_MODES) {
      present(`start/${hakoRunRow(mode)}`, results.start[hakoRunRow(mode)]);
      present(`bootPath/${mode}`, results.bootPath[mode]);
      present(`rpc/${mode}`, results.rpc[mode]);
      const run = results.start[hakoRunRow(mode)];
      if (run?.ok) assert.ok(run.vmSources !== undefined, `hako run ${mode}: where its VMs came from is not recorded`);
      const boot = results.bootPath[mode];
      if (boot?.ok) assert.equal(boot.agentSplit.length > 0 || boot.agentSplitNote !== undefined, true);
    }
    present('io/runsc', results.io.runsc);
    present('io/hako-template', results.io['hako-template']);
    present('density/hako-template', results.density['hako-template']);
    // The network suite: runc measured both ways and with networking on and off; hako (template in a smoke run) present.
    const net = results.network.runc;
    assert.ok(net?.ok && net.toHostMiBps['1']!.median > 0 && net.fromHostMiBps['1']!.median > 0 && net.rttMs.n > 0, `runc network: ${net && !net.ok ? net.notMeasured : 'incomplete'}`);
    assert.ok(results.netStart.runc?.ok, 'runc start with networking not measured');
    present('network/runsc', results.network.runsc);
    for (const mode of HAKO_MODES) {
      present(`network/${hakoRow(mode)}`, results.network[hakoRow(mode)]);
      present(`netStart/${hakoRow(mode)}`, results.netStart[hakoRow(mode)]);
      present(`netStart/${hakoRunRow(mode)}`, results.netStart[hakoRunRow(mode)]);
    }
    const pool = results.memory['hako-pool'];
    if (pool?.ok) assert.ok(pool.poolOverhead !== undefined && pool.poolOverhead.pssKiB > 0, 'the pool row reports the pool daemon apart');
    const md = readFileSync(join(out, base.replace(/\.json$/, '.md')), 'utf8');
    assert.match(md, /\| runc \(`ctr run --rm … true`\) \| \d/);
    for (const mode of HAKO_MODES) assert.match(md, new RegExp(`\\| hako ${mode} \\(\`ctr run --rm … true\`\\) \\|`));
    assert.match(md, /### Memory per idle container/);
    assert.match(md, /### hako modes/);
    assert.match(md, /### Agent RPC round trip/);
    assert.match(md, /### Network: TCP throughput over the CNI bridge/);
    assert.match(md, /### Start latency with networking on and off/);
    const svg = readFileSync(join(out, base.replace(/\.json$/, '.svg')), 'utf8');
    assert.match(svg, /^<\?xml[^]*<svg [^]*<\/svg>\s*$/);
    // No mode outlives the run: no drop-in, no pool daemon, no rpc sandbox.
    assert.equal(existsSync(DROP_IN), false, `${DROP_IN} was left behind`);
    assert.equal(existsSync(PIDFILE), false, `${PIDFILE} was left behind`);
    for (const s of results.modeSetup) {
      if (s.pool !== undefined) assert.equal(existsSync(`/proc/${s.pool.daemonPid}/cmdline`) && readFileSync(`/proc/${s.pool.daemonPid}/cmdline`, 'utf8').includes('serve'), false, `pool daemon ${s.pool.daemonPid} still runs`);
    }
    assert.deepEqual((existsSync('/run/hako/sandboxes') ? readdirSync('/run/hako/sandboxes') : []).filter((id) => id.startsWith('hb-')), [], 'benchmark sandboxes left behind');
    // ctr's CNI DEL leaves the bridge plugin's masquerade rule: the harness removes those of its containers.
    const nat = spawnSync('iptables', ['-t', 'nat', '-S', 'POSTROUTING'], { encoding: 'utf8' });
    assert.deepEqual(parseMasqRules(nat.stdout ?? '', 'hako').filter((m) => m.cniId.startsWith('default-hb-')), [], 'masquerade rules of benchmark containers left behind');
    // The run must leave no benchmark containers behind.
    const left = spawnSync('ctr', ['container', 'ls', '-q'], { encoding: 'utf8' });
    assert.equal(left.stdout.split('\n').filter((id) => id.startsWith('hb-')).join(' '), '');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
