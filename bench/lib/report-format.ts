// Small formatting helpers shared by the markdown report's sections: numbers, ratios, a row
// that says why a figure is missing, and a phase table.

import type { BootPhase } from './types.js';

/** fmtMs prints milliseconds: whole above 100, one decimal below. */
export const fmtMs = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

/** mib prints KiB as MiB with one decimal. */
export const mib = (kib: number): string => (kib / 1024).toFixed(1);

/** times prints a ratio as "2.5×", or "–" when there is none. */
export const times = (r: number | undefined): string => (r === undefined ? '–' : `${r}×`);

/** cell makes text safe inside a markdown table cell. */
export const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** missing is a table row that says why label has no figures (cols is the table's column count). */
export function missing(label: string, m: { notMeasured: string }, cols: number): string {
  return `| ${label} | not measured: ${cell(m.notMeasured)} |${' |'.repeat(Math.max(cols - 2, 0))}`;
}

/** phaseTable renders boot phases with each one's share of the sum of medians. */
export function phaseTable(phases: readonly BootPhase[]): string[] {
  const total = phases.reduce((a, p) => a + p.ms.median, 0);
  const out = ['| phase | median ms | min–max ms | share of sum of medians |', '| --- | ---: | ---: | ---: |'];
  for (const p of phases) out.push(`| ${p.phase} | ${fmtMs(p.ms.median)} | ${fmtMs(p.ms.min)}–${fmtMs(p.ms.max)} | ${total > 0 ? Math.round((100 * p.ms.median) / total) : 0}% |`);
  return [...out, ''];
}
