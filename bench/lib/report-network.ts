// The network suite's sections of the markdown report: TCP throughput both ways (one and two
// streams), echo round trips and connects, and start latency with networking on and off.

import { HAKO_MODES, hakoRunRow, rowLabel, ROW_KEYS } from './hako-modes.js';
import type { Results, StartKey } from './results.js';
import { cell, fmtMs, missing, times } from './report-format.js';
import { ratio, type Summary } from './stats.js';
import type { BootPhase } from './types.js';
import { formatSources } from './vm-source.js';
import { COPY_SCRIPTS, EXEC_SCRIPTS } from './net-scripts.js';

const rate = (s: Summary | undefined): string => (s === undefined ? '–' : `${s.median.toFixed(1)} (${s.min.toFixed(1)}–${s.max.toFixed(1)}, n=${s.n})`);
const ms2 = (x: number): string => (x >= 10 ? x.toFixed(1) : x.toFixed(2));

function throughputTable(r: Results): string[] {
  const base = r.network.runc?.ok ? r.network.runc : undefined;
  const out = ['### Network: TCP throughput over the CNI bridge (MiB/s, median (min–max, n); timed on the host, first to last byte)', '',
    '| runtime | stream MiB | container → host | container → host, 2 streams | host → container | host → container, 2 streams | × runc (→ host / ← host) | VMs from |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |'];
  for (const k of ROW_KEYS) {
    const v = r.network[k];
    if (v === undefined) continue;
    if (!v.ok) { out.push(missing(rowLabel(k), v, 8)); continue; }
    // Rates of the two forms of the container's programs measure different things: no ratio across them.
    const same = base !== undefined && base.scripts === v.scripts ? base : undefined;
    const vs = `${times(ratio(v.toHostMiBps['1']?.median, same?.toHostMiBps['1']?.median))} / ${times(ratio(v.fromHostMiBps['1']?.median, same?.fromHostMiBps['1']?.median))}`;
    out.push(`| ${rowLabel(k)} | ${v.streamMiB} | ${rate(v.toHostMiBps['1'])} | ${rate(v.toHostMiBps['2'])} | ${rate(v.fromHostMiBps['1'])} | ${rate(v.fromHostMiBps['2'])} | ${vs} | ${formatSources(v.vmSources)} |`);
  }
  return [...out, '', ...formLines(r),
    'Container → host: node connects to the container\'s address and reads into a 1 MiB buffer; host → container: node writes N bytes and stops the clock when the container closes ' +
    '(in the exec form from the reader\'s "ready" line, in the copy form from the connection). 2 streams: two such connections into the one container at once, aggregate rate.', ''];
}

/** formLines say which form of the container's programs each row used (bench/lib/net-scripts.ts). */
function formLines(r: Results): string[] {
  const by = new Map<string, string[]>();
  for (const k of ROW_KEYS) {
    const v = r.network[k];
    if (v?.ok) by.set(v.scripts, [...(by.get(v.scripts) ?? []), rowLabel(k)]);
  }
  const forms = { exec: EXEC_SCRIPTS, copy: COPY_SCRIPTS };
  const out = [...by].map(([form, rows]) => `- ${rows.join(', ')}: ${form} form: ${forms[form as keyof typeof forms].how}.`);
  if (by.has('copy')) out.push('- The copy form is bounded by busybox nc\'s own copy loop (a few KiB a system call), so its rates are not comparable with the exec form\'s: runsc needs it because a program nc execs gets a socket whose blocking calls fail with EAGAIN under runsc --network=host.');
  return out.length > 0 ? [...out, ''] : [];
}

function echoTable(r: Results): string[] {
  const base = r.network.runc?.ok ? r.network.runc.rttMs.median : undefined;
  const out = ['### Network: TCP round trips (the container runs an echo server; see the forms above)', '',
    '| runtime | message bytes | round trip median ms | p90 ms | min–max ms | n | × runc | connect (handshake) median ms | connect + first echo median ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const k of ROW_KEYS) {
    const v = r.network[k];
    if (v === undefined) continue;
    if (!v.ok) { out.push(missing(rowLabel(k), v, 9)); continue; }
    out.push(`| ${rowLabel(k)} | ${v.echoBytes} | ${ms2(v.rttMs.median)} | ${ms2(v.rttP90Ms)} | ${ms2(v.rttMs.min)}–${ms2(v.rttMs.max)} | ${v.rttMs.n} | ${times(ratio(v.rttMs.median, base))} | ${ms2(v.connectMs.median)} (n=${v.connectMs.n}) | ${ms2(v.firstEchoMs.median)} |`);
  }
  return [...out, '', 'Round trips are sequential on one connection, after warm-up. In the exec form a fresh connection\'s first echo includes `nc` forking and executing `cat` for it.', ''];
}

/** NET_START_KEYS orders the start rows: runc, runsc, hako per mode through ctr, then `hako run` per mode. */
const NET_START_KEYS: readonly StartKey[] = [...ROW_KEYS, ...HAKO_MODES.map(hakoRunRow)];

function startTable(r: Results): string[] {
  const runc = r.netStart.runc?.ok ? r.netStart.runc.network.ms.median : undefined;
  const out = ['### Start latency with networking on and off (runs interleaved)', '',
    '| runtime | with network: median ms (min–max, n) | without: median ms (min–max, n) | networking costs (difference of medians) ms | with network × runc | VMs from |',
    '| --- | ---: | ---: | ---: | ---: | --- |'];
  const hows = new Set<string>();
  for (const k of NET_START_KEYS) {
    const v = r.netStart[k];
    if (v === undefined) continue;
    const label = k.startsWith('hako-run-') ? `${rowLabel(k)} (\`hako run\`: default network / \`--network none\`)` : `${rowLabel(k)} (\`ctr run --rm --cni\` / \`ctr run --rm\`)`;
    if (!v.ok) { out.push(missing(label, v, 6)); continue; }
    const l = (s: Summary): string => `${fmtMs(s.median)} (${fmtMs(s.min)}–${fmtMs(s.max)}, n=${s.n})`;
    const fail = v.network.failures + v.none.failures > 0 ? ` (${v.network.failures + v.none.failures} failed)` : '';
    out.push(`| ${label} | ${l(v.network.ms)}${fail} | ${l(v.none.ms)} | ${fmtMs(v.network.ms.median - v.none.ms.median)} | ${times(ratio(v.network.ms.median, runc))} | ${formatSources(v.network.vmSources)} |`);
    hows.add(`${rowLabel(k)}: \`${v.networkHow}\` / \`${v.noneHow}\``);
  }
  return [...out, '', ...[...hows].map((h) => `- ${cell(h)}`), '', ...phaseSections(r)];
}

/** phaseSections put the `hako run` boot paths with and without networking side by side, per mode. */
function phaseSections(r: Results): string[] {
  const out: string[] = [];
  for (const mode of r.hakoModes) {
    const v = r.netStart[hakoRunRow(mode)];
    if (!v?.ok || v.phases === undefined || v.phases.network.length === 0) continue;
    const none = new Map(v.phases.none.map((p: BootPhase) => [p.phase, p.ms.median]));
    const net = new Map(v.phases.network.map((p: BootPhase) => [p.phase, p.ms.median]));
    out.push(`hako run ${mode}, boot path with the default network and with \`--network none\` (medians, from hako's timing lines):`, '',
      '| phase | network ms | none ms |', '| --- | ---: | ---: |');
    for (const p of [...new Set([...net.keys(), ...none.keys()])]) {
      const a = net.get(p);
      const b = none.get(p);
      out.push(`| ${p} | ${a === undefined ? '–' : fmtMs(a)} | ${b === undefined ? '–' : fmtMs(b)} |`);
    }
    out.push('');
  }
  return out;
}

/** networkSections is the network suite's part of the report (nothing when it did not run). */
export function networkSections(r: Results): string[] {
  const out: string[] = [];
  if (Object.keys(r.network ?? {}).length > 0) out.push(...throughputTable(r), ...echoTable(r));
  if (Object.keys(r.netStart ?? {}).length > 0) out.push(...startTable(r));
  return out;
}
