// Where each measured hako VM really came from (cold, template or pool): from a sandbox's
// state.json annotation or its agent-ready timing mark, counted per row and checked against the mode.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HakoMode } from './hako-modes.js';
import { HAKO_SANDBOXES } from './pss.js';

/** VmSources counts measured VMs by where they came from ("unknown" when nothing said). */
export type VmSources = Record<string, number>;

/** sandboxVmSource reads the `hako.vm-source` annotation of sandbox id's state.json, if any. */
export async function sandboxVmSource(id: string): Promise<string | undefined> {
  try {
    const st = JSON.parse(await readFile(join(HAKO_SANDBOXES, id, 'state.json'), 'utf8')) as { annotations?: Record<string, unknown> };
    const v = st.annotations?.['hako.vm-source'];
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** countSources counts sources, naming a missing one "unknown". */
export function countSources(sources: ReadonlyArray<string | undefined>): VmSources {
  const out: VmSources = {};
  for (const s of sources) out[s ?? 'unknown'] = (out[s ?? 'unknown'] ?? 0) + 1;
  return out;
}

/** sourceMismatch describes VMs that did not come from mode's source (undefined when all did or none is known). */
export function sourceMismatch(mode: HakoMode, counts: VmSources): string | undefined {
  const other = Object.entries(counts).filter(([k]) => k !== mode && k !== 'unknown');
  if (other.length === 0) return undefined;
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return `${other.reduce((a, [, n]) => a + n, 0)} of ${total} VMs did not come from ${mode}: ${other.map(([k, n]) => `${k} ${n}`).join(', ')}`;
}

/** formatSources renders counts as "pool 8" or "template 7, cold 1". */
export function formatSources(counts: VmSources | undefined): string {
  if (counts === undefined || Object.keys(counts).length === 0) return '–';
  return Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ');
}
