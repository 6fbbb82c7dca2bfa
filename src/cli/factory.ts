// `hako factory init|status|destroy|serve`: build the VM template now, show templates and the
// warm pool, remove them (running clones keep working), and run the warm pool daemon.

import { readdir, readFile } from 'node:fs/promises';
import { Code, HakoError, errorf } from '../errors/index.js';
import { ensureAssets, formatElapsed } from '../image/index.js';
import {
  PoolDaemon, TemplateStore, ensureTemplate, factoryDir, poolSocket, poolStatus, templateKey, unmountOwnTmpfs,
  type TemplateInfo,
} from '../factory/index.js';
import { QemuHypervisor } from '../hypervisor/qemu/index.js';
import { sandboxRecipe, sandboxesDir, warmUpInputs } from '../sandbox/index.js';
import { flagBool, flagString, parseArgs } from './args.js';
import type { CliContext } from './context.js';
import { withStartSignals } from './run.js';
import { parseCpus, parseMemoryMiB } from './values.js';

const USAGE = `Usage: hako factory init [--force] [--cpus N] [--memory SIZE]
       hako factory status
       hako factory destroy
       hako factory serve [--pool N]

VM templates: hako starts each VM as a copy-on-write clone of a saved, warmed-up VM of the
same configuration, built on first use. init builds it now; status lists templates and the
warm pool; destroy removes them (running VMs keep working); serve keeps [factory] pool (or N)
restored, warm VMs ready to hand out, until it is stopped (Ctrl-C, SIGTERM).
`;

/** factoryCommand dispatches the factory subcommands. */
export async function factoryCommand(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'init':
      return initCommand(rest, ctx);
    case 'status':
      return statusCommand(rest, ctx);
    case 'destroy':
      return destroyCommand(rest, ctx);
    case 'serve':
      return serveCommand(rest, ctx);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      throw errorf(Code.INVALID_ARGUMENT, `hako factory: unknown subcommand ${sub === undefined ? '(none)' : JSON.stringify(sub)}; try hako factory --help`);
  }
}

function noPositionals(command: string, positionals: string[]): void {
  if (positionals.length > 0) throw errorf(Code.INVALID_ARGUMENT, `${command}: unexpected argument ${positionals[0]}`);
}

async function initCommand(argv: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force' }, { name: 'cpus', value: true }, { name: 'memory', short: 'm', value: true }], { command: 'hako factory init' });
  noPositionals('hako factory init', p.positionals);
  const cpus = flagString(p, 'cpus');
  const mem = flagString(p, 'memory');
  const size = { ...(cpus !== undefined ? { vcpus: parseCpus(cpus) } : {}), ...(mem !== undefined ? { memoryMiB: parseMemoryMiB(mem) } : {}) };
  const { config, log } = ctx;
  return withStartSignals(async (signal) => {
    const assets = await ensureAssets({ log, cacheDir: config.runtime.cacheDir, signal, onProgress: (e) => process.stderr.write(`hako: building ${e.asset} (${formatElapsed(e.elapsedMs)}): ${e.message}\n`) });
    const recipe = await sandboxRecipe(config, assets, size, log);
    const tk = await templateKey(recipe);
    const store = new TemplateStore(factoryDir(config.runtime.stateDir), log);
    if (flagBool(p, 'force')) await store.invalidate(tk.key, 'hako factory init --force');
    const hv = new QemuHypervisor({ binary: config.hypervisor.path, log });
    const started = Date.now();
    const { template: t, built } = await ensureTemplate(store, tk, {
      recipe, hv, warmUp: () => warmUpInputs(config, assets, log, signal), log, signal, bootTimeoutMs: config.agent.bootTimeoutMs,
    });
    process.stdout.write(built
      ? `template ${tk.key.slice(0, 12)} built in ${formatElapsed(Date.now() - started)}: ${t.dir}\n`
      : `template ${tk.key.slice(0, 12)} is ready (built ${t.meta.created}): ${t.dir}\n`);
    return 0;
  });
}

async function statusCommand(argv: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(argv, [], { command: 'hako factory status' });
  noPositionals('hako factory status', p.positionals);
  const { config, log } = ctx;
  const store = new TemplateStore(factoryDir(config.runtime.stateDir), log);
  const current = await currentKey(ctx).catch((err: unknown) => {
    log.debug('no current template key', { err });
    return undefined;
  });
  const templates = await store.list();
  const users = await templateUsers();
  const out: string[] = [];
  out.push(`templates in ${store.templatesDir} (factory.template = ${config.factory.template}):`);
  if (templates.length === 0) out.push('  none (the next start builds one, or run hako factory init)');
  for (const t of templates) out.push(...describeTemplate(t, current, users.get(`${t.dir}/ram`) ?? 0));
  const pool = await poolStatus(poolSocket(config.runtime.stateDir)).catch((err: unknown) => {
    out.push(`warm pool: the daemon did not answer (${HakoError.from(err).message})`);
    return null;
  });
  if (pool === undefined) out.push(`warm pool: no daemon (hako factory serve; [factory] pool = ${config.factory.pool})`);
  else if (pool !== null) {
    out.push(`warm pool: daemon pid ${pool.pid}, ${pool.ready} of ${pool.size} VMs ready, ${pool.starting} starting, ${pool.handedOut} handed out, template ${pool.key.slice(0, 12)}`);
  }
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

function describeTemplate(t: TemplateInfo, current: string | undefined, clones: number): string[] {
  const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
  const key = t.key.length === 64 ? t.key.slice(0, 12) : t.key;
  const state = t.problem !== undefined ? `unusable: ${t.problem}` : t.key === current ? 'current' : 'stale (no longer matches the configuration)';
  const lines = [`  ${key}  ${state}`];
  if (t.meta !== undefined) {
    const i = t.meta.inputs;
    lines.push(`    ${i.vcpus} vCPU, ${i.memoryMiB} MiB, built ${t.meta.created} in ${formatElapsed(t.meta.buildMs)}; root ${i.rootImage}`);
  }
  lines.push(`    size ${mib(t.fileBytes)}, in memory ${mib(t.residentBytes)} (shared by its clones); running clones: ${clones}`);
  return lines;
}

// currentKey is the key the default configuration would use now (assets already built).
async function currentKey(ctx: CliContext): Promise<string> {
  const assets = await ensureAssets({ log: ctx.log, cacheDir: ctx.config.runtime.cacheDir });
  return (await templateKey(await sandboxRecipe(ctx.config, assets, {}, ctx.log))).key;
}

/** templateUsers counts, per mapped file, the QEMU processes that map it (a clone maps its template's RAM). */
async function templateUsers(): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (!comm.startsWith('qemu-system')) continue;
    const maps = await readFile(`/proc/${pid}/maps`, 'utf8').catch(() => '');
    const seen = new Set<string>();
    for (const line of maps.split('\n')) {
      const path = line.slice(line.indexOf('/')).replace(/ \(deleted\)$/, '');
      if (line.includes('/') && path.endsWith('/ram') && !seen.has(path)) {
        seen.add(path);
        counts.set(path, (counts.get(path) ?? 0) + 1);
      }
    }
  }
  return counts;
}

async function destroyCommand(argv: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(argv, [], { command: 'hako factory destroy' });
  noPositionals('hako factory destroy', p.positionals);
  const { config, log } = ctx;
  const dir = factoryDir(config.runtime.stateDir);
  const pool = await poolStatus(poolSocket(config.runtime.stateDir)).catch(() => undefined);
  if (pool !== undefined) {
    process.kill(pool.pid, 'SIGTERM');
    for (let i = 0; i < 100 && (await poolStatus(poolSocket(config.runtime.stateDir)).catch(() => undefined)) !== undefined; i++) await new Promise((r) => setTimeout(r, 100));
    process.stdout.write(`stopped the warm pool daemon (pid ${pool.pid})\n`);
  }
  const n = await new TemplateStore(dir, log).destroy();
  const unmounted = await unmountOwnTmpfs(dir);
  process.stdout.write(`removed ${n} template${n === 1 ? '' : 's'}${unmounted ? ` and unmounted ${dir}` : ''}; running VMs keep their memory until they exit\n`);
  return 0;
}

async function serveCommand(argv: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(argv, [{ name: 'pool', value: true }], { command: 'hako factory serve' });
  noPositionals('hako factory serve', p.positionals);
  const { config, log } = ctx;
  const n = flagString(p, 'pool');
  const size = n !== undefined ? Number(n) : config.factory.pool;
  if (!Number.isInteger(size) || size < 1 || size > 64) {
    throw errorf(Code.INVALID_ARGUMENT, n !== undefined ? `hako factory serve: --pool ${JSON.stringify(n)} must be 1..64` : 'hako factory serve: the pool size is 0: set [factory] pool = N in the configuration, or pass --pool N');
  }
  if (!config.factory.template) throw errorf(Code.FAILED_PRECONDITION, 'hako factory serve: [factory] template = false; the warm pool is made of template clones');
  const assets = await ensureAssets({ log, cacheDir: config.runtime.cacheDir });
  const recipe = await sandboxRecipe(config, assets, {}, log);
  const daemon = new PoolDaemon({
    stateDir: config.runtime.stateDir, sandboxesDir: sandboxesDir(config.runtime.stateDir), size, recipe, log,
    warmUp: () => warmUpInputs(config, assets, log),
  });
  await daemon.start();
  process.stderr.write(`hako: warm pool of ${size} serving on ${poolSocket(config.runtime.stateDir)} (pid ${process.pid}); Ctrl-C stops it\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.once('SIGHUP', stop);
  });
  // A second signal during the stop is ignored: the stop must remove every pool VM.
  const ignore = (): void => {};
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, ignore);
  await daemon.stop();
  return 0;
}
