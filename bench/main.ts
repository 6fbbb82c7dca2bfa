// `npm run bench [-- --quick|--full|--smoke] [--only=start,exec,...] [--runtimes=runc,runsc,hako]`:
// hako against runc and gVisor side by side; prints markdown, writes JSON + MD + SVG.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureContainerd, ensureImage, sweep } from './lib/ctr.js';
import { machineFacts } from './lib/machine.js';
import { repoRoot } from './lib/root.js';
import { availability, prepareHakoAssets, runtime, RUNTIMES, type RuntimeName } from './lib/runtimes.js';
import { SUITES, type Mode, type Results, type SuiteName } from './lib/results.js';
import { renderMarkdown } from './lib/report.js';
import { renderSvg } from './lib/chart.js';
import { notMeasured } from './lib/types.js';
import { modeConfig, type ModeConfig } from './config.js';
import { measureStart } from './suites/start.js';
import { measureExec } from './suites/exec.js';
import { measureMemory } from './suites/memory.js';
import { measureDensity } from './suites/density.js';
import { measureIo } from './suites/io.js';
import { measureHakoRun } from './suites/hako-run.js';

interface Args {
  mode: Mode;
  only: SuiteName[];
  runtimes: RuntimeName[];
  out: string;
  dropCaches: boolean;
  buildAssets: boolean;
  buildKernel: boolean;
  reps?: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { mode: 'full', only: [...SUITES], runtimes: [...RUNTIMES], out: join(repoRoot(), 'bench', 'results'), dropCaches: true, buildAssets: true, buildKernel: true };
  for (const arg of argv) {
    const [k, v] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (k === '--quick' || k === '--full' || k === '--smoke') a.mode = k.slice(2) as Mode;
    else if (k === '--only' && v) a.only = v.split(',').map((s) => s.trim()).filter((s): s is SuiteName => {
      if (!(SUITES as string[]).includes(s)) throw new Error(`--only: unknown suite ${s} (known: ${SUITES.join(', ')})`);
      return true;
    });
    else if (k === '--runtimes' && v) a.runtimes = v.split(',').map((s) => s.trim()).filter((s): s is RuntimeName => {
      if (!(RUNTIMES as string[]).includes(s)) throw new Error(`--runtimes: unknown runtime ${s} (known: ${RUNTIMES.join(', ')})`);
      return true;
    });
    else if (k === '--out' && v) a.out = v;
    else if (k === '--reps' && v) a.reps = Number(v);
    else if (k === '--no-drop-caches') a.dropCaches = false;
    else if (k === '--no-build') a.buildAssets = false;
    else if (k === '--no-kernel-build') a.buildKernel = false;
    else if (k === '--help' || k === '-h') {
      process.stdout.write('usage: npm run bench -- [--quick|--full|--smoke] [--only=start,boot,exec,memory,io,density] [--runtimes=runc,runsc,hako] [--out=DIR] [--reps=N] [--no-drop-caches] [--no-build (do not build missing hako guest assets)] [--no-kernel-build (build only the cheap ones)]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --help)`);
  }
  return a;
}

const progress = (line: string): void => void process.stderr.write(`${line}\n`);

async function run(args: Args, cfg: ModeConfig): Promise<Results> {
  const t0 = new Date();
  const swept = await sweep();
  if (swept.length > 0) progress(`bench: removed leftover containers ${swept.join(', ')}`);
  const image = await ensureImage();
  const machine = await machineFacts();
  progress(`bench: ${args.mode} run on ${machine.cores} cores, accelerator ${machine.accelerator.accel}; image ${image}`);
  const avail = new Map<RuntimeName, { ok: true } | { ok: false; why: string }>();
  if (args.runtimes.includes('hako') && args.buildAssets) {
    const why = await prepareHakoAssets(progress, { kernel: args.buildKernel });
    if (why !== undefined) progress(`bench: ${why}`);
  }
  for (const name of args.runtimes) {
    const a = await availability(name);
    avail.set(name, a);
    if (!a.ok) progress(`bench: ${name} not measured: ${a.why}`);
  }
  const results: Results = {
    format: 'hako-bench/1', mode: args.mode, startedAt: t0.toISOString(), finishedAt: '', durationS: 0, machine, config: cfg, image,
    invocations: Object.fromEntries([
      ...args.runtimes.map((n) => [n, runtime(n).how]),
      ...(args.runtimes.includes('hako') ? [['hako-run', 'node dist/src/cli/main.js --log-level info run --rm busybox -- true (hako prints its timing lines at info)']] : []),
    ]),
    start: {}, exec: {}, memory: {}, io: {}, density: {}, skipped: SUITES.filter((s) => !args.only.includes(s)), leftoversSwept: swept,
  };
  // Each suite runs every runtime in turn; an unavailable runtime gets its reason instead of a number.
  const each = async <T>(suite: SuiteName, names: readonly RuntimeName[], fn: (n: RuntimeName) => Promise<T>, into: Partial<Record<RuntimeName, T | ReturnType<typeof notMeasured>>>): Promise<void> => {
    if (!args.only.includes(suite)) return;
    for (const name of names) {
      if (!args.runtimes.includes(name)) continue;
      const a = avail.get(name)!;
      if (!a.ok) { into[name] = notMeasured(a.why); continue; }
      progress(`bench: ${suite} ${name}`);
      into[name] = await fn(name);
    }
  };
  const reps = (n: RuntimeName): number => args.reps ?? cfg.reps[n];
  await each('start', RUNTIMES, (n) => measureStart(n, { reps: reps(n), warmup: cfg.warmup[n], progress }), results.start);
  if ((args.only.includes('start') || args.only.includes('boot')) && args.runtimes.includes('hako')) {
    progress('bench: hako run (start latency and boot path)');
    const hr = await measureHakoRun({ reps: args.reps ?? cfg.reps.hako, warmup: cfg.warmup.hako, progress });
    if (args.only.includes('start')) results.start['hako-run'] = hr.start;
    if (args.only.includes('boot')) results.bootPath = hr.boot;
  }
  await each('exec', RUNTIMES, (n) => measureExec(n, { reps: reps(n), warmup: cfg.warmup[n], progress }), results.exec);
  await each('memory', RUNTIMES, (n) => measureMemory(n, { n: cfg.memoryN[n], settleMs: cfg.settleMs[n], deadlineMs: cfg.memoryDeadlineMs, progress }), results.memory);
  await each('io', cfg.ioRuntimes, (n) => measureIo(n, { sizeMiB: cfg.ioMiB, reps: cfg.ioReps, dropHostCaches: args.dropCaches, progress }), results.io);
  await each('density', cfg.densityRuntimes, (n) => measureDensity(n, { ...cfg.density, progress }), results.density);
  const t1 = new Date();
  results.finishedAt = t1.toISOString();
  results.durationS = Math.round((t1.getTime() - t0.getTime()) / 100) / 10;
  return results;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('bench: must run as root (it drives containerd, mounts and QEMU)');
  const cfg = modeConfig(args.mode);
  const containerd = await ensureContainerd();
  let results: Results | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    progress(`bench: ${sig}: removing benchmark containers`);
    void sweep().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    results = await run(args, cfg);
  } finally {
    await sweep();
    if (containerd.startedPid !== undefined) {
      try { process.kill(containerd.startedPid, 'SIGTERM'); } catch { /* gone */ }
    }
  }
  const md = renderMarkdown(results);
  await mkdir(args.out, { recursive: true });
  const base = join(args.out, `${results.startedAt.slice(0, 10)}-${args.mode}`);
  await writeFile(`${base}.json`, JSON.stringify(results, null, 2) + '\n');
  await writeFile(`${base}.md`, md);
  await writeFile(`${base}.svg`, renderSvg(results));
  process.stdout.write(md);
  progress(`bench: wrote ${base}.json, .md and .svg`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
