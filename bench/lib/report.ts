// Renders Results as the markdown tables printed by `npm run bench`: medians, min–max and
// ratios to runc and runsc from the same run, with hako as one row per mode.

import { HAKO_MODES, hakoRow, hakoRunRow, rowLabel, ROW_KEYS, type RowKey } from './hako-modes.js';
import type { Results, StartKey } from './results.js';
import { bootPathSections, ctrBootSections, guestSection, modeSection, poolOverheadLines, rpcSection } from './report-hako.js';
import { cell, fmtMs, mib, missing, times } from './report-format.js';
import { networkSections } from './report-network.js';
import { ratio } from './stats.js';
import type { Latency, Measured } from './types.js';
import { formatSources, sourceMismatch } from './vm-source.js';

function latencyTable(title: string, rows: Array<[string, Measured<Latency> | undefined]>, base: { runc?: number; runsc?: number }): string[] {
  const out = [`### ${title}`, '', '| runtime | median ms | min–max ms | n | × runc | × runsc | VMs from |', '| --- | ---: | ---: | ---: | ---: | ---: | --- |'];
  for (const [label, m] of rows) {
    if (m === undefined) continue;
    if (!m.ok) { out.push(missing(label, m, 7)); continue; }
    const fail = m.failures > 0 ? ` (${m.failures} failed)` : '';
    out.push(`| ${label} | ${fmtMs(m.ms.median)} | ${fmtMs(m.ms.min)}–${fmtMs(m.ms.max)} | ${m.ms.n}${fail} | ${times(ratio(m.ms.median, base.runc))} | ${times(ratio(m.ms.median, base.runsc))} | ${formatSources(m.vmSources)} |`);
  }
  return [...out, ''];
}

function med(m: Measured<Latency> | undefined): number | undefined {
  return m?.ok ? m.ms.median : undefined;
}

/** START_KEYS is the order of the start table: runc, runsc, hako per mode through ctr, then `hako run` per mode. */
const START_KEYS: readonly StartKey[] = [...ROW_KEYS, ...HAKO_MODES.map(hakoRunRow)];

function startLabel(k: StartKey): string {
  return k.startsWith('hako-run-') ? `${rowLabel(k)} (\`hako run --rm busybox -- true\`)` : `${rowLabel(k)} (\`ctr run --rm … true\`)`;
}

/** mismatches lists rows whose VMs did not all come from their mode (another daemon, a fallback). */
function mismatches(r: Results): string[] {
  const out: string[] = [];
  for (const mode of r.hakoModes) {
    for (const [what, m] of [[`start ${rowLabel(hakoRow(mode))}`, r.start[hakoRow(mode)]], [`start ${rowLabel(hakoRunRow(mode))}`, r.start[hakoRunRow(mode)]],
      [`exec ${rowLabel(hakoRow(mode))}`, r.exec[hakoRow(mode)]], [`memory ${rowLabel(hakoRow(mode))}`, r.memory[hakoRow(mode)]]] as const) {
      const bad = m?.ok && m.vmSources !== undefined ? sourceMismatch(mode, m.vmSources) : undefined;
      if (bad !== undefined) out.push(`- ${what}: ${bad} (a failing factory falls back; on a shared machine another warm pool may serve, or another user may take a warm VM).`);
    }
    const rpc = r.rpc[mode];
    if (rpc?.ok && rpc.vmSource !== mode) out.push(`- rpc hako ${mode}: its VM came from ${rpc.vmSource}.`);
  }
  return out.length > 0 ? ['VMs that did not come from their mode:', '', ...out, ''] : [];
}

function header(r: Results): string[] {
  const m = r.machine;
  return [
    `# hako benchmarks: ${r.mode} run, ${r.startedAt.slice(0, 10)}`,
    '',
    `Machine: ${m.hostname}, ${m.cores} × ${m.cpuModel}, ${Math.round(m.memoryMiB / 1024)} GiB RAM (${m.memAvailableMiB} MiB available at start), ` +
      `kernel ${m.kernel}, ${m.os}, Node ${m.node}, load average at start ${m.loadavg.join(' ')}.`,
    `Accelerator hako chooses: **${m.accelerator.accel}** (${m.accelerator.reason}).`,
    `Versions: ${Object.entries(m.versions).map(([k, v]) => `${k}: ${v}`).join('; ')}. hako commit ${m.hakoCommit}.`,
    `Image: ${r.image}. Run took ${Math.round(r.durationS)} s (${r.startedAt} – ${r.finishedAt}).`,
    '',
    'Invocations:',
    ...Object.entries(r.invocations).map(([k, v]) => `- ${k}: ${v}`),
    '',
    ...(r.notes.length > 0 ? [...r.notes.map((n) => `Note: ${n}`), ''] : []),
  ];
}

function memoryTable(r: Results): string[] {
  const per = (k: RowKey): number | undefined => { const v = r.memory[k]; return v?.ok ? v.perContainerKiB : undefined; };
  const out = ['### Memory per idle container (PSS of every host process the runtime started)', '',
    '| runtime | containers | per container MiB | anon / file per container MiB | total MiB | × runc | × runsc | VMs from | by process (MiB, all containers) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |'];
  for (const k of ROW_KEYS) {
    const v = r.memory[k];
    if (v === undefined) continue;
    if (!v.ok) { out.push(missing(rowLabel(k), v, 9)); continue; }
    const anon = v.processes.reduce((a, p) => a + (p.pssAnonKiB ?? 0), 0) / v.n;
    const file = v.processes.reduce((a, p) => a + (p.pssFileKiB ?? 0), 0) / v.n;
    const by = Object.entries(v.byName).sort((a, b) => b[1] - a[1]).map(([n, kib]) => `${n} ${mib(kib)}`).join(', ');
    out.push(`| ${rowLabel(k)} | ${v.n} | ${mib(v.perContainerKiB)} | ${mib(anon)} / ${mib(file)} | ${mib(v.totalPssKiB)} | ${times(ratio(v.perContainerKiB, per('runc')))} | ${times(ratio(v.perContainerKiB, per('runsc')))} | ${formatSources(v.vmSources)} | ${cell(by)} |`);
  }
  return [...out, '', ...poolOverheadLines(r)];
}

function ioTable(r: Results): string[] {
  const w = (k: RowKey): number | undefined => { const v = r.io[k]; return v?.ok ? v.writeMiBps.median : undefined; };
  const rd = (k: RowKey): number | undefined => { const v = r.io[k]; return v?.ok ? v.readMiBps.median : undefined; };
  const out = ['### Sequential I/O through the container rootfs (MiB/s, median and min–max; hako in template mode only)', '',
    '| runtime | file MiB | write (conv=fsync) | read after cache drop | O_DIRECT read | write × runc | read × runc |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'];
  const notes = new Set<string>();
  for (const k of ROW_KEYS) {
    const v = r.io[k];
    if (v === undefined) continue;
    if (!v.ok) { out.push(missing(rowLabel(k), v, 7)); continue; }
    const s = (q: { median: number; min: number; max: number; n: number }): string => `${q.median.toFixed(0)} (${q.min.toFixed(0)}–${q.max.toFixed(0)}, n=${q.n})`;
    out.push(`| ${rowLabel(k)} | ${v.sizeMiB} | ${s(v.writeMiBps)} | ${s(v.readMiBps)} | ${v.readDirectMiBps ? s(v.readDirectMiBps) : 'n/a'} | ${times(ratio(w(k), w('runc')))} | ${times(ratio(rd(k), rd('runc')))} |`);
    for (const n of v.notes) notes.add(`${rowLabel(k)}: ${n}`);
  }
  return [...out, '', ...[...notes].map((n) => `- ${n}`), ''];
}

function densityTable(r: Results): string[] {
  const out = ['### Density (idle `sleep 3600` containers started one by one; hako in template mode only)', '',
    '| runtime | containers | stopped because | first → last start ms | MemAvailable start → end MiB | PSS per container MiB |', '| --- | ---: | --- | ---: | ---: | ---: |'];
  for (const k of ROW_KEYS) {
    const v = r.density[k];
    if (v === undefined) continue;
    if (!v.ok) { out.push(missing(rowLabel(k), v, 6)); continue; }
    const mem = v.memAvailableMiB;
    out.push(`| ${rowLabel(k)} | ${v.count} | ${v.stoppedBecause} | ${v.startMs[0] ?? '–'} → ${v.startMs[v.startMs.length - 1] ?? '–'} | ${mem[0]} → ${mem[mem.length - 1]} | ${v.perContainerPssKiB !== undefined ? mib(v.perContainerPssKiB) : '–'} |`);
  }
  return [...out, ''];
}

/** renderMarkdown returns the full report. */
export function renderMarkdown(r: Results): string {
  const out = [...header(r), ...modeSection(r)];
  if (Object.keys(r.start).length > 0) {
    const base = { runc: med(r.start.runc), runsc: med(r.start.runsc) };
    out.push(...latencyTable('Start latency', START_KEYS.map((k) => [startLabel(k), r.start[k]]), base));
  }
  out.push(...ctrBootSections(r), ...bootPathSections(r), ...guestSection(r));
  if (Object.keys(r.exec).length > 0) {
    const base = { runc: med(r.exec.runc), runsc: med(r.exec.runsc) };
    out.push(...latencyTable('Exec latency (`ctr task exec --exec-id X ID true`)', ROW_KEYS.map((k) => [rowLabel(k), r.exec[k]]), base));
  }
  if (Object.keys(r.memory).length > 0) out.push(...memoryTable(r));
  out.push(...rpcSection(r));
  if (Object.keys(r.io).length > 0) out.push(...ioTable(r));
  out.push(...networkSections(r));
  if (Object.keys(r.density).length > 0) out.push(...densityTable(r));
  out.push(...mismatches(r));
  if (r.skipped.length > 0) out.push(`Suites not run (--only): ${r.skipped.join(', ')}.`, '');
  out.push('Benchmarks assert nothing about time. Figures are medians with min–max over repeated runs on a shared, noisy 2-core machine; ratios compare medians measured in this same run.', '');
  return out.join('\n');
}
