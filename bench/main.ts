// `npm run bench [-- --quick|--full|--smoke] [--only=…] [--runtimes=…] [--hako-modes=cold,template,pool]`:
// hako in three modes against runc and gVisor side by side; prints markdown, writes JSON + MD + SVG.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from './lib/args.js';
import { ensureContainerd, sweep } from './lib/ctr.js';
import { installExitGuard, leaveActiveSession } from './lib/mode-session.js';
import { renderMarkdown } from './lib/report.js';
import { renderSvg } from './lib/chart.js';
import { modeConfig } from './config.js';
import { runBench } from './run.js';
import { cleanupRpcSandboxes } from './suites/rpc.js';

const progress = (line: string): void => void process.stderr.write(`${line}\n`);

/** cleanUp removes everything a run may hold: the mode in force (daemon, drop-in), rpc sandboxes, hb- containers. */
async function cleanUp(): Promise<void> {
  await leaveActiveSession().catch((err: unknown) => progress(`bench: leaving the hako mode failed: ${(err as Error).message}`));
  await cleanupRpcSandboxes();
  await sweep();
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('bench: must run as root (it drives containerd, mounts and QEMU)');
  if (process.env.HAKO_CONFIG !== undefined) {
    // The shims containerd starts read /etc/hako; so must every hako the benchmark runs.
    progress(`bench: ignoring HAKO_CONFIG=${process.env.HAKO_CONFIG}: the modes are set by a drop-in in /etc/hako/config.d, which the shim reads`);
    delete process.env.HAKO_CONFIG;
  }
  const cfg = modeConfig(args.mode);
  installExitGuard();
  const containerd = await ensureContainerd();
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    progress(`bench: ${sig}: stopping the pool daemon, removing the drop-in and the benchmark's containers`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let results;
  try {
    results = await runBench(args, cfg, progress);
  } finally {
    await cleanUp();
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
