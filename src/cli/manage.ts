// `hako ps`, `hako kill` and `hako rm`: list containers from /run/hako/sandboxes, signal one
// through its owner, and remove one (asking its owner, or cleaning up directly when it is gone).

import { Code, HakoError, errorf } from '../errors/index.js';
import { cleanupSandbox, listSandboxIds, pidAlive, sandboxPaths } from '../sandbox/index.js';
import { flagBool, parseArgs } from './args.js';
import type { CliContext } from './context.js';
import { connectControl } from './control.js';
import { resolveId, summarize } from './lookup.js';
import { OWNER_ANNOTATION } from './owner.js';
import { parseSignal } from './values.js';

function ago(iso: string | undefined): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (!Number.isFinite(t)) return '-';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('').trimEnd()).join('\n') + '\n';
}

/** psCommand implements `hako ps`: every sandbox with its status and whether its processes live. */
export async function psCommand(argv: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(argv, [{ name: 'all', short: 'a' }, { name: 'quiet', short: 'q' }], { command: 'hako ps' });
  if (p.positionals.length > 0) throw errorf(Code.INVALID_ARGUMENT, `hako ps: unexpected argument ${p.positionals[0]}`);
  const ids = await listSandboxIds(ctx.config.runtime.stateDir);
  const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'OWNER', 'QEMU']];
  for (const id of ids) {
    const s = await summarize(ctx.config.runtime.stateDir, id);
    if (flagBool(p, 'quiet')) {
      process.stdout.write(`${id}\n`);
      continue;
    }
    const a = s.state?.annotations ?? {};
    const cmd = (a.command ?? '').length > 30 ? `${a.command!.slice(0, 27)}...` : (a.command ?? '');
    const owner = s.state?.ownerPid ? `${s.state.ownerPid}${s.ownerAlive ? '' : ' (gone)'}` : '-';
    const qemu = s.state?.qemuPid ? `${s.state.qemuPid}${s.qemuAlive ? '' : ' (gone)'}` : '-';
    rows.push([id, a.image ?? (a[OWNER_ANNOTATION] ? '-' : 'containerd'), JSON.stringify(cmd), ago(s.state?.created), s.status, owner, qemu]);
  }
  if (!flagBool(p, 'quiet')) process.stdout.write(table(rows));
  return 0;
}

/** killCommand implements `hako kill ID [SIGNAL]` (default KILL). */
export async function killCommand(argv: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(argv, [{ name: 'all', short: 'a' }], { command: 'hako kill' });
  const [target, sigText] = p.positionals;
  if (target === undefined || p.positionals.length > 2) throw errorf(Code.INVALID_ARGUMENT, 'usage: hako kill CONTAINER [SIGNAL]');
  const signal = parseSignal(sigText ?? 'KILL');
  const id = await resolveId(ctx.config.runtime.stateDir, target);
  const conn = await connectControl(sandboxPaths(ctx.config.runtime.stateDir, id).control, ctx.log).catch(async (err: unknown) => {
    const s = await summarize(ctx.config.runtime.stateDir, id);
    throw errorf(Code.FAILED_PRECONDITION, `container ${id} is not running (${s.status})`, err);
  });
  try {
    await conn.signalProcess({ containerId: id, execId: '', signal, all: flagBool(p, 'all') }, { timeoutMs: ctx.config.agent.timeoutMs });
  } catch (err) {
    if (HakoError.from(err).code === Code.NOT_FOUND) throw errorf(Code.FAILED_PRECONDITION, `container ${id} is not running (it has exited)`, err);
    throw err;
  } finally {
    conn.close();
  }
  return 0;
}

/** rmCommand implements `hako rm [-f] ID...`. */
export async function rmCommand(argv: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force', short: 'f' }], { command: 'hako rm' });
  if (p.positionals.length === 0) throw errorf(Code.INVALID_ARGUMENT, 'usage: hako rm [-f] CONTAINER...');
  let failed = 0;
  for (const target of p.positionals) {
    try {
      const id = await resolveId(ctx.config.runtime.stateDir, target);
      await removeOne(id, flagBool(p, 'force'), ctx);
      process.stdout.write(`${id}\n`);
    } catch (err) {
      failed++;
      process.stderr.write(`hako: rm ${target}: ${HakoError.from(err).message}\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}

async function removeOne(id: string, force: boolean, ctx: CliContext): Promise<void> {
  const stateDir = ctx.config.runtime.stateDir;
  const s = await summarize(stateDir, id);
  const ownerPid = s.state?.ownerPid ?? 0;
  if (s.ownerAlive && ownerPid !== process.pid) {
    if (s.state?.annotations[OWNER_ANNOTATION] !== 'cli') {
      throw errorf(Code.FAILED_PRECONDITION, `container ${id} belongs to another owner (pid ${ownerPid}, e.g. the containerd shim); remove it there`);
    }
    if (!force) throw errorf(Code.FAILED_PRECONDITION, `container ${id} is ${s.status}: stop it first (hako kill ${id}) or use hako rm -f`);
    // Ask the owner to remove everything itself; it knows its mounts and its VM. An owner still
    // starting has no control socket yet: SIGTERM makes it cancel the start and clean up.
    try {
      const conn = await connectControl(sandboxPaths(stateDir, id).control, ctx.log);
      await conn.destroySandbox({ timeoutMs: 5000 }).finally(() => conn.close());
    } catch (err) {
      ctx.log.debug('owner did not take the remove request; sending SIGTERM', { err });
      try {
        process.kill(ownerPid, 'SIGTERM');
      } catch {
        // gone meanwhile
      }
    }
    const deadline = Date.now() + 20_000;
    while ((await pidAlive(ownerPid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (await pidAlive(ownerPid)) {
      ctx.log.warn('owner did not exit; killing it', { pid: ownerPid });
      try {
        process.kill(ownerPid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
  await cleanupSandbox(id, { stateDir, log: ctx.log });
}
