// Reads the guest agent's own timing from a hako sandbox's console.log (the agent logs
// JSON lines there): guest uptime when node started, when its main module ran, when ready.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HAKO_SANDBOXES } from './pss.js';

/** GuestTimes are one guest's boot figures from its console, in ms of guest uptime or duration. */
export interface GuestTimes {
  /** nodeStartUptimeMs: kernel boot + busybox init + rcS, until node started. */
  nodeStartUptimeMs?: number;
  mainStartUptimeMs?: number;
  readyUptimeMs?: number;
  /** containerStartMs is what the agent logged for starting the container (crun create+start in the guest). */
  containerStartMs?: number;
}

const MAX_CONSOLE = 1 << 20;

/** parseGuestConsole extracts GuestTimes from console text (other lines and bad JSON are ignored). */
export function parseGuestConsole(text: string): GuestTimes {
  const out: GuestTimes = {};
  for (const raw of text.slice(0, MAX_CONSOLE).split('\n')) {
    const at = raw.indexOf('{"');
    if (at < 0) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(raw.slice(at)) as Record<string, unknown>;
    } catch {
      continue;
    }
    const num = (k: string): number | undefined => (typeof rec[k] === 'number' ? (rec[k] as number) : undefined);
    if (rec.msg === 'hako-agent ready') {
      out.nodeStartUptimeMs = num('nodeStartUptimeMs');
      out.mainStartUptimeMs = num('mainStartUptimeMs');
      out.readyUptimeMs = num('readyUptimeMs');
    } else if (rec.msg === 'container started' && out.containerStartMs === undefined) {
      out.containerStartMs = num('ms');
    }
  }
  return out;
}

/**
 * readGuestTimes reads sandbox id's console log (`<id>/vm/console.log`; `<id>/console.log` before
 * the VM factory), or returns undefined when there is none. A clone's console starts at its
 * restore, so it has no agent-ready line: the agent started in the template.
 */
export async function readGuestTimes(id: string): Promise<GuestTimes | undefined> {
  for (const path of [join(HAKO_SANDBOXES, id, 'vm', 'console.log'), join(HAKO_SANDBOXES, id, 'console.log')]) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text !== undefined) return parseGuestConsole(text);
  }
  return undefined;
}

/** guestPhases turns several guests' times into named phase samples. */
export function guestPhases(all: readonly GuestTimes[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const add = (k: string, v: number | undefined): void => { if (v !== undefined && v >= 0) (out[k] ??= []).push(v); };
  for (const g of all) {
    add('guest kernel boot + init + rcS, until node starts (guest uptime)', g.nodeStartUptimeMs);
    if (g.mainStartUptimeMs !== undefined && g.nodeStartUptimeMs !== undefined) add('node loads and compiles the agent, until its main runs', g.mainStartUptimeMs - g.nodeStartUptimeMs);
    if (g.readyUptimeMs !== undefined && g.mainStartUptimeMs !== undefined) add('agent main until its port is open', g.readyUptimeMs - g.mainStartUptimeMs);
    add('agent: container start in the guest (crun), as the agent logs it', g.containerStartMs);
  }
  return out;
}
