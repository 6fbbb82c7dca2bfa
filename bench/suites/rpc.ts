// The agent's no-op RPC round trip (Check) per hako mode: a sandbox created in-process with
// src/sandbox (no CLI, no containerd), a few warm-up calls, then sequential timed calls.

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { ensureAssets } from '../../src/image/index.js';
import { Logger, streamSink } from '../../src/log/index.js';
import { Sandbox, cleanupSandbox, pidAlive, readState } from '../../src/sandbox/index.js';
import { RPC_TARGET_MS } from '../config.js';
import { ID_PREFIX } from '../lib/ctr.js';
import type { HakoMode } from '../lib/hako-modes.js';
import { HAKO_SANDBOXES } from '../lib/pss.js';
import { hakoAssetsProblem } from '../lib/runtimes.js';
import { round, summarize } from '../lib/stats.js';
import { notMeasured, type Measured, type Rpc } from '../lib/types.js';

/** RPC_PREFIX starts the id of every sandbox this suite creates. */
export const RPC_PREFIX = `${ID_PREFIX}rpc-`;

/** RpcOptions sets the number of untimed and timed calls, and the mode in force. */
export interface RpcOptions {
  mode: HakoMode;
  warmup: number;
  calls: number;
  progress: (line: string) => void;
  /** waitReady runs before the sandbox is created and again before the calls (pool mode: until the pool is full, so its refill does not run during the calls). */
  waitReady?: () => Promise<void>;
}

// Sandboxes this process holds, for cleanup on a signal.
const live = new Set<string>();

/** measureRpc creates one sandbox with the configuration in force and times sandbox.api.check(). */
export async function measureRpc(opts: RpcOptions): Promise<Measured<Rpc>> {
  const problem = await hakoAssetsProblem();
  if (problem !== undefined) return notMeasured(problem);
  // Read now: the mode's drop-in is part of it.
  const { config } = await loadConfig();
  const log = new Logger(streamSink(process.stderr), 'warn');
  const assets = await ensureAssets({ log, cacheDir: config.runtime.cacheDir });
  const id = `${RPC_PREFIX}${process.pid}-${opts.mode}`;
  await opts.waitReady?.();
  const t0 = performance.now();
  live.add(id);
  let sb: Sandbox;
  try {
    sb = await Sandbox.create({ id, config, log, assets });
  } catch (err) {
    live.delete(id);
    return notMeasured(`Sandbox.create: ${(err as Error).message}`);
  }
  const createMs = round(performance.now() - t0, 1);
  try {
    await opts.waitReady?.();
    for (let i = 0; i < opts.warmup; i++) await sb.api.check();
    const samples: number[] = [];
    for (let i = 0; i < opts.calls; i++) {
      const t = performance.now();
      await sb.api.check();
      samples.push(performance.now() - t);
    }
    const ms = summarize(samples);
    opts.progress(`  rpc ${opts.mode}: VM from ${sb.vmSource}, created in ${createMs.toFixed(0)} ms; Check median ${ms.median.toFixed(2)} ms (${ms.min.toFixed(2)}–${ms.max.toFixed(2)}) over ${ms.n}`);
    return { ok: true, vmSource: sb.vmSource, createMs, warmup: opts.warmup, ms, targetMs: RPC_TARGET_MS, meetsTarget: ms.median <= RPC_TARGET_MS };
  } catch (err) {
    return notMeasured(`Check failed: ${(err as Error).message}`);
  } finally {
    await sb.stop().catch(() => undefined);
    await cleanupSandbox(id).catch(() => undefined);
    live.delete(id);
  }
}

/** cleanupRpcSandboxes removes this process's live rpc sandboxes (signal handlers). */
export async function cleanupRpcSandboxes(): Promise<void> {
  for (const id of [...live]) await cleanupSandbox(id).catch(() => undefined);
  live.clear();
}

/** sweepRpcSandboxes removes rpc sandboxes whose owner process is gone (a crashed earlier run); returns their ids. */
export async function sweepRpcSandboxes(): Promise<string[]> {
  const out: string[] = [];
  for (const id of await readdir(HAKO_SANDBOXES).catch(() => [] as string[])) {
    if (!id.startsWith(RPC_PREFIX)) continue;
    const st = await readState(join(HAKO_SANDBOXES, id, 'state.json')).catch(() => undefined);
    if (st !== undefined && (await pidAlive(st.ownerPid))) continue;
    await cleanupSandbox(id).catch(() => undefined);
    out.push(id);
  }
  return out;
}
