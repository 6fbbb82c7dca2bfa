// The runtimes compared: runc (the reference), gVisor's runsc through the runc shim
// with a --network=none wrapper, and hako's containerd shim; each knows how ctr selects it.

import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { assetStatus, ensureAssets } from '../../src/image/index.js';
import { Logger, streamSink } from '../../src/log/index.js';
import { repoRoot } from './root.js';
import { runCmd } from './proc.js';

/** RuntimeName names a runtime driven through containerd. */
export type RuntimeName = 'runc' | 'runsc' | 'hako';

/** RUNTIMES is the fixed order of every table. */
export const RUNTIMES: readonly RuntimeName[] = ['runc', 'runsc', 'hako'];

/** Runtime is how `ctr run` selects one runtime, and how long one operation may take. */
export interface Runtime {
  name: RuntimeName;
  /** ctrArgs go right after `ctr run`. */
  ctrArgs: string[];
  /** timeoutMs bounds one start/exec (VMs under TCG are slow). */
  timeoutMs: number;
  /** how documents the exact invocation for the report. */
  how: string;
}

/** runscWrapper is bench/runsc-net-none (runsc with --network=none). */
export function runscWrapper(): string {
  return join(repoRoot(), 'bench', 'runsc-net-none');
}

/** runtime returns the definition of name. */
export function runtime(name: RuntimeName): Runtime {
  switch (name) {
    case 'runc':
      return { name, ctrArgs: ['--runtime', 'io.containerd.runc.v2'], timeoutMs: 60_000, how: 'ctr run --runtime io.containerd.runc.v2 (runc)' };
    case 'runsc':
      return {
        name,
        ctrArgs: ['--runtime', 'io.containerd.runc.v2', '--runc-binary', runscWrapper()],
        timeoutMs: 60_000,
        how: 'ctr run --runtime io.containerd.runc.v2 --runc-binary bench/runsc-net-none (exec /usr/bin/runsc --network=none "$@"; default platform)',
      };
    case 'hako': {
      if (shimOnPath() !== undefined || !existsSync(repoShim())) {
        return { name, ctrArgs: ['--runtime', 'io.containerd.hako.v2'], timeoutMs: 180_000, how: 'ctr run --runtime io.containerd.hako.v2 (containerd-shim-hako-v2 on PATH)' };
      }
      // Not installed on PATH yet (`npm run setup` links it): containerd 1.6 also takes the shim's absolute path.
      return { name, ctrArgs: ['--runtime', repoShim()], timeoutMs: 180_000, how: `ctr run --runtime ${repoShim()} (the shim of this checkout by absolute path; not on PATH)` };
    }
  }
}

const SHIM = 'containerd-shim-hako-v2';

function repoShim(): string {
  return join(repoRoot(), 'bin', SHIM);
}

/** shimOnPath returns where containerd-shim-hako-v2 is on PATH (containerd resolves io.containerd.hako.v2 there), if anywhere. */
export function shimOnPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, SHIM))) return join(dir, SHIM);
  }
  return undefined;
}

/**
 * shimCheckout is the hako checkout whose code containerd runs for io.containerd.hako.v2: the
 * PATH shim's (bin/containerd-shim-hako-v2 loads the dist/ next to it) or this one. Its CLI must
 * set up a mode for the ctr rows: a template's key covers the guest root image, which embeds the
 * agent bundle built in that checkout, so another checkout's templates and pool do not match it.
 */
export function shimCheckout(): string {
  const onPath = runtime('hako').ctrArgs[1] === 'io.containerd.hako.v2' ? shimOnPath() : undefined;
  if (onPath === undefined) return repoRoot();
  try {
    const root = dirname(dirname(realpathSync(onPath)));
    return existsSync(join(root, 'dist', 'src', 'cli', 'main.js')) ? root : repoRoot();
  } catch {
    return repoRoot();
  }
}

/** Availability says whether a runtime can be measured, and if not, why. */
export type Availability = { ok: true } | { ok: false; why: string };

/** hakoAssetsProblem returns why hako's guest assets are not ready, or undefined when they are (or cannot be checked). */
export async function hakoAssetsProblem(): Promise<string | undefined> {
  try {
    const status = await assetStatus();
    const bad = status.filter((s) => s.state !== 'ready');
    if (bad.length > 0) return `guest assets not ready: ${bad.map((s) => `${s.asset}: ${s.detail}`).join('; ')}`;
  } catch (err) {
    return `cannot check guest assets: ${(err as Error).message}`;
  }
  return undefined;
}

/** prepareHakoAssets builds hako's missing guest assets (kernel unless opts.kernel is false, root image, busybox) before anything is timed; returns why not, on failure. */
export async function prepareHakoAssets(progress: (line: string) => void, opts: { kernel: boolean }): Promise<string | undefined> {
  if ((await hakoAssetsProblem()) === undefined) return undefined;
  if (!opts.kernel) {
    const kernel = (await assetStatus().catch(() => [])).find((s) => s.asset === 'kernel');
    if (kernel?.state !== 'ready') return `not building the guest kernel (--no-kernel-build): ${kernel?.detail ?? 'unknown state'}`;
  }
  progress('bench: building hako guest assets first (cached afterwards; a kernel build takes minutes)');
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 40 * 60_000);
  try {
    await ensureAssets({ log: new Logger(streamSink(process.stderr), 'warn'), signal: ac.signal, onProgress: (e) => progress(`  assets: ${e.asset} ${e.phase}: ${e.message}`) });
    return undefined;
  } catch (err) {
    return `building hako's guest assets failed: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}

/** availability checks the static preconditions of a runtime (binaries present); a real run is the final check. */
export async function availability(name: RuntimeName): Promise<Availability> {
  switch (name) {
    case 'runc':
      return (await runCmd(['runc', '--version'], { timeoutMs: 10_000 }).catch(() => undefined))?.code === 0
        ? { ok: true } : { ok: false, why: 'runc is not installed' };
    case 'runsc':
      if (!existsSync('/usr/bin/runsc')) return { ok: false, why: '/usr/bin/runsc is not installed (apt-get install runsc)' };
      return { ok: true };
    case 'hako': {
      if (shimOnPath() === undefined && !existsSync(repoShim())) return { ok: false, why: 'containerd-shim-hako-v2 is neither on PATH nor in bin/ (src/shim not landed)' };
      if (!existsSync(join(repoRoot(), 'dist', 'src', 'shim', 'main.js'))) return { ok: false, why: 'the shim is not built (dist/src/shim/main.js missing)' };
      const assets = await hakoAssetsProblem();
      return assets === undefined ? { ok: true } : { ok: false, why: assets };
    }
  }
}

/** hakoCli returns the argv prefix that runs the hako CLI from this checkout, or why it cannot. */
export async function hakoCli(): Promise<{ argv: string[] } | { why: string }> {
  const main = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(main)) return { why: 'the hako CLI is not built (dist/src/cli/main.js missing: src/cli not landed or not built)' };
  const assets = await hakoAssetsProblem();
  if (assets !== undefined) return { why: assets };
  // bin/hako, as users run it (it loads the CLI's one-file bundle when the build made one).
  return { argv: [process.execPath, join(repoRoot(), 'bin', 'hako')] };
}
