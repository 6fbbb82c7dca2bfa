// Renders Results as the markdown tables printed by `npm run bench` and committed
// next to the JSON: medians, min–max and ratios to runc and runsc from the same run.

import type { RuntimeName } from './runtimes.js';
import { RUNTIMES } from './runtimes.js';
import type { Results, StartKey } from './results.js';
import { ratio } from './stats.js';
import type { Latency, Measured } from './types.js';

const fmtMs = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const mib = (kib: number): string => (kib / 1024).toFixed(1);
const x = (r: number | undefined): string => (r === undefined ? '–' : `${r}×`);

function missing(label: string, m: { notMeasured: string }, cols: number): string {
  return `| ${label} | not measured: ${m.notMeasured.replace(/\|/g, '\\|').replace(/\n/g, ' ')} |${' |'.repeat(Math.max(cols - 2, 0))}`;
}

function latencyTable(title: string, rows: Array<[string, Measured<Latency> | undefined]>, base: { runc?: number; runsc?: number }): string[] {
  const out = [`### ${title}`, '', '| runtime | median ms | min–max ms | n | × runc | × runsc |', '| --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const [label, m] of rows) {
    if (m === undefined) continue;
    if (!m.ok) { out.push(missing(label, m, 6)); continue; }
    const fail = m.failures > 0 ? ` (${m.failures} failed)` : '';
    out.push(`| ${label} | ${fmtMs(m.ms.median)} | ${fmtMs(m.ms.min)}–${fmtMs(m.ms.max)} | ${m.ms.n}${fail} | ${x(ratio(m.ms.median, base.runc))} | ${x(ratio(m.ms.median, base.runsc))} |`);
  }
  return [...out, ''];
}

function med(m: Measured<Latency> | undefined): number | undefined {
  return m?.ok ? m.ms.median : undefined;
}

const START_LABELS: Record<StartKey, string> = {
  runc: 'runc (`ctr run --rm … true`)',
  runsc: 'runsc (`ctr run --rm … true`)',
  hako: 'hako (`ctr run --rm … true`)',
  'hako-run': 'hako (`hako run --rm busybox -- true`)',
};

/** renderMarkdown returns the full report. */
export function renderMarkdown(r: Results): string {
  const m = r.machine;
  const out: string[] = [
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
  ];
  if (Object.keys(r.start).length > 0) {
    const base = { runc: med(r.start.runc), runsc: med(r.start.runsc) };
    out.push(...latencyTable('Start latency', (['runc', 'runsc', 'hako', 'hako-run'] as StartKey[]).map((k) => [START_LABELS[k], r.start[k]]), base));
  }
  const shim = r.start.hako;
  if (shim?.ok && shim.phases !== undefined) {
    const total = shim.phases.reduce((a, p) => a + p.ms.median, 0);
    out.push('### hako through containerd: boot path of the `ctr run` start runs', '', `Source: ${shim.phasesSource}.`, '',
      '| phase | median ms | min–max ms | share of sum of medians |', '| --- | ---: | ---: | ---: |');
    for (const p of shim.phases) out.push(`| ${p.phase} | ${fmtMs(p.ms.median)} | ${fmtMs(p.ms.min)}–${fmtMs(p.ms.max)} | ${total > 0 ? Math.round((100 * p.ms.median) / total) : 0}% |`);
    out.push('');
  }
  if (r.bootPath !== undefined) {
    out.push('### hako boot path (from hako\'s timing log lines)', '');
    if (!r.bootPath.ok) out.push(`not measured: ${r.bootPath.notMeasured}`, '');
    else {
      const total = r.bootPath.phases.reduce((a, p) => a + p.ms.median, 0);
      out.push(`${r.bootPath.runs} runs; source: ${r.bootPath.source}.`, '', '| phase | median ms | min–max ms | share of sum of medians |', '| --- | ---: | ---: | ---: |');
      for (const p of r.bootPath.phases) {
        out.push(`| ${p.phase} | ${fmtMs(p.ms.median)} | ${fmtMs(p.ms.min)}–${fmtMs(p.ms.max)} | ${total > 0 ? Math.round((100 * p.ms.median) / total) : 0}% |`);
      }
      out.push('');
      if (r.bootPath.agentSplit.length > 0) {
        out.push('qmp-ready → agent-ready split with the guest clock (approximate: host and guest clocks):', '', '| part | median ms | min–max ms |', '| --- | ---: | ---: |');
        for (const p of r.bootPath.agentSplit) out.push(`| ${p.phase} | ${fmtMs(p.ms.median)} | ${fmtMs(p.ms.min)}–${fmtMs(p.ms.max)} |`);
        out.push('');
      }
      const extra = Object.entries(r.bootPath.fields).flatMap(([mark, f]) => Object.entries(f).map(([k, s]) => `| ${mark} | ${k} | ${fmtMs(s.median)} | ${fmtMs(s.min)}–${fmtMs(s.max)} |`));
      if (extra.length > 0) out.push('Values logged with the marks:', '', '| mark | field | median | min–max |', '| --- | --- | ---: | ---: |', ...extra, '');
    }
  }
  const gp = r.memory.hako?.ok ? r.memory.hako.guestPhases : undefined;
  if (gp !== undefined) {
    out.push(`hako guest side, from the agent's own console line in each idle container of the memory suite (n=${r.memory.hako?.ok ? r.memory.hako.n : 0}):`, '', '| guest phase | median ms | min–max ms |', '| --- | ---: | ---: |');
    for (const [k, s] of Object.entries(gp)) out.push(`| ${k} | ${fmtMs(s.median)} | ${fmtMs(s.min)}–${fmtMs(s.max)} |`);
    out.push('');
  }
  if (Object.keys(r.exec).length > 0) {
    const base = { runc: med(r.exec.runc), runsc: med(r.exec.runsc) };
    out.push(...latencyTable('Exec latency (`ctr task exec --exec-id X ID true`)', RUNTIMES.map((k) => [k, r.exec[k]]), base));
  }
  if (Object.keys(r.memory).length > 0) {
    const per = (k: RuntimeName): number | undefined => { const v = r.memory[k]; return v?.ok ? v.perContainerKiB : undefined; };
    out.push('### Memory per idle container (PSS of every host process the runtime started)', '',
      '| runtime | containers | per container MiB | anon / file per container MiB | total MiB | × runc | × runsc | by process (MiB, all containers) |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const k of RUNTIMES) {
      const v = r.memory[k];
      if (v === undefined) continue;
      if (!v.ok) { out.push(missing(k, v, 8)); continue; }
      const anon = v.processes.reduce((a, p) => a + (p.pssAnonKiB ?? 0), 0) / v.n;
      const file = v.processes.reduce((a, p) => a + (p.pssFileKiB ?? 0), 0) / v.n;
      const by = Object.entries(v.byName).sort((a, b) => b[1] - a[1]).map(([n, kib]) => `${n} ${mib(kib)}`).join(', ');
      out.push(`| ${k} | ${v.n} | ${mib(v.perContainerKiB)} | ${mib(anon)} / ${mib(file)} | ${mib(v.totalPssKiB)} | ${x(ratio(v.perContainerKiB, per('runc')))} | ${x(ratio(v.perContainerKiB, per('runsc')))} | ${by} |`);
    }
    out.push('');
  }
  if (Object.keys(r.io).length > 0) {
    const w = (k: RuntimeName): number | undefined => { const v = r.io[k]; return v?.ok ? v.writeMiBps.median : undefined; };
    const rd = (k: RuntimeName): number | undefined => { const v = r.io[k]; return v?.ok ? v.readMiBps.median : undefined; };
    out.push('### Sequential I/O through the container rootfs (MiB/s, median and min–max)', '',
      '| runtime | file MiB | write (conv=fsync) | read after cache drop | O_DIRECT read | write × runc | read × runc |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    const notes = new Set<string>();
    for (const k of RUNTIMES) {
      const v = r.io[k];
      if (v === undefined) continue;
      if (!v.ok) { out.push(missing(k, v, 7)); continue; }
      const s = (q: { median: number; min: number; max: number; n: number }): string => `${q.median.toFixed(0)} (${q.min.toFixed(0)}–${q.max.toFixed(0)}, n=${q.n})`;
      out.push(`| ${k} | ${v.sizeMiB} | ${s(v.writeMiBps)} | ${s(v.readMiBps)} | ${v.readDirectMiBps ? s(v.readDirectMiBps) : 'n/a'} | ${x(ratio(w(k), w('runc')))} | ${x(ratio(rd(k), rd('runc')))} |`);
      for (const n of v.notes) notes.add(`${k}: ${n}`);
    }
    out.push('', ...[...notes].map((n) => `- ${n}`), '');
  }
  if (Object.keys(r.density).length > 0) {
    out.push('### Density (idle `sleep 3600` containers started one by one)', '',
      '| runtime | containers | stopped because | first → last start ms | MemAvailable start → end MiB | PSS per container MiB |', '| --- | ---: | --- | ---: | ---: | ---: |');
    for (const k of RUNTIMES) {
      const v = r.density[k];
      if (v === undefined) continue;
      if (!v.ok) { out.push(missing(k, v, 6)); continue; }
      const mem = v.memAvailableMiB;
      out.push(`| ${k} | ${v.count} | ${v.stoppedBecause} | ${v.startMs[0] ?? '–'} → ${v.startMs[v.startMs.length - 1] ?? '–'} | ${mem[0]} → ${mem[mem.length - 1]} | ${v.perContainerPssKiB !== undefined ? mib(v.perContainerPssKiB) : '–'} |`);
    }
    out.push('');
  }
  if (r.skipped.length > 0) out.push(`Suites not run (--only): ${r.skipped.join(', ')}.`, '');
  out.push('Benchmarks assert nothing about time. Figures are medians with min–max over repeated runs on a shared, noisy 2-core machine; ratios compare medians measured in this same run.', '');
  return out.join('\n');
}
