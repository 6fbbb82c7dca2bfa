// A dependency-free SVG chart of start latency and memory per idle container for
// the runtimes, written next to the JSON; missing figures are drawn as "not measured".

import type { Results, StartKey } from './results.js';
import type { RuntimeName } from './runtimes.js';

interface Bar {
  label: string;
  value?: number;
  min?: number;
  max?: number;
  missing?: string;
  color: string;
}

const COLORS: Record<string, string> = { runc: '#4c78a8', runsc: '#f58518', hako: '#54a24b', 'hako-run': '#88d27a' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function panel(x0: number, title: string, unit: string, bars: Bar[]): string {
  const w = 400;
  const h = 300;
  const top = 50;
  const bottom = 250;
  const left = x0 + 50;
  const vmax = Math.max(1, ...bars.map((b) => b.max ?? b.value ?? 0)) * 1.12;
  const y = (v: number): number => bottom - ((bottom - top) * v) / vmax;
  const slot = (w - 70) / Math.max(bars.length, 1);
  const parts: string[] = [
    `<text x="${x0 + w / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${left}" y1="${bottom}" x2="${x0 + w - 10}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top - 10}" x2="${left}" y2="${bottom}" stroke="#333"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (vmax * i) / 4;
    parts.push(`<text x="${left - 4}" y="${y(v) + 4}" text-anchor="end" font-size="10" fill="#555">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}</text>`);
    if (i > 0) parts.push(`<line x1="${left}" y1="${y(v)}" x2="${x0 + w - 10}" y2="${y(v)}" stroke="#ddd"/>`);
  }
  parts.push(`<text x="${x0 + 14}" y="${(top + bottom) / 2}" font-size="11" transform="rotate(-90 ${x0 + 14} ${(top + bottom) / 2})" text-anchor="middle">${esc(unit)}</text>`);
  bars.forEach((b, i) => {
    const cx = left + slot * i + slot / 2;
    const bw = slot * 0.6;
    parts.push(`<text x="${cx}" y="${bottom + 16}" text-anchor="middle" font-size="11">${esc(b.label)}</text>`);
    if (b.value === undefined) {
      parts.push(`<text x="${cx}" y="${bottom - 8}" text-anchor="middle" font-size="10" fill="#999">not measured</text>`);
      if (b.missing) parts.push(`<title>${esc(b.missing)}</title>`);
      return;
    }
    parts.push(`<rect x="${cx - bw / 2}" y="${y(b.value)}" width="${bw}" height="${bottom - y(b.value)}" fill="${b.color}"/>`);
    if (b.min !== undefined && b.max !== undefined) {
      parts.push(`<line x1="${cx}" y1="${y(b.max)}" x2="${cx}" y2="${y(b.min)}" stroke="#222"/>`,
        `<line x1="${cx - 5}" y1="${y(b.max)}" x2="${cx + 5}" y2="${y(b.max)}" stroke="#222"/>`,
        `<line x1="${cx - 5}" y1="${y(b.min)}" x2="${cx + 5}" y2="${y(b.min)}" stroke="#222"/>`);
    }
    const label = b.value >= 100 ? b.value.toFixed(0) : b.value.toFixed(1);
    parts.push(`<text x="${cx}" y="${y(b.max ?? b.value) - 5}" text-anchor="middle" font-size="11" font-weight="bold">${label}</text>`);
  });
  return parts.join('\n');
}

/** renderSvg draws two bar panels: start latency (median, min–max whiskers) and PSS per idle container. */
export function renderSvg(r: Results): string {
  const startKeys: StartKey[] = ['runc', 'runsc', 'hako', 'hako-run'];
  const starts: Bar[] = startKeys.map((k) => {
    const m = r.start[k];
    const label = k === 'hako-run' ? 'hako run' : k === 'hako' ? 'hako (ctr)' : k;
    if (m === undefined || !m.ok) return { label, color: COLORS[k]!, ...(m && !m.ok ? { missing: m.notMeasured } : {}) };
    return { label, value: m.ms.median, min: m.ms.min, max: m.ms.max, color: COLORS[k]! };
  });
  const mems: Bar[] = (['runc', 'runsc', 'hako'] as RuntimeName[]).map((k) => {
    const m = r.memory[k];
    if (m === undefined || !m.ok) return { label: k, color: COLORS[k]!, ...(m && !m.ok ? { missing: m.notMeasured } : {}) };
    return { label: `${k} (n=${m.n})`, value: m.perContainerKiB / 1024, color: COLORS[k]! };
  });
  const title = `hako vs runc vs gVisor — ${r.mode} run ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${r.machine.cores} cores, accel ${r.machine.accelerator.accel}`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<svg xmlns="http://www.w3.org/2000/svg" width="820" height="330" viewBox="0 0 820 330" font-family="sans-serif">',
    '<rect width="820" height="330" fill="#fff"/>',
    panel(0, 'Start latency (run --rm … true)', 'ms (median, min–max)', starts),
    panel(410, 'Memory per idle container', 'MiB PSS', mems),
    `<text x="410" y="322" text-anchor="middle" font-size="10" fill="#555">${esc(title)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
