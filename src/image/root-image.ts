// Builds the guest root: a read-only ext4 image (made with `mke2fs -d`, no loop
// mounts) holding busybox, node, crun, their libraries, init files, the agent and its snapshot.

import { access, chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Code, errorf } from '../errors/index.js';
import { probeAccel, type Accel, type AccelPreference } from '../hypervisor/index.js';
import type { Logger } from '../log/index.js';
import {
  AGENT_NODE_FLAGS, agentConf, GUEST_AGENT_CONF_PATH, GUEST_AGENT_PATH, GUEST_AGENT_SNAPSHOT_PATH, GUEST_SNAPSHOT_ENTRY_PATH,
} from './agent-launch.js';
import { buildAgentSnapshot } from './agent-snapshot.js';
import { fileIdentity, keyOf, sha256File, shortHash, type HashInput } from './hash.js';
import { installDir, pathExists } from './install.js';
import { sharedLibraries } from './libs.js';
import { withLock } from './lock.js';
import { defaultAgentBundle, defaultAgentSnapshotEntry, guestFilesDir, type CacheLayout } from './paths.js';
import { Progress, formatElapsed, type ProgressFn } from './progress.js';
import { run } from './run.js';
import type { SnapshotOutcome } from './snapshot-result.js';

/** ROOT_BUILDER_VERSION changes the root key when this builder's output changes. */
export const ROOT_BUILDER_VERSION = '2';

/** Host binaries copied into the guest, at the same paths. */
export const GUEST_BINARIES = { busybox: '/bin/busybox', node: '/usr/bin/node', crun: '/usr/bin/crun' } as const;

export { GUEST_AGENT_PATH, GUEST_AGENT_SNAPSHOT_PATH };

/**
 * GUEST_PTY_PATH is hako-pty, a small static C helper compiled at build time: Node in the
 * guest cannot allocate a pseudo-terminal, so the agent runs terminal processes under it.
 */
export const GUEST_PTY_PATH = '/usr/bin/hako-pty';
const PTY_SOURCE = 'hako-pty.c';

/**
 * GUEST_CTL_PATH is hako-guestctl, the agent's co-process for the system calls Node cannot make
 * (clock_settime, the RNG reseed ioctls, mount, rtnetlink), compiled like hako-pty.
 */
export const GUEST_CTL_PATH = '/usr/bin/hako-guestctl';
/** GUESTCTL_SOURCES are hako-guestctl's files in src/image/guest: the C files, then its header. */
export const GUESTCTL_SOURCES = ['hako-guestctl.c', 'guestctl-netlink.c', 'guestctl-net.c', 'guestctl-dump.c', 'guestctl.h'] as const;

/** GUEST_HELPERS are the C helpers compiled into the image: source files (headers too) and guest path. */
const GUEST_HELPERS = [
  { sources: [PTY_SOURCE], guest: GUEST_PTY_PATH },
  { sources: GUESTCTL_SOURCES, guest: GUEST_CTL_PATH },
] as const;

const INIT_FILES = [
  { name: 'inittab', guest: '/etc/inittab', mode: 0o644 },
  { name: 'rcS', guest: '/etc/hako/rcS', mode: 0o755 },
  { name: 'agent', guest: '/etc/hako/agent', mode: 0o755 },
  { name: 'snapshot-build', guest: '/etc/hako/snapshot-build', mode: 0o755 },
] as const;

/** DEFAULT_QEMU_BINARY runs the VM that builds the agent snapshot, as it runs sandboxes. */
export const DEFAULT_QEMU_BINARY = 'qemu-system-x86_64';

/** RootInputs are everything the root image is built from, and its key. */
export interface RootInputs {
  agentFile: string;
  /** snapshotEntry is the CommonJS bundle to snapshot; undefined: the guest runs agentFile only. */
  snapshotEntry: string | undefined;
  /** snapshotAccel is what the snapshot is built under (sandboxes must run the same), when there is one. */
  snapshotAccel: Accel | undefined;
  qemuBinary: string;
  /** libraries lists the host libraries of node and crun (ldd), loader included. */
  libraries: string[];
  hash: string;
}

/** RootInputOptions choose the agent; tests replace it (and then get no snapshot unless they name one). */
export interface RootInputOptions {
  agentFile?: string;
  snapshotEntry?: string;
  /** accel is the preference sandboxes use (default auto): the snapshot is built under its choice. */
  accel?: AccelPreference;
  /** qemuBinary runs the snapshot-building VM (default qemu-system-x86_64 on PATH). */
  qemuBinary?: string;
  signal?: AbortSignal;
}

/** rootInputs gathers the inputs and computes the key; it fails clearly if the agent bundle is missing. */
export async function rootInputs(opts: RootInputOptions = {}): Promise<RootInputs> {
  const agentFile = opts.agentFile ?? defaultAgentBundle();
  const snapshotEntry = await snapshotEntryFor(opts);
  const qemuBinary = opts.qemuBinary ?? DEFAULT_QEMU_BINARY;
  const snapshotAccel = snapshotEntry === undefined ? undefined : (await probeAccel(opts.accel ?? 'auto')).accel;
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
    { label: 'agent-snapshot', value: snapshotEntry === undefined ? 'none' : await sha256File(snapshotEntry) },
    { label: 'agent-node-flags', value: AGENT_NODE_FLAGS.join(' ') },
  ];
  // The snapshot fits the CPU it was built on: the accelerator and QEMU (its TCG CPU model).
  if (snapshotAccel !== undefined) {
    parts.push({ label: 'snapshot-accel', value: snapshotAccel.kind });
    parts.push({ label: 'snapshot-qemu', value: await binaryIdentity(qemuBinary) });
  }
  for (const f of INIT_FILES) parts.push({ label: `init:${f.name}`, value: await readFile(join(guestFilesDir(), f.name), 'utf8') });
  for (const source of GUEST_HELPERS.flatMap((h) => h.sources)) parts.push({ label: source, value: await readFile(join(guestFilesDir(), source), 'utf8') });
  for (const path of [...Object.values(GUEST_BINARIES), ...libraries]) parts.push({ label: 'file', value: await fileIdentity(path) });
  return { agentFile, snapshotEntry, snapshotAccel, qemuBinary, libraries, hash: keyOf(parts) };
}

/** binaryIdentity is fileIdentity of bin, looked up on PATH when it has no slash; its name if not found. */
async function binaryIdentity(bin: string): Promise<string> {
  const candidates = bin.includes('/') ? [bin] : (process.env.PATH ?? '/usr/bin:/bin').split(':').filter((d) => d !== '').map((d) => join(d, bin));
  for (const path of candidates) {
    if (await pathExists(path)) return fileIdentity(path);
  }
  return `not found: ${bin}`;
}

/**
 * snapshotEntryFor picks the bundle to snapshot: the one named, else the default one when the
 * default agent is used and the build made it. A replaced agent has no snapshot of its own.
 */
async function snapshotEntryFor(opts: RootInputOptions): Promise<string | undefined> {
  if (opts.snapshotEntry !== undefined) {
    if (!(await pathExists(opts.snapshotEntry))) throw errorf(Code.FAILED_PRECONDITION, `the agent snapshot bundle ${opts.snapshotEntry} is missing`);
    return opts.snapshotEntry;
  }
  if (opts.agentFile !== undefined) return undefined;
  const entry = defaultAgentSnapshotEntry();
  return (await pathExists(entry)) ? entry : undefined;
}

/** rootImagePath names the installed image for a key. */
export function rootImagePath(layout: CacheLayout, hash: string): string {
  return join(layout.rootDir(hash), 'root.img');
}

/** BuildRootOptions configures buildRootImage. */
export interface BuildRootOptions extends RootInputOptions {
  layout: CacheLayout;
  /** kernel boots the VM that builds the agent snapshot; required when there is one to build. */
  kernel?: string;
  log: Logger;
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
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
      let files = await stageRoot(staging, inputs, opts.signal);
      let snapshot: SnapshotOutcome = { built: false, reason: 'no snapshot bundle: a replaced agent, or dist/guest/hako-agent-snapshot.cjs was not built' };
      if (inputs.snapshotEntry !== undefined) {
        progress.phase('mkfs', 'mke2fs -t ext4 -d (no loop mount), without the agent snapshot');
        await makeExt4(staging, join(tmp, 'stage1.img'), files, inputs.hash, opts.signal);
        snapshot = await addSnapshot(staging, join(tmp, 'stage1.img'), inputs, opts, progress);
        await rm(join(tmp, 'stage1.img'), { force: true });
        if (snapshot.built) files++;
      } else {
        progress.note('no agent snapshot bundle: the guest starts the plain agent bundle');
      }
      progress.phase('mkfs', 'mke2fs -t ext4 -d (no loop mount)');
      const size = await makeExt4(staging, join(tmp, 'root.img'), files, inputs.hash, opts.signal);
      await rm(staging, { recursive: true, force: true });
      await writeFile(join(tmp, 'inputs.json'), JSON.stringify({
        builder: ROOT_BUILDER_VERSION, agent: inputs.agentFile, snapshotEntry: inputs.snapshotEntry ?? null,
        snapshot, libraries: inputs.libraries,
        sizeBytes: size, builtAt: new Date().toISOString(),
      }, null, 2) + '\n');
    });
    const size = (await stat(image)).size;
    progress.phase('done', `root image ready: ${image} (${(size / 1048576).toFixed(0)} MiB) in ${formatElapsed(progress.elapsedMs())}`);
    return image;
  });
}

/**
 * addSnapshot boots the staged image to build the agent's snapshot and copies it into the staging
 * tree. A snapshot that cannot be built is logged as a warning: the image then runs the bundle.
 */
async function addSnapshot(staging: string, stage1: string, inputs: RootInputs, opts: BuildRootOptions, progress: Progress): Promise<SnapshotOutcome> {
  if (opts.kernel === undefined || inputs.snapshotAccel === undefined) {
    throw errorf(Code.INTERNAL, 'buildRootImage: building the agent snapshot needs the kernel (ensureAssets passes it)');
  }
  progress.phase('snapshot', `building the agent's V8 startup snapshot in a VM (${inputs.snapshotAccel.kind})`);
  const work = await mkdtemp(join(tmpdir(), 'hako-snapshot-'));
  try {
    const outcome = await buildAgentSnapshot({
      kernel: opts.kernel, image: stage1, workDir: work, accel: inputs.snapshotAccel, qemuBinary: inputs.qemuBinary,
      log: opts.log, signal: opts.signal,
    });
    if (!outcome.built) {
      progress.warn(`the agent snapshot could not be built; the guest will start the plain agent bundle: ${outcome.reason}`);
      return outcome;
    }
    await copyFile(outcome.path!, join(staging, GUEST_AGENT_SNAPSHOT_PATH.slice(1)));
    await chmod(join(staging, GUEST_AGENT_SNAPSHOT_PATH.slice(1)), 0o644);
    progress.note(`agent snapshot ready (${(outcome.bytes / 1048576).toFixed(1)} MiB, built in ${formatElapsed(outcome.ms)})`);
    return { built: true, bytes: outcome.bytes, ms: outcome.ms };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
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
  if (inputs.snapshotEntry !== undefined) await put(inputs.snapshotEntry, GUEST_SNAPSHOT_ENTRY_PATH.slice(1), 0o644);
  await write(GUEST_AGENT_CONF_PATH.slice(1), agentConf());
  for (const h of GUEST_HELPERS) {
    const cFiles = h.sources.filter((f) => f.endsWith('.c')).map((f) => join(guestFilesDir(), f));
    await run(['gcc', '-static', '-Os', '-s', '-Wall', '-o', join(dir, h.guest.slice(1)), ...cFiles], { timeoutMs: 120_000, signal });
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
