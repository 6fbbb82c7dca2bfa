// The hako-specific sections of the markdown report: how each mode was set up, the boot path per
// mode (through containerd and `hako run`), the guest side of cold boots, and the agent RPC.

import { hakoRow, MODE_DESCRIPTIONS } from './hako-modes.js';
import type { Results } from './results.js';
import { cell, fmtMs, mib, phaseTable } from './report-format.js';
import { formatSources, sourceMismatch } from './vm-source.js';

/** modeSection describes the modes and how each was set up (template build, pool, problems). */
export function modeSection(r: Results): string[] {
  if (r.hakoModes.length === 0 || r.modeSetup.length === 0) return [];
  const out = ['### hako modes', '', ...r.hakoModes.map((m) => `- **hako ${m}**: ${MODE_DESCRIPTIONS[m]}.`), '',
    '| mode | checkout, for which rows | template before timing | warm pool | notes |', '| --- | --- | --- | --- | --- |'];
  for (const s of r.modeSetup) {
    const t = s.template === undefined ? '–' : s.template.built ? `built by this run in ${(s.template.ms / 1000).toFixed(1)} s` : `already built (\`hako factory init\` ${(s.template.ms / 1000).toFixed(1)} s)`;
    const p = s.pool === undefined ? '–'
      : `P=${s.pool.size}, daemon pid ${s.pool.daemonPid}${s.pool.firstFullMs !== undefined ? `, first full after ${(s.pool.firstFullMs / 1000).toFixed(1)} s` : ''}` +
        `${s.pool.refillWaitMs !== undefined ? `, wait for a full pool before a timed step: median ${fmtMs(s.pool.refillWaitMs.median)} ms (max ${fmtMs(s.pool.refillWaitMs.max)})` : ''}` +
        `${s.pool.waitFailures > 0 ? `, ${s.pool.waitFailures} waits timed out` : ''}`;
    const notes = [...(s.problem !== undefined ? [`**not measured**: ${s.problem}`] : []), ...s.notes].map(cell).join('; ') || '–';
    out.push(`| ${s.mode} | ${cell(s.checkout)}, for ${cell(s.serves)} | ${t} | ${p} | ${notes} |`);
  }
  return [...out, ''];
}

/** ctrBootSections breaks down the `ctr run` starts of each mode with the shim's timing lines. */
export function ctrBootSections(r: Results): string[] {
  const out: string[] = [];
  for (const mode of r.hakoModes) {
    const shim = r.start[hakoRow(mode)];
    if (!shim?.ok || shim.phases === undefined) continue;
    out.push(`### hako ${mode} through containerd: boot path of the \`ctr run\` start runs`, '', `Source: ${shim.phasesSource}.`, '', ...phaseTable(shim.phases));
  }
  return out;
}

/** bootPathSections breaks `hako run` down per mode, with the guest-clock split for cold boots. */
export function bootPathSections(r: Results): string[] {
  const out: string[] = [];
  for (const mode of r.hakoModes) {
    const b = r.bootPath[mode];
    if (b === undefined) continue;
    out.push(`### hako ${mode}: boot path of \`hako run\` (from hako's timing log lines)`, '');
    if (!b.ok) {
      out.push(`not measured: ${b.notMeasured}`, '');
      continue;
    }
    const mismatch = sourceMismatch(mode, b.vmSources);
    out.push(`${b.runs} runs (VMs from: ${formatSources(b.vmSources)}${mismatch !== undefined ? `; ${mismatch}` : ''}); source: ${b.source}.`, '', ...phaseTable(b.phases));
    if (b.agentSplit.length > 0) {
      out.push('qmp-ready → agent-ready split with the guest clock (approximate: host and guest clocks):', '', '| part | median ms | min–max ms |', '| --- | ---: | ---: |');
      for (const p of b.agentSplit) out.push(`| ${p.phase} | ${fmtMs(p.ms.median)} | ${fmtMs(p.ms.min)}–${fmtMs(p.ms.max)} |`);
      out.push('');
    } else if (b.agentSplitNote !== undefined) out.push(`No guest-clock split: ${b.agentSplitNote}.`, '');
    const extra = Object.entries(b.fields).flatMap(([mark, f]) => Object.entries(f).map(([k, s]) => `| ${mark} | ${k} | ${fmtMs(s.median)} | ${fmtMs(s.min)}–${fmtMs(s.max)} |`));
    if (extra.length > 0) {
      out.push(`Values logged with the marks${mode === 'cold' ? '' : " (guest uptimes of a restored VM count from the template's boot)"}:`, '', '| mark | field | median | min–max |', '| --- | --- | ---: | ---: |', ...extra, '');
    }
  }
  return out;
}

/** guestSection lists the guest-side phases of cold boots read from the memory suite's consoles. */
export function guestSection(r: Results): string[] {
  const m = r.memory['hako-cold'];
  if (!m?.ok || m.guestPhases === undefined) return [];
  const out = [`hako cold, guest side, from the agent's own console line in each idle container of the memory suite (n=${m.n}; clones have no such line: their agent started in the template):`, '',
    '| guest phase | median ms | min–max ms |', '| --- | ---: | ---: |'];
  for (const [k, s] of Object.entries(m.guestPhases)) out.push(`| ${k} | ${fmtMs(s.median)} | ${fmtMs(s.min)}–${fmtMs(s.max)} |`);
  return [...out, ''];
}

/** poolOverheadLines reports the warm pool's own PSS, kept out of the per-pod figure. */
export function poolOverheadLines(r: Results): string[] {
  const m = r.memory['hako-pool'];
  if (!m?.ok || m.poolOverhead === undefined) return [];
  const o = m.poolOverhead;
  const by = Object.entries(o.byName).sort((a, b) => b[1] - a[1]).map(([n, kib]) => `${n} ${mib(kib)}`).join(', ');
  return [`The warm pool's own overhead in the pool row, not in its per-container figure: ${mib(o.pssKiB)} MiB PSS for the daemon and its ${o.warmVms} idle warm VM${o.warmVms === 1 ? '' : 's'} (${by}).`, ''];
}

/** rpcSection reports the agent's no-op RPC round trip per mode against the target. */
export function rpcSection(r: Results): string[] {
  if (Object.keys(r.rpc).length === 0) return [];
  const out = ['### Agent RPC round trip (no-op Check, sequential, in-process Sandbox)', '',
    '| mode | VM from | Sandbox.create ms | median ms | min–max ms | calls (after warm-up) | target |', '| --- | --- | ---: | ---: | ---: | ---: | --- |'];
  for (const mode of r.hakoModes) {
    const v = r.rpc[mode];
    if (v === undefined) continue;
    if (!v.ok) { out.push(`| hako ${mode} | not measured: ${cell(v.notMeasured)} | | | | | |`); continue; }
    const f = (x: number): string => x.toFixed(2);
    out.push(`| hako ${mode} | ${v.vmSource} | ${fmtMs(v.createMs)} | ${f(v.ms.median)} | ${f(v.ms.min)}–${f(v.ms.max)} | ${v.ms.n} (${v.warmup}) | ≤ ${v.targetMs} ms: ${v.meetsTarget ? 'met' : '**not met**'} |`);
  }
  return [...out, ''];
}
