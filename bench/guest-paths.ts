// Guest hot paths on one cold-booted VM through the real Sandbox and AgentClient: the Check round
// trip (idle and under guest load), container start (first and later), exec and stdout throughput.
// `node dist/bench/guest-paths.js [--checks=N --warmup=N --starts=N --execs=N --json --console=FILE]`, as root.

import { copyFile, readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { loadConfig } from '../src/config/index.js';
import { ensureAssets } from '../src/image/index.js';
import { Logger, memorySink } from '../src/log/index.js';
import { unpackImage } from '../src/storage/index.js';
import { Sandbox, defaultSpec, type Container } from '../src/sandbox/index.js';
import { summarize, round, type Summary } from './lib/stats.js';

interface Args {
  checks: number;
  warmup: number;
  starts: number;
  execs: number;
  json: boolean;
  /** console copies the guest console log (the agent's JSON lines) to this path before the VM stops. */
  console?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { checks: 50, warmup: 5, starts: 5, execs: 10, json: false };
  for (const arg of argv) {
    const [k, v] = arg.split('=', 2) as [string, string | undefined];
    const n = Number(v);
    if (k === '--checks' && n > 0) a.checks = n;
    else if (k === '--warmup' && n >= 0) a.warmup = n;
    else if (k === '--starts' && n > 0) a.starts = n;
    else if (k === '--execs' && n > 0) a.execs = n;
    else if (k === '--json') a.json = true;
    else if (k === '--console' && v) a.console = v;
    else throw new Error(`unknown argument ${arg} (--checks=N --warmup=N --starts=N --execs=N --json --console=FILE)`);
  }
  return a;
}

const out = (line: string): void => void process.stderr.write(`${line}\n`);

function fmt(s: Summary): string {
  return `median ${round(s.median, 2)} ms, min ${round(s.min, 2)}, max ${round(s.max, 2)}, n ${s.n}`;
}

function drain(r: Readable | null): void {
  r?.on('data', () => {});
}

/** rssMiB reads a process's resident set (VmRSS) in MiB. */
async function rssMiB(pid: number): Promise<number> {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? round(Number(m[1]) / 1024) : 0;
}

/** jitInfo reads TCG's translation-cache counters (HMP `info jit`) when the VM is a QEMU one. */
async function jitInfo(sb: Sandbox): Promise<Record<string, string>> {
  const vm = sb.vm as unknown as { qmp?: (cmd: string, args: Record<string, unknown>) => Promise<unknown> };
  if (typeof vm.qmp !== 'function') return {};
  const text = String(await vm.qmp('human-monitor-command', { 'command-line': 'info jit' }).catch(() => ''));
  const info: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*(gen code size|TB count|TB flush count|TB invalidate count)\s+(\S+)/.exec(line);
    if (m) info[m[1]!] = m[2]!;
  }
  return info;
}

async function checks(sb: Sandbox, n: number, warmup: number): Promise<Summary> {
  const samples: number[] = [];
  for (let i = 0; i < warmup + n; i++) {
    const t = performance.now();
    await sb.api.check({ timeoutMs: 10_000 });
    if (i >= warmup) samples.push(performance.now() - t);
  }
  return summarize(samples);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { config } = await loadConfig();
  const log = new Logger(memorySink(), 'info');
  const assets = await ensureAssets({ log, cacheDir: config.runtime.cacheDir });
  const image = await unpackImage({ ref: { path: assets.busyboxLayout, kind: 'dir' }, cacheDir: config.runtime.cacheDir, log });
  const base = { env: image.config.env, cwd: '/', user: { uid: 0, gid: 0 }, terminal: false, volumes: [] };
  const results: Record<string, unknown> = {};
  const t0 = performance.now();
  const sb = await Sandbox.create({ id: `bgp${process.pid}`, config, log, assets });
  results.bootMs = round(performance.now() - t0);
  out(`boot: ${results.bootMs} ms`);
  const code: Record<string, string | undefined> = { boot: (await jitInfo(sb))['gen code size'] };
  try {
    const idle = await checks(sb, args.checks, args.warmup);
    results.checkIdle = idle;
    code.checks = (await jitInfo(sb))['gen code size'];
    out(`Check, idle guest: ${fmt(idle)}`);

    // Container starts: each `true` container created, started, waited for and deleted.
    const create: number[] = [];
    const start: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < args.starts; i++) {
      const id = `s${i}`;
      const spec = defaultSpec({ ...base, hostname: id, args: ['true'] });
      const ta = performance.now();
      const c = await sb.createContainer({ id, spec, rootfs: await sb.mountImageRootfs(id, image.rootfs), stdin: false, terminal: false });
      const tb = performance.now();
      drain(c.init.stdout);
      drain(c.init.stderr);
      await c.start();
      const tc = performance.now();
      await c.init.wait();
      const td = performance.now();
      await c.delete();
      create.push(tb - ta);
      start.push(tc - tb);
      total.push(td - ta);
      out(`start #${i}: create ${round(tb - ta)} ms, start ${round(tc - tb)} ms, exited ${round(td - tc)} ms after start`);
    }
    code.starts = (await jitInfo(sb))['gen code size'];
    results.start = { first: round(start[0]!), later: start.length > 1 ? summarize(start.slice(1)) : undefined, create: summarize(create), createToExit: summarize(total) };

    // Execs of `true` into a sleeping container: ExecProcess alone, and start → wait resolved.
    const spec = defaultSpec({ ...base, hostname: 'ex', args: ['sleep', '3600'] });
    const c: Container = await sb.createContainer({ id: 'ex', spec, rootfs: await sb.mountImageRootfs('ex', image.rootfs), stdin: false, terminal: false });
    await c.start();
    const execStart: number[] = [];
    const execTotal: number[] = [];
    for (let i = 0; i < args.execs; i++) {
      const p = await c.exec({ execId: `x${i}`, process: { ...spec.process, args: ['true'] }, stdin: false, terminal: false });
      drain(p.stdout);
      drain(p.stderr);
      const ta = performance.now();
      await p.start();
      const tb = performance.now();
      await p.wait();
      const tc = performance.now();
      execStart.push(tb - ta);
      execTotal.push(tc - ta);
      out(`exec #${i}: ExecProcess ${round(tb - ta)} ms, until wait resolved ${round(tc - ta)} ms`);
    }
    code.execs = (await jitInfo(sb))['gen code size'];
    results.exec = { first: { start: round(execStart[0]!), total: round(execTotal[0]!) }, laterStart: args.execs > 1 ? summarize(execStart.slice(1)) : undefined, laterTotal: args.execs > 1 ? summarize(execTotal.slice(1)) : undefined };

    // Check under load: a CPU-bound loop in the container, and a stdout stream being pumped.
    const busy = await c.exec({ execId: 'busy', process: { ...spec.process, args: ['sh', '-c', 'while :; do :; done'] }, stdin: false, terminal: false });
    await busy.start();
    const cpu = await checks(sb, args.checks, args.warmup);
    results.checkCpuLoad = cpu;
    out(`Check, a busy loop in the guest: ${fmt(cpu)}`);
    await c.kill(9, { execId: 'busy' });
    const yes = await c.exec({ execId: 'yes', process: { ...spec.process, args: ['yes'] }, stdin: false, terminal: false });
    drain(yes.stdout);
    drain(yes.stderr);
    await yes.start();
    const io = await checks(sb, args.checks, args.warmup);
    results.checkStdoutLoad = io;
    out(`Check, \`yes\` streaming stdout to the host: ${fmt(io)}`);
    await c.kill(9, { execId: 'yes' });
    // Stdout throughput: 16 MB through ReadStdout, from the exec's start to its drained exit.
    const bytes = 16_000_000;
    const head = await c.exec({ execId: 'head', process: { ...spec.process, args: ['head', '-c', String(bytes), '/dev/zero'] }, stdin: false, terminal: false });
    let got = 0;
    head.stdout.on('data', (b: Buffer) => (got += b.length));
    drain(head.stderr);
    const th = performance.now();
    await head.start();
    await head.wait();
    const sec = (performance.now() - th) / 1000;
    results.stdoutMBps = round(got / 1e6 / sec, 2);
    out(`stdout throughput: ${results.stdoutMBps} MB/s (${got} bytes in ${round(sec, 2)} s)`);
    await c.delete({ force: true });
    results.qemuRssMiB = await rssMiB(sb.vm.pid);
    results.tcg = await jitInfo(sb);
    code.end = (results.tcg as Record<string, string>)['gen code size'];
    results.tcgCodeByPhase = code;
    out(`TCG code by phase: ${JSON.stringify(code)}`);
    out(`TCG: ${JSON.stringify(results.tcg)}`);
    out(`QEMU RSS at the end: ${results.qemuRssMiB} MiB`);
  } finally {
    if (args.console) await copyFile(sb.paths.console, args.console).catch((err: unknown) => out(`console log not copied: ${String(err)}`));
    await sb.stop();
  }
  if (args.json) process.stdout.write(`${JSON.stringify(results, (k, v) => (k === 'samples' ? undefined : v))}\n`);
}

main().catch((err: unknown) => {
  out(`guest-paths: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});
