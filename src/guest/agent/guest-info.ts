// Facts about the guest for Check and GetGuestDetails: agent version, kernel release,
// uptime when the agent started (boot-path timing), memory, CPUs and crun's version.

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism, release } from 'node:os';
import { runCommand } from './crun.js';

/** AGENT_VERSION is reported by Check and GetGuestDetails. */
export const AGENT_VERSION = '0.1.0';

/** uptimeMs reads /proc/uptime in milliseconds (0 if unreadable). */
export function uptimeMs(): number {
  try {
    return Math.round(Number.parseFloat(readFileSync('/proc/uptime', 'utf8').split(' ')[0]!) * 1000) || 0;
  } catch {
    return 0;
  }
}

/** parseMemTotalKib extracts MemTotal from /proc/meminfo text. */
export function parseMemTotalKib(meminfo: string): bigint {
  const m = /^MemTotal:\s+(\d+)\s+kB/m.exec(meminfo);
  return m ? BigInt(m[1]!) : 0n;
}

let crunVersion: string | undefined;

/** CRUN_VERSION_FILE holds `crun --version` as the image builder recorded it. */
export const CRUN_VERSION_FILE = '/etc/hako/crun-version';

/** GuestInfo collects the details once per call; crun's version is cached. */
export class GuestInfo {
  /** startUptimeMs is the guest uptime when the agent's main module began to run. */
  constructor(readonly startUptimeMs: number) {}

  async details(): Promise<{
    agentVersion: string; kernelRelease: string; uptimeAtAgentStartMs: bigint; uptimeMs: bigint;
    memTotalKib: bigint; onlineCpus: number; crunVersion: string;
  }> {
    if (crunVersion === undefined) {
      // The image records crun's version at build time: running crun costs ~0.6 s under TCG.
      let first = (await readFile(CRUN_VERSION_FILE, 'utf8').catch(() => '')).split('\n')[0]?.trim() ?? '';
      if (first === '') {
        const r = await runCommand(['crun', '--version'], { timeoutMs: 10_000 }).catch(() => null);
        first = r?.stdout.split('\n')[0]?.trim() ?? '';
      }
      crunVersion = first.slice(0, 200);
    }
    return {
      agentVersion: AGENT_VERSION,
      kernelRelease: release(),
      uptimeAtAgentStartMs: BigInt(this.startUptimeMs),
      uptimeMs: BigInt(uptimeMs()),
      memTotalKib: parseMemTotalKib(await readFile('/proc/meminfo', 'utf8').catch(() => '')),
      onlineCpus: availableParallelism(),
      crunVersion,
    };
  }
}
