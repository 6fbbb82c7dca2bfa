// Builds hako's guest kernel from Debian's linux-source tarball: tinyconfig plus
// src/image/kernel/hako.config, everything built in, checked, installed by hash.

import { availableParallelism } from 'node:os';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile, access } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Code, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { keyOf, shortHash } from './hash.js';
import { checkKconfig, describeProblems, parseKconfig } from './kernel-config.js';
import { withLock } from './lock.js';
import { kernelFragmentPath, type CacheLayout } from './paths.js';
import { Progress, formatElapsed, type ProgressFn } from './progress.js';
import { run } from './run.js';
import { installDir, pathExists } from './install.js';

/** KERNEL_BUILDER_VERSION changes the kernel key when this builder's output changes. */
export const KERNEL_BUILDER_VERSION = '1';

/** LINUX_SOURCE_PACKAGE is the Debian package whose tarball is built. */
export const LINUX_SOURCE_PACKAGE = 'linux-source-6.1';
/** KERNEL_TARBALL is the kernel source the guest kernel is built from. */
export const KERNEL_TARBALL = `/usr/src/${LINUX_SOURCE_PACKAGE}.tar.xz`;
const TARBALL = KERNEL_TARBALL;

// A cold build takes about 6 minutes on 2 cores; leave room for a slow shared host.
const COMPILE_TIMEOUT_MS = 90 * 60_000;
const HEARTBEAT_MS = 15_000;

/** KernelInputs are what the kernel key is computed from. */
export interface KernelInputs {
  sourceVersion: string;
  tarball: string;
  fragment: string;
  hash: string;
}

/** kernelInputs reads the source package version and the fragment and computes the key. */
export async function kernelInputs(opts: { signal?: AbortSignal } = {}): Promise<KernelInputs> {
  try {
    await access(TARBALL);
  } catch {
    throw errorf(Code.FAILED_PRECONDITION, `kernel source ${TARBALL} is missing: apt-get install ${LINUX_SOURCE_PACKAGE}`);
  }
  const { stdout } = await run(['dpkg-query', '-W', '-f=${Version}', LINUX_SOURCE_PACKAGE], {
    timeoutMs: 30_000,
    signal: opts.signal,
  });
  const sourceVersion = stdout.trim();
  if (sourceVersion === '') throw errorf(Code.FAILED_PRECONDITION, `${LINUX_SOURCE_PACKAGE} is not installed`);
  const fragment = await readFile(kernelFragmentPath(), 'utf8');
  const hash = keyOf([
    { label: 'kind', value: 'hako-kernel' },
    { label: 'source', value: `${LINUX_SOURCE_PACKAGE}=${sourceVersion}` },
    { label: 'fragment', value: fragment },
    { label: 'builder', value: KERNEL_BUILDER_VERSION },
  ]);
  return { sourceVersion, tarball: TARBALL, fragment, hash };
}

/** kernelPaths names the installed kernel files for a key. */
export function kernelPaths(layout: CacheLayout, hash: string): { dir: string; bzImage: string; config: string } {
  const dir = layout.kernelDir(hash);
  return { dir, bzImage: join(dir, 'bzImage'), config: join(dir, 'config') };
}

/** BuildKernelOptions configures buildKernel. */
export interface BuildKernelOptions {
  layout: CacheLayout;
  log: Logger;
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

/**
 * buildKernel returns the installed bzImage for the current inputs, building it
 * when missing (or when force is set). The extracted source and the build tree
 * stay under <cache>/build/linux-<version>/ so a fragment change rebuilds only
 * what it touches.
 */
export async function buildKernel(opts: BuildKernelOptions): Promise<string> {
  const inputs = await kernelInputs(opts);
  const target = kernelPaths(opts.layout, inputs.hash);
  if (!opts.force && (await pathExists(target.bzImage))) return target.bzImage;

  const progress = new Progress('kernel', opts.log, opts.onProgress);
  await mkdir(opts.layout.locks, { recursive: true });
  return withLock(
    join(opts.layout.locks, 'kernel.lock'),
    {
      signal: opts.signal,
      timeoutMs: COMPILE_TIMEOUT_MS,
      onWait: () => progress.phase('wait', 'waiting for another kernel build to finish'),
    },
    async () => {
      // Another process may have installed it while we waited for the lock.
      if (!opts.force && (await pathExists(target.bzImage))) return target.bzImage;
      progress.phase('start', `building kernel ${shortHash(inputs.hash)} from ${LINUX_SOURCE_PACKAGE} ${inputs.sourceVersion}`);
      const work = join(opts.layout.build, `linux-${inputs.sourceVersion.replace(/[^A-Za-z0-9.+_-]/g, '_')}`);
      const src = await extractSource(work, inputs, progress, opts.signal);
      const out = join(work, 'out');
      await configure(src, out, inputs.fragment, progress, opts.signal);
      await compile(src, out, progress, opts.signal);
      progress.phase('install', `installing kernel into ${target.dir}`);
      await installDir(target.dir, async (tmp) => {
        await copyFile(join(out, 'arch', 'x86', 'boot', 'bzImage'), join(tmp, 'bzImage'));
        await copyFile(join(out, '.config'), join(tmp, 'config'));
        const inputsNote = {
          source: `${LINUX_SOURCE_PACKAGE}=${inputs.sourceVersion}`,
          builder: KERNEL_BUILDER_VERSION,
          fragment: kernelFragmentPath(),
          builtAt: new Date().toISOString(),
        };
        await writeFile(join(tmp, 'inputs.json'), JSON.stringify(inputsNote, null, 2) + '\n');
      });
      const size = (await stat(target.bzImage)).size;
      progress.phase('done', `kernel ready: ${target.bzImage} (${(size / 1048576).toFixed(1)} MiB) in ${formatElapsed(progress.elapsedMs())}`);
      return target.bzImage;
    },
  );
}

async function extractSource(work: string, inputs: KernelInputs, progress: Progress, signal?: AbortSignal): Promise<string> {
  const top = basename(inputs.tarball).replace(/\.tar\.xz$/, '');
  const src = join(work, top);
  const marker = join(work, '.extracted');
  if (await pathExists(marker)) {
    progress.phase('extract', `using extracted source in ${src}`);
    return src;
  }
  progress.phase('extract', `extracting ${inputs.tarball} into ${work}`);
  await rm(work, { recursive: true, force: true });
  const tmp = `${work}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await run(['tar', '-xJf', inputs.tarball, '-C', tmp], { timeoutMs: 20 * 60_000, signal });
  await rename(tmp, work);
  await writeFile(marker, `${inputs.tarball} ${inputs.sourceVersion}\n`);
  return src;
}

async function configure(src: string, out: string, fragment: string, progress: Progress, signal?: AbortSignal): Promise<void> {
  progress.phase('configure', 'make tinyconfig + hako.config + olddefconfig');
  await mkdir(out, { recursive: true });
  const make = (target: string) => run(['make', '-s', `O=${out}`, target], { cwd: src, timeoutMs: 10 * 60_000, signal });
  await make('tinyconfig');
  const base = await readFile(join(out, '.config'), 'utf8');
  // Later assignments win in Kconfig, so appending the fragment overrides tinyconfig.
  await writeFile(join(out, '.config'), `${base}\n# --- hako.config ---\n${fragment}\n`);
  await make('olddefconfig');
  const final = parseKconfig(await readFile(join(out, '.config'), 'utf8'));
  const problems = checkKconfig(parseKconfig(fragment), final);
  if (problems.length > 0) {
    throw errorf(
      Code.FAILED_PRECONDITION,
      `kernel config: ${problems.length} option(s) of hako.config were dropped by olddefconfig ` +
        `(a dependency is missing; add it to src/image/kernel/hako.config):\n${describeProblems(problems)}`,
    );
  }
  progress.note(`kernel config checked: all ${parseKconfig(fragment).size} options of hako.config are set`);
}

async function compile(src: string, out: string, progress: Progress, signal?: AbortSignal): Promise<void> {
  const jobs = Math.max(1, availableParallelism());
  progress.phase('compile', `make -j${jobs} bzImage (about 6 minutes on 2 cores when cold)`);
  let built = 0;
  let last = '';
  const started = Date.now();
  const beat = setInterval(() => {
    progress.note(`compiling: ${built} steps done, last ${last || '-'} (${formatElapsed(Date.now() - started)})`);
  }, HEARTBEAT_MS);
  try {
    await run(['make', `-j${jobs}`, `O=${out}`, 'bzImage'], {
      cwd: src,
      timeoutMs: COMPILE_TIMEOUT_MS,
      signal,
      processGroup: true,
      // Fixed build identity: the same inputs give the same `uname -v`.
      env: { ...process.env, KBUILD_BUILD_USER: 'hako', KBUILD_BUILD_HOST: 'hako', KBUILD_BUILD_TIMESTAMP: 'hako' },
      onLine: (line, stream) => {
        const m = /^\s+([A-Z][A-Z0-9_]*)\s+(\S+)/.exec(line);
        if (stream === 'stdout' && m) {
          built++;
          last = m[2]!;
        }
      },
    });
  } finally {
    clearInterval(beat);
  }
  progress.note(`compiled in ${formatElapsed(Date.now() - started)} (${built} steps)`);
}
