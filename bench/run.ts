// One benchmark run: the baselines (runc, runsc) suite by suite, then hako once per mode (cold,
// template, pool) with the mode put in force for each checkout whose code the rows measure.

import { realpathSync } from 'node:fs';
import type { Args } from './lib/args.js';
import type { ModeConfig } from './config.js';
import { ensureImage, sweep } from './lib/ctr.js';
import { removeDropIn, DROP_IN } from './lib/drop-in.js';
import { hakoRow, hakoRunRow, MODE_DESCRIPTIONS, type HakoMode } from './lib/hako-modes.js';
import { machineFacts } from './lib/machine.js';
import { ModeSession, type Checkout } from './lib/mode-session.js';
import { sweepLeftoverDaemon } from './lib/pool-daemon.js';
import { FORMAT, SUITES, type Results, type SuiteName } from './lib/results.js';
import { repoRoot } from './lib/root.js';
import { netRuntime } from './lib/net-container.js';
import { availability, prepareHakoAssets, runtime, shimCheckout, type Availability, type RuntimeName } from './lib/runtimes.js';
import { notMeasured } from './lib/types.js';
import { measureDensity } from './suites/density.js';
import { measureExec } from './suites/exec.js';
import { HAKO_RUN_ARGS, measureHakoRun } from './suites/hako-run.js';
import { measureIo } from './suites/io.js';
import { measureMemory } from './suites/memory.js';
import { measureNetwork } from './suites/network.js';
import { measureCtrNetStart, measureHakoRunNetStart, HAKO_RUN_NET_ARGS, HAKO_RUN_NONE_ARGS } from './suites/network-start.js';
import { measureRpc, sweepRpcSandboxes } from './suites/rpc.js';
import { measureStart } from './suites/start.js';

type Progress = (line: string) => void;

/** HakoGroup is one checkout and which of hako's rows its code serves. */
interface HakoGroup extends Checkout {
  /** ctr: the containerd rows (start, exec, memory; io and density in template mode). */
  ctr: boolean;
  /** local: `hako run` (start, boot) and rpc, which run this checkout's code. */
  local: boolean;
}

function sameDir(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return a === b;
  }
}

/** hakoGroups is one checkout for every row, or the shim's and this one when they differ. */
function hakoGroups(): HakoGroup[] {
  const local = repoRoot();
  const shim = shimCheckout();
  if (sameDir(local, shim)) return [{ root: local, serves: 'every hako row', ctr: true, local: true }];
  return [
    { root: shim, serves: "the ctr rows (containerd runs this checkout's shim)", ctr: true, local: false },
    { root: local, serves: "the `hako run`, boot and rpc rows (this checkout's code)", ctr: false, local: true },
  ];
}

async function sweepLeftovers(progress: Progress): Promise<string[]> {
  const out = await sweep();
  const daemon = await sweepLeftoverDaemon();
  if (daemon?.pid !== undefined) out.push(`pool daemon pid ${daemon.pid}`);
  if (daemon !== undefined && daemon.orphanVms.length > 0) out.push(`warm VMs of a dead pool daemon: ${daemon.orphanVms.join(', ')}`);
  if (await removeDropIn()) out.push(DROP_IN);
  out.push(...(await sweepRpcSandboxes()));
  if (out.length > 0) progress(`bench: removed leftovers of an earlier run: ${out.join(', ')}`);
  return out;
}

/** runBench runs every selected suite and returns the results (the caller writes and prints them). */
export async function runBench(args: Args, cfg: ModeConfig, progress: Progress): Promise<Results> {
  const t0 = new Date();
  const swept = await sweepLeftovers(progress);
  const image = await ensureImage();
  const machine = await machineFacts();
  progress(`bench: ${args.mode} run on ${machine.cores} cores, accelerator ${machine.accelerator.accel}; image ${image}; hako modes ${args.hakoModes.join(', ')}`);
  if (args.runtimes.includes('hako') && args.buildAssets) {
    const why = await prepareHakoAssets(progress, { kernel: args.buildKernel });
    if (why !== undefined) progress(`bench: ${why}`);
  }
  const avail = new Map<RuntimeName, Availability>();
  for (const name of args.runtimes) {
    const a = await availability(name);
    avail.set(name, a);
    if (!a.ok) progress(`bench: ${name} not measured: ${a.why}`);
  }
  const groups = hakoGroups();
  const results: Results = {
    format: FORMAT, mode: args.mode, startedAt: t0.toISOString(), finishedAt: '', durationS: 0, machine, config: cfg, image,
    invocations: invocations(args, cfg),
    hakoModes: args.hakoModes, modeSetup: [],
    start: {}, exec: {}, memory: {}, io: {}, density: {}, network: {}, netStart: {}, bootPath: {}, rpc: {}, notes: [],
    skipped: SUITES.filter((s) => !args.only.includes(s)), leftoversSwept: swept,
  };
  if (groups.length > 1) {
    results.notes.push(`containerd runs the hako shim of ${groups[0]!.root}, not this checkout (${groups[1]!.root}): each mode is set up with that checkout's CLI for the ctr rows and with this one's for \`hako run\` and rpc, because a template's key covers the guest root image, which embeds the agent bundle built in its checkout.`);
  }
  const on = (s: SuiteName): boolean => args.only.includes(s);
  const reps = (n: RuntimeName): number => args.reps ?? cfg.reps[n];
  // The baselines, suite by suite.
  for (const name of args.runtimes.filter((n) => n !== 'hako')) {
    const a = avail.get(name)!;
    const each = async <T>(suite: SuiteName, into: Partial<Record<string, T | ReturnType<typeof notMeasured>>>, fn: () => Promise<T>): Promise<void> => {
      if (!on(suite) || (suite === 'io' && !cfg.ioRuntimes.includes(name)) || (suite === 'density' && !cfg.densityRuntimes.includes(name))) return;
      if (!a.ok) { into[name] = notMeasured(a.why); return; }
      progress(`bench: ${suite} ${name}`);
      into[name] = await fn();
    };
    await each('start', results.start, () => measureStart(name, { reps: reps(name), warmup: cfg.warmup[name], progress }));
    await each('exec', results.exec, () => measureExec(name, { reps: reps(name), warmup: cfg.warmup[name], progress }));
    await each('memory', results.memory, () => measureMemory(name, { n: cfg.memoryN[name], settleMs: cfg.settleMs[name], deadlineMs: cfg.memoryDeadlineMs, progress }));
    await each('io', results.io, () => measureIo(name, { sizeMiB: cfg.ioMiB, reps: cfg.ioReps, dropHostCaches: args.dropCaches, progress }));
    await each('network', results.network, () => measureNetwork(name, { ...cfg.network, progress, ...netReps(args) }));
    await each('network', results.netStart, () => measureCtrNetStart(name, { reps: reps(name), warmup: cfg.warmup[name], progress }));
    await each('density', results.density, () => measureDensity(name, { ...cfg.density, progress }));
  }
  if (args.runtimes.includes('hako')) await runHako(args, cfg, avail.get('hako')!, groups, results, progress);
  const t1 = new Date();
  results.finishedAt = t1.toISOString();
  results.durationS = Math.round((t1.getTime() - t0.getTime()) / 100) / 10;
  return results;
}

async function runHako(args: Args, cfg: ModeConfig, avail: Availability, groups: HakoGroup[], results: Results, progress: Progress): Promise<void> {
  const on = (s: SuiteName): boolean => args.only.includes(s);
  const reps = args.reps ?? cfg.reps.hako;
  const warmup = cfg.warmup.hako;
  // io and density measure hako in template mode only.
  const ioIn = (mode: HakoMode): boolean => mode === 'template' && on('io') && cfg.ioRuntimes.includes('hako');
  const densityIn = (mode: HakoMode): boolean => mode === 'template' && on('density') && cfg.densityRuntimes.includes('hako');
  const networkIn = (mode: HakoMode): boolean => on('network') && cfg.network.hakoModes.includes(mode);
  // Every row a group owns in one mode, so a failed setup can say why each is missing.
  const rows = (g: HakoGroup, mode: HakoMode): Array<[Record<string, unknown>, string]> => {
    const out: Array<[Record<string, unknown>, string]> = [];
    const add = (cond: boolean, into: object, key: string): void => { if (cond) out.push([into as Record<string, unknown>, key]); };
    add(g.ctr && on('start'), results.start, hakoRow(mode));
    add(g.ctr && on('exec'), results.exec, hakoRow(mode));
    add(g.ctr && on('memory'), results.memory, hakoRow(mode));
    add(g.ctr && ioIn(mode), results.io, hakoRow(mode));
    add(g.ctr && densityIn(mode), results.density, hakoRow(mode));
    add(g.ctr && networkIn(mode), results.network, hakoRow(mode));
    add(g.ctr && networkIn(mode), results.netStart, hakoRow(mode));
    add(g.local && networkIn(mode), results.netStart, hakoRunRow(mode));
    add(g.local && on('start'), results.start, hakoRunRow(mode));
    add(g.local && on('boot'), results.bootPath, mode);
    add(g.local && on('rpc'), results.rpc, mode);
    return out;
  };
  if (!args.hakoModes.includes('template')) {
    const why = 'io and density measure hako in template mode only, and --hako-modes leaves template out';
    if (on('io')) results.io['hako-template'] = notMeasured(why);
    if (on('density')) results.density['hako-template'] = notMeasured(why);
  }
  for (const mode of args.hakoModes.filter((m) => on('network') && !networkIn(m))) {
    const why = `this ${args.mode} run's network suite measures hako in ${cfg.network.hakoModes.join(', ')} mode only`;
    results.network[hakoRow(mode)] = notMeasured(why);
    results.netStart[hakoRow(mode)] = notMeasured(why);
    results.netStart[hakoRunRow(mode)] = notMeasured(why);
  }
  for (const mode of args.hakoModes) {
    for (const g of groups) {
      const mine = rows(g, mode);
      if (mine.length === 0) continue;
      if (!avail.ok) {
        for (const [into, key] of mine) into[key] = notMeasured(avail.why);
        continue;
      }
      progress(`bench: hako ${mode} (${g.root}: ${g.serves})`);
      const s = await ModeSession.enter(mode, g, { poolSize: cfg.poolSize, poolFullTimeoutMs: cfg.poolFullTimeoutMs, initTimeoutMs: cfg.initTimeoutMs, progress });
      results.modeSetup.push(s.setup);
      try {
        if (s.setup.problem !== undefined) {
          for (const [into, key] of mine) into[key] = notMeasured(s.setup.problem);
          continue;
        }
        const waitReady = s.waitReady;
        const row = hakoRow(mode);
        if (g.ctr) {
          if (on('start')) results.start[row] = await measureStart('hako', { mode, reps, warmup, progress, waitReady });
          if (on('exec')) results.exec[row] = await measureExec('hako', { mode, reps, warmup, progress, waitReady });
          if (on('memory')) {
            results.memory[row] = await measureMemory('hako', {
              mode, n: cfg.memoryN.hako, settleMs: cfg.settleMs.hako, deadlineMs: cfg.memoryDeadlineMs, progress, waitReady,
              ...(s.daemonPid !== undefined ? { poolDaemonPid: s.daemonPid } : {}),
            });
          }
          if (ioIn(mode)) {
            progress('bench: io hako template');
            results.io[row] = await measureIo('hako', { sizeMiB: cfg.ioMiB, reps: cfg.ioReps, dropHostCaches: args.dropCaches, progress });
          }
          if (densityIn(mode)) {
            progress('bench: density hako template');
            results.density[row] = await measureDensity('hako', { ...cfg.density, progress });
          }
          if (networkIn(mode)) {
            progress(`bench: network hako ${mode}`);
            results.network[row] = await measureNetwork('hako', { ...cfg.network, ...netReps(args), mode, progress, waitReady });
            results.netStart[row] = await measureCtrNetStart('hako', { mode, reps, warmup, progress, waitReady });
          }
        }
        if (g.local) {
          if (on('start') || on('boot')) {
            const hr = await measureHakoRun({ mode, reps, warmup, progress, waitReady });
            if (on('start')) results.start[hakoRunRow(mode)] = hr.start;
            if (on('boot')) results.bootPath[mode] = hr.boot;
          }
          if (on('rpc')) results.rpc[mode] = await measureRpc({ mode, ...cfg.rpc, progress, waitReady });
          if (networkIn(mode)) results.netStart[hakoRunRow(mode)] = await measureHakoRunNetStart({ mode, reps, warmup, progress, waitReady });
        }
      } finally {
        await s.leave();
      }
    }
  }
}

/** netReps is --reps for the network suite's streams, when given. */
function netReps(args: Args): { reps?: number } {
  return args.reps !== undefined ? { reps: args.reps } : {};
}

function invocations(args: Args, cfg: ModeConfig): Record<string, string> {
  const out: Record<string, string> = Object.fromEntries(args.runtimes.filter((n) => n !== 'hako').map((n) => [n, runtime(n).how]));
  if (args.only.includes('network')) {
    if (args.runtimes.includes('runsc')) out['runsc (network suite)'] = netRuntime('runsc').how;
    out.network = 'a `ctr run --rm --cni … sleep 3600` container per row, kept in the foreground (ctr runs CNI DEL when it returns), measured with `ctr task exec … nc`; host side in node, over the bridge to the container\'s address';
    if (args.runtimes.includes('hako')) out['hako run (network suite)'] = `node bin/hako ${HAKO_RUN_NET_ARGS.join(' ')} against node bin/hako ${HAKO_RUN_NONE_ARGS.join(' ')}, interleaved`;
  }
  if (!args.runtimes.includes('hako')) return out;
  for (const mode of args.hakoModes) {
    const setup = mode === 'cold' ? '`[factory] template = false`'
      : mode === 'template' ? '`[factory] template = true`, after `hako factory init`'
        : `\`[factory] template = true\`, \`hako factory init\`, then \`hako factory serve --pool ${cfg.poolSize}\` as a child, its pool full before every timed start`;
    out[`hako ${mode}`] = `${MODE_DESCRIPTIONS[mode]}; set up by ${DROP_IN} with ${setup}; removed after the mode`;
  }
  out['hako (ctr)'] = runtime('hako').how;
  out['hako run'] = `node bin/hako ${HAKO_RUN_ARGS.join(' ')} (hako prints its timing lines at info)`;
  out.rpc = `in-process Sandbox.create (src/sandbox) with the configuration in force, ${cfg.rpc.warmup} untimed then ${cfg.rpc.calls} timed sequential sandbox.api.check() calls`;
  return out;
}
