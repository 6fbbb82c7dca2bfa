// Builds the guest root: a read-only ext4 image (made with `mke2fs -d`, no loop
// mounts) holding busybox, node, crun, their libraries, init files and the agent.

import { access, chmod, copyFile, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Code, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { fileIdentity, keyOf, sha256File, shortHash, type HashInput } from './hash.js';
import { installDir, pathExists } from './install.js';
import { sharedLibraries } from './libs.js';
import { withLock } from './lock.js';
import { defaultAgentBundle, guestFilesDir, type CacheLayout } from './paths.js';
import { Progress, formatElapsed, type ProgressFn } from './progress.js';
import { run } from './run.js';

/** ROOT_BUILDER_VERSION changes the root key when this builder's output changes. */
export const ROOT_BUILDER_VERSION = '1';

/** Host binaries copied into the guest, at the same paths. */
export const GUEST_BINARIES = { busybox: '/bin/busybox', node: '/usr/bin/node', crun: '/usr/bin/crun' } as const;

/** GUEST_AGENT_PATH is where the agent bundle lives inside the guest. */
export const GUEST_AGENT_PATH = '/usr/lib/hako/hako-agent.mjs';

/**
 * GUEST_PTY_PATH is hako-pty, a small static C helper compiled at build time: Node in the
 * guest cannot allocate a pseudo-terminal, so the agent runs terminal processes under it.
 */
export const GUEST_PTY_PATH = '/usr/bin/hako-pty';
const PTY_SOURCE = 'hako-pty.c';

/**
 * GUEST_CTL_PATH is hako-guestctl, the agent's co-process for the system calls Node cannot make
 * (clock_settime, the RNG reseed ioctls, mount), compiled like hako-pty.
 */
export const GUEST_CTL_PATH = '/usr/bin/hako-guestctl';
const CTL_SOURCE = 'hako-guestctl.c';

/** GUEST_HELPERS are the C helpers compiled into the image: source file and guest path. */
const GUEST_HELPERS = [
  { source: PTY_SOURCE, guest: GUEST_PTY_PATH },
  { source: CTL_SOURCE, guest: GUEST_CTL_PATH },
] as const;

const INIT_FILES = [
  { name: 'inittab', guest: '/etc/inittab', mode: 0o644 },
  { name: 'rcS', guest: '/etc/hako/rcS', mode: 0o755 },
  { name: 'agent', guest: '/etc/hako/agent', mode: 0o755 },
] as const;

/** RootInputs are everything the root image is built from, and its key. */
export interface RootInputs {
  agentFile: string;
  /** libraries lists the host libraries of node and crun (ldd), loader included. */
  libraries: string[];
  hash: string;
}

/** rootInputs gathers the inputs and computes the key; it fails clearly if the agent bundle is missing. */
export async function rootInputs(opts: { agentFile?: string; signal?: AbortSignal } = {}): Promise<RootInputs> {
  const agentFile = opts.agentFile ?? defaultAgentBundle();
  try {
    await access(agentFile);
  } catch {
    throw errorf(
      Code.FAILED_PRECONDITION,
      `the guest agent bundle ${agentFile} is missing: run \`npm run build\` (it bundles src/guest/agent into dist/guest/hako-agent.mjs)`,
    );
  }
  for (const [name, path] of Object.entries(GUEST_BINARIES)) {
    try {
      await access(path);
    } catch {
      throw errorf(Code.FAILED_PRECONDITION, `${name} is missing at ${path}: the guest root copies it from the host`);
    }
  }
  const libraries: string[] = [];
  for (const bin of [GUEST_BINARIES.node, GUEST_BINARIES.crun]) {
    for (const lib of await sharedLibraries(bin, opts)) if (!libraries.includes(lib)) libraries.push(lib);
  }
  const parts: HashInput[] = [
    { label: 'kind', value: 'hako-root' },
    { label: 'builder', value: ROOT_BUILDER_VERSION },
    { label: 'agent', value: await sha256File(agentFile) },
  ];
  for (const f of INIT_FILES) parts.push({ label: `init:${f.name}`, value: await readFile(join(guestFilesDir(), f.name), 'utf8') });
  for (const h of GUEST_HELPERS) parts.push({ label: h.source, value: await readFile(join(guestFilesDir(), h.source), 'utf8') });
  for (const path of [...Object.values(GUEST_BINARIES), ...libraries]) parts.push({ label: 'file', value: await fileIdentity(path) });
  return { agentFile, libraries, hash: keyOf(parts) };
}

/** rootImagePath names the installed image for a key. */
export function rootImagePath(layout: CacheLayout, hash: string): string {
  return join(layout.rootDir(hash), 'root.img');
}

/** BuildRootOptions configures buildRootImage. */
export interface BuildRootOptions {
  layout: CacheLayout;
  log: Logger;
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  /** agentFile replaces the agent bundle (tests boot a test agent this way). */
  agentFile?: string;
}

/** buildRootImage returns the root image for the current inputs, building it when missing. */
export async function buildRootImage(opts: BuildRootOptions): Promise<string> {
  const inputs = await rootInputs(opts);
  const image = rootImagePath(opts.layout, inputs.hash);
  if (!opts.force && (await pathExists(image))) return image;
  const progress = new Progress('root', opts.log, opts.onProgress);
  await mkdir(opts.layout.locks, { recursive: true });
  return withLock(join(opts.layout.locks, 'root.lock'), {
    signal: opts.signal,
    timeoutMs: 20 * 60_000,
    onWait: () => progress.phase('wait', 'waiting for another root image build to finish'),
  }, async () => {
    if (!opts.force && (await pathExists(image))) return image;
    progress.phase('stage', `staging guest root ${shortHash(inputs.hash)}`);
    await installDir(opts.layout.rootDir(inputs.hash), async (tmp) => {
      const staging = join(tmp, 'staging');
      const files = await stageRoot(staging, inputs, opts.signal);
      progress.phase('mkfs', 'mke2fs -t ext4 -d (no loop mount)');
      const size = await makeExt4(staging, join(tmp, 'root.img'), files, inputs.hash, opts.signal);
      await rm(staging, { recursive: true, force: true });
      await writeFile(join(tmp, 'inputs.json'), JSON.stringify({
        builder: ROOT_BUILDER_VERSION, agent: inputs.agentFile, libraries: inputs.libraries,
        sizeBytes: size, builtAt: new Date().toISOString(),
      }, null, 2) + '\n');
    });
    const size = (await stat(image)).size;
    progress.phase('done', `root image ready: ${image} (${(size / 1048576).toFixed(0)} MiB) in ${formatElapsed(progress.elapsedMs())}`);
    return image;
  });
}

/** stageRoot lays out the guest's files under dir and returns how many entries it made. */
async function stageRoot(dir: string, inputs: RootInputs, signal?: AbortSignal): Promise<number> {
  let entries = 0;
  const mk = async (p: string, mode = 0o755): Promise<void> => {
    await mkdir(join(dir, p), { recursive: true });
    await chmod(join(dir, p), mode);
    entries++;
  };
  const link = async (target: string, p: string): Promise<void> => {
    await symlink(target, join(dir, p));
    entries++;
  };
  const put = async (src: string, p: string, mode: number): Promise<void> => {
    await mkdir(dirname(join(dir, p)), { recursive: true });
    await copyFile(src, join(dir, p));
    await chmod(join(dir, p), mode);
    entries++;
  };
  const write = async (p: string, text: string, mode = 0o644): Promise<void> => {
    await writeFile(join(dir, p), text, { mode });
    await chmod(join(dir, p), mode);
    entries++;
  };

  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'usr/lib/hako', 'usr/lib64', 'etc/hako', 'proc', 'sys', 'dev', 'run', 'mnt', 'var']) await mk(d);
  await mk('tmp', 0o1777);
  await mk('root', 0o700);
  // Debian is "usrmerged": ldd names /lib/... and /lib64/..., which live under /usr.
  await link('usr/lib', 'lib');
  await link('usr/lib64', 'lib64');
  await link('../run', 'var/run');
  await link('../tmp', 'var/tmp');
  await link('../proc/self/mounts', 'etc/mtab');
  // The root is read-only; whoever configures DNS writes /run/resolv.conf (rcS creates it empty).
  await link('../run/resolv.conf', 'etc/resolv.conf');

  await put(GUEST_BINARIES.busybox, 'bin/busybox', 0o755);
  // `busybox --install` cannot run on a read-only root, so the applet links are made here.
  const { stdout } = await run([GUEST_BINARIES.busybox, '--list-full'], { timeoutMs: 30_000, signal });
  for (const applet of stdout.split('\n').map((s) => s.trim()).filter((s) => s !== '')) {
    if (applet.startsWith('/') || applet.includes('..')) throw errorf(Code.INTERNAL, `busybox --list-full gave an odd path: ${applet}`);
    if (await pathExists(join(dir, applet), true)) continue;
    await mkdir(dirname(join(dir, applet)), { recursive: true });
    await link('/bin/busybox', applet);
  }

  await put(GUEST_BINARIES.node, 'usr/bin/node', 0o755);
  await put(GUEST_BINARIES.crun, 'usr/bin/crun', 0o755);
  for (const lib of inputs.libraries) await put(lib, lib.slice(1), 0o755);
  await put(inputs.agentFile, GUEST_AGENT_PATH.slice(1), 0o644);
  for (const h of GUEST_HELPERS) {
    await run(['gcc', '-static', '-Os', '-s', '-Wall', '-o', join(dir, h.guest.slice(1)), join(guestFilesDir(), h.source)], { timeoutMs: 120_000, signal });
    entries++;
  }
  for (const f of INIT_FILES) await put(join(guestFilesDir(), f.name), f.guest.slice(1), f.mode);

  await write('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await write('etc/group', 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n');
  await write('etc/hosts', '127.0.0.1\tlocalhost\n::1\tlocalhost\n');
  await write('etc/hostname', 'hako\n');
  await write('etc/hako/root-id', `${inputs.hash}\n`);
  // The agent reports crun's version; reading it here saves running crun at every boot.
  const crun = await run([GUEST_BINARIES.crun, '--version'], { timeoutMs: 30_000, signal });
  await write('etc/hako/crun-version', crun.stdout);
  return entries;
}

/** makeExt4 sizes and writes the ext4 image from the staging tree; returns its size in bytes. */
async function makeExt4(staging: string, image: string, entries: number, hash: string, signal?: AbortSignal): Promise<number> {
  const bytes = await treeBytes(staging);
  // 4 KiB blocks: each file wastes up to one block; add 10% and 16 MiB for metadata.
  const mib = Math.ceil((bytes * 1.1 + entries * 4096 + 16 * 1048576) / 1048576);
  const uuid = `${hash.slice(0, 8)}-${hash.slice(8, 12)}-${hash.slice(12, 16)}-${hash.slice(16, 20)}-${hash.slice(20, 32)}`;
  await run([
    'mke2fs', '-q', '-F', '-t', 'ext4',
    // No journal: the guest mounts it read-only and nothing ever writes to it.
    '-O', '^has_journal', '-m', '0', '-b', '4096', '-N', String(entries + 512),
    '-L', 'hako-root', '-U', uuid, '-E', 'root_owner=0:0',
    '-d', staging, image, `${mib}M`,
  ], { timeoutMs: 10 * 60_000, signal });
  await run(['e2fsck', '-fn', image], { timeoutMs: 5 * 60_000, signal });
  return mib * 1048576;
}

async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) total += await treeBytes(p);
    else if (entry.isFile()) total += (await stat(p)).size;
  }
  return total;
}
