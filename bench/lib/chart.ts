// A dependency-free SVG chart of start latency, memory per idle container and the agent RPC,
// hako as one bar per mode next to runc and runsc; missing figures are drawn as "not measured".

import { HAKO_MODES, hakoRow, hakoRunRow, ROW_KEYS, type HakoMode } from './hako-modes.js';
import type { Results, StartKey } from './results.js';
import { RPC_TARGET_MS } from '../config.js';

interface Bar {
  /** label is drawn under the bar, one line per '\n'. */
  label: string;
  value?: number;
  min?: number;
  max?: number;
  missing?: string;
  color: string;
}

const MODE_COLORS: Record<HakoMode, string> = { cold: '#2f6b2a', template: '#54a24b', pool: '#9bd48f' };
const RUN_COLORS: Record<HakoMode, string> = { cold: '#1d6f6a', template: '#3aa39b', pool: '#93d3cc' };

function color(key: string): string {
  if (key === 'runc') return '#4c78a8';
  if (key === 'runsc') return '#f58518';
  const run = /^hako-run-(\w+)$/.exec(key);
  if (run) return RUN_COLORS[run[1] as HakoMode] ?? '#888';
  return MODE_COLORS[key.replace(/^hako-/, '') as HakoMode] ?? '#888';
}

function label(key: string): string {
  const run = /^hako-run-(\w+)$/.exec(key);
  if (run) return `hako run\n${run[1]}`;
  return key.startsWith('hako-') ? `hako\n${key.slice(5)}` : key;
}

function p90(samples: readonly number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.9 * s.length) - 1)] ?? 0;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const SLOT = 64;
const PAD = 70;

/** panelWidth is the width a panel of n bars takes. */
function panelWidth(n: number): number {
  return PAD + SLOT * Math.max(n, 1);
}

function panel(x0: number, title: string, unit: string, bars: Bar[], target?: { value: number; label: string }): string {
  const w = panelWidth(bars.length);
  const top = 50;
  const bottom = 250;
  const left = x0 + 50;
  const vmax = Math.max(1, target?.value ?? 0, ...bars.map((b) => b.max ?? b.value ?? 0)) * 1.12;
  const y = (v: number): number => bottom - ((bottom - top) * v) / vmax;
  const num = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  const parts: string[] = [
    `<text x="${x0 + w / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${left}" y1="${bottom}" x2="${x0 + w - 10}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top - 10}" x2="${left}" y2="${bottom}" stroke="#333"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (vmax * i) / 4;
    parts.push(`<text x="${left - 4}" y="${y(v) + 4}" text-anchor="end" font-size="10" fill="#555">${num(v)}</text>`);
    if (i > 0) parts.push(`<line x1="${left}" y1="${y(v)}" x2="${x0 + w - 10}" y2="${y(v)}" stroke="#ddd"/>`);
  }
  if (target !== undefined) {
    parts.push(`<line x1="${left}" y1="${y(target.value)}" x2="${x0 + w - 10}" y2="${y(target.value)}" stroke="#d62728" stroke-dasharray="4 3"/>`,
      `<text x="${left + 3}" y="${y(target.value) - 3}" font-size="9" fill="#d62728">${esc(target.label)}</text>`);
  }
  parts.push(`<text x="${x0 + 14}" y="${(top + bottom) / 2}" font-size="11" transform="rotate(-90 ${x0 + 14} ${(top + bottom) / 2})" text-anchor="middle">${esc(unit)}</text>`);
  bars.forEach((b, i) => {
    const cx = left + SLOT * i + SLOT / 2;
    const bw = SLOT * 0.6;
    const lines = b.label.split('\n').map((l, j) => `<tspan x="${cx}" dy="${j === 0 ? 0 : 12}">${esc(l)}</tspan>`).join('');
    parts.push(`<text x="${cx}" y="${bottom + 16}" text-anchor="middle" font-size="11">${lines}</text>`);
    if (b.value === undefined) {
      parts.push(`<text x="${cx}" y="${bottom - 8}" text-anchor="middle" font-size="9" fill="#999">not measured${b.missing ? `<title>${esc(b.missing)}</title>` : ''}</text>`);
      return;
    }
    parts.push(`<rect x="${cx - bw / 2}" y="${y(b.value)}" width="${bw}" height="${bottom - y(b.value)}" fill="${b.color}"/>`);
    if (b.min !== undefined && b.max !== undefined) {
      parts.push(`<line x1="${cx}" y1="${y(b.max)}" x2="${cx}" y2="${y(b.min)}" stroke="#222"/>`,
        `<line x1="${cx - 5}" y1="${y(b.max)}" x2="${cx + 5}" y2="${y(b.max)}" stroke="#222"/>`,
        `<line x1="${cx - 5}" y1="${y(b.min)}" x2="${cx + 5}" y2="${y(b.min)}" stroke="#222"/>`);
    }
    parts.push(`<text x="${cx}" y="${y(b.max ?? b.value) - 5}" text-anchor="middle" font-size="11" font-weight="bold">${num(b.value)}</text>`);
  });
  return parts.join('\n');
}

type Fig = { ok: true } | { ok: false; notMeasured: string } | undefined;

function bar<T extends Fig>(key: string, m: T, value: (v: Exclude<T, undefined> & { ok: true }) => Omit<Bar, 'label' | 'color'>): Bar {
  const base = { label: label(key), color: color(key) };
  if (m === undefined) return base;
  if (!m.ok) return { ...base, missing: m.notMeasured };
  return { ...base, ...value(m as Exclude<T, undefined> & { ok: true }) };
}

/** renderSvg draws three bar panels: start latency (median, min–max whiskers), PSS per idle container, agent Check round trip. */
export function renderSvg(r: Results): string {
  const modes = r.hakoModes.length > 0 ? r.hakoModes : HAKO_MODES;
  const startKeys: StartKey[] = ['runc', 'runsc', ...modes.map(hakoRow), ...modes.map(hakoRunRow)];
  const starts = startKeys.map((k) => bar(k, r.start[k], (m) => ({ value: m.ms.median, min: m.ms.min, max: m.ms.max })));
  const memKeys = ROW_KEYS.filter((k) => !k.startsWith('hako-') || modes.includes(k.slice(5) as HakoMode));
  const mems = memKeys.map((k) => bar(k, r.memory[k], (m) => ({ value: m.perContainerKiB / 1024 })));
  // A few slow calls (another VM taking the CPU) would set the scale: whiskers end at the 90th percentile.
  const rpcs = modes.map((mode) => bar(hakoRow(mode), r.rpc[mode], (m) => ({ value: m.ms.median, min: m.ms.min, max: p90(m.ms.samples) })));
  const w1 = panelWidth(starts.length);
  const w2 = panelWidth(mems.length);
  const w3 = panelWidth(rpcs.length);
  const width = w1 + w2 + w3 + 20;
  const title = `hako (cold, template, pool) vs runc vs gVisor — ${r.mode} run ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${r.machine.cores} cores, accel ${r.machine.accelerator.accel}`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="340" viewBox="0 0 ${width} 340" font-family="sans-serif">`,
    `<rect width="${width}" height="340" fill="#fff"/>`,
    panel(0, 'Start latency (run --rm … true)', 'ms (median, min–max)', starts),
    panel(w1 + 10, 'Memory per idle container', 'MiB PSS', mems),
    panel(w1 + w2 + 20, 'Agent Check round trip', 'ms (median, min–p90)', rpcs, { value: RPC_TARGET_MS, label: `target ${RPC_TARGET_MS} ms` }),
    `<text x="${width / 2}" y="332" text-anchor="middle" font-size="10" fill="#555">${esc(title)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
