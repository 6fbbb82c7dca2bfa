// containerd through `ctr`: make sure the daemon runs and the busybox image is
// imported, run/exec containers per runtime, and remove every container we made.

import { mkdtemp, rm, readFile, readdir, readlink, rmdir } from 'node:fs/promises';
import { cleanupSandbox } from '../../src/sandbox/index.js';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { runCmd, sleep, describeFailure, type CmdResult } from './proc.js';
import { sweepCniLeftovers } from './cni-leftovers.js';

/** IMAGE is the image every runtime runs. */
export const IMAGE = 'localhost/busybox:latest';

/** ID_PREFIX marks containers made by the benchmark, so leftovers can be swept. */
export const ID_PREFIX = 'hb-';

/** HAKO_BUSYBOX_ARCHIVE is where `hako image build` (src/image) leaves the busybox OCI archive. */
export const HAKO_BUSYBOX_ARCHIVE = '/var/cache/hako/images/busybox.tar';

/** ctr runs one ctr command with a deadline. */
export function ctr(args: readonly string[], timeoutMs = 60_000): Promise<CmdResult> {
  return runCmd(['ctr', ...args], { timeoutMs });
}

// "already exists": a restarted containerd still holds the half-made task of the interrupted call.
const CONTAINERD_GONE = /transport is closing|connection refused|failed to dial|error reading from server: EOF|context deadline exceeded|already exists/i;

/**
 * ctrRun runs `ctr run …` for container id; when containerd itself went away during the
 * call (other users restart it on this shared machine), it waits for containerd, removes
 * what was left of id and tries once more. `retried` says whether that happened.
 */
export async function ctrRun(args: readonly string[], id: string, timeoutMs: number): Promise<CmdResult & { retried: boolean }> {
  const r = await ctr(args, timeoutMs);
  if (r.code === 0 || !containerdWentAway(r.stderr)) return { ...r, retried: false };
  await waitForContainerd();
  await removeContainer(id);
  return { ...(await ctr(args, timeoutMs)), retried: true };
}

/** containerdWentAway reports whether a ctr error says containerd itself went away (or restarted) during the call. */
export function containerdWentAway(stderr: string): boolean {
  return CONTAINERD_GONE.test(stderr);
}

/** waitForContainerd waits (up to a minute) until containerd answers again. */
export async function waitForContainerd(): Promise<void> {
  for (let i = 0; i < 120 && (await ctr(['version'], 5_000).catch(() => undefined))?.code !== 0; i++) await sleep(500);
}

/** ensureContainerd makes sure containerd answers; it starts one (detached) when none runs and returns its pid so the caller can stop it. */
export async function ensureContainerd(): Promise<{ startedPid?: number }> {
  if ((await ctr(['version'], 10_000)).code === 0) return {};
  const child = spawn('containerd', [], { detached: true, stdio: 'ignore' });
  child.unref();
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    if ((await ctr(['version'], 5_000)).code === 0) return { startedPid: child.pid };
  }
  throw new Error('bench: containerd did not start (ctr version keeps failing)');
}

/** ensureImage imports the busybox image: hako's archive when built, else one made here with umoci. Returns where it came from. */
export async function ensureImage(): Promise<string> {
  if (existsSync(HAKO_BUSYBOX_ARCHIVE)) {
    const r = await ctr(['image', 'import', '--base-name', 'localhost/busybox', HAKO_BUSYBOX_ARCHIVE], 120_000);
    if (r.code !== 0) throw new Error(describeFailure(['ctr', 'image', 'import'], r));
    return `hako's ${HAKO_BUSYBOX_ARCHIVE}`;
  }
  const have = await ctr(['image', 'ls', '-q']);
  if (have.stdout.split('\n').includes(IMAGE)) return 'already in containerd';
  const dir = await mkdtemp(join(tmpdir(), 'hako-bench-image-'));
  try {
    const sh = [
      'set -e', 'cd "$1"',
      'umoci init --layout oci', 'umoci new --image oci:latest', 'umoci unpack --image oci:latest bundle',
      'mkdir -p bundle/rootfs/bin bundle/rootfs/tmp bundle/rootfs/proc bundle/rootfs/sys bundle/rootfs/dev bundle/rootfs/etc',
      'cp /bin/busybox bundle/rootfs/bin/busybox',
      // busybox --list names "busybox" itself: linking it would replace the binary by a loop.
      'for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "bundle/rootfs/bin/$a"; done',
      'umoci repack --image oci:latest bundle',
      'umoci config --image oci:latest --os linux --architecture amd64 --config.cmd sh --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin',
      '(cd oci && tar cf ../busybox.tar .)',
    ].join('\n');
    const b = await runCmd(['sh', '-c', sh, 'sh', dir], { timeoutMs: 120_000 });
    if (b.code !== 0) throw new Error(describeFailure(['umoci build'], b));
    const r = await ctr(['image', 'import', '--base-name', 'localhost/busybox', join(dir, 'busybox.tar')], 120_000);
    if (r.code !== 0) throw new Error(describeFailure(['ctr', 'image', 'import'], r));
    return 'built by the benchmark with umoci from /bin/busybox';
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** removeContainer kills and deletes a container and its task, escalating until it is gone. Never throws. */
export async function removeContainer(id: string): Promise<void> {
  await ctr(['task', 'kill', '-s', 'SIGKILL', id], 20_000).catch(() => undefined);
  for (let i = 0; i < 50; i++) {
    const t = await ctr(['task', 'ls'], 10_000).catch(() => undefined);
    const line = t?.stdout.split('\n').find((l) => l.split(/\s+/)[0] === id);
    if (line === undefined || /STOPPED/.test(line)) break;
    await sleep(200);
  }
  let del = await ctr(['task', 'rm', '-f', id], 60_000).catch(() => undefined);
  if (del !== undefined && del.code !== 0 && !/not found/i.test(del.stderr)) {
    // A task stuck in "created" (runsc refusing to start) cannot be signalled:
    // kill the processes its shim started, then delete again.
    await killShimChildren(id);
    await sleep(500);
    del = await ctr(['task', 'rm', '-f', id], 60_000).catch(() => undefined);
  }
  await ctr(['container', 'rm', id], 30_000).catch(() => undefined);
  await forceCleanup(id);
}

/** NAMESPACE is ctr's default namespace, where every benchmark container lives. */
const NAMESPACE = 'default';

/**
 * forceCleanup removes what a container can leave behind when containerd lost track
 * of it (another user restarting containerd mid-create): its shim and the shim's
 * children, hako's sandbox (QEMU, mounts, state), and the task bundle's rootfs mount.
 */
async function forceCleanup(id: string): Promise<void> {
  const procs = await listProcs();
  const shims = procs.filter((p) => isShimFor(p.argv, id));
  for (const shim of shims) {
    // Children first, so none is re-parented and missed.
    for (const p of descendants(procs, shim.pid).reverse()) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  if (existsSync(`/run/hako/sandboxes/${id}`)) {
    await cleanupSandbox(id).catch(() => undefined);
  }
  const bundle = `/run/containerd/io.containerd.runtime.v2.task/${NAMESPACE}/${id}`;
  if (existsSync(bundle)) {
    const mounts = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    if (mounts.split('\n').some((l) => l.split(' ')[4] === `${bundle}/rootfs`)) {
      await runCmd(['umount', `${bundle}/rootfs`], { timeoutMs: 30_000 }).catch(() => undefined);
    }
    // containerd removes a bundle whose shim is gone when it next deletes the task.
    await ctr(['task', 'rm', '-f', id], 30_000).catch(() => undefined);
    await rmdir(`${bundle}/rootfs`).catch(() => undefined);
  }
  if (shims.length > 0) await ctr(['snapshot', 'rm', id], 30_000).catch(() => undefined);
}

/**
 * sweep removes every container whose id starts with ID_PREFIX (leftovers of an interrupted run),
 * then what ctr's CNI left for benchmark containers that no longer exist (see cni-leftovers).
 */
export async function sweep(): Promise<string[]> {
  const r = await ctr(['container', 'ls', '-q']).catch(() => undefined);
  const ids = (r?.stdout ?? '').split('\n').map((s) => s.trim()).filter((s) => s.startsWith(ID_PREFIX));
  for (const id of ids) await removeContainer(id);
  const after = await ctr(['container', 'ls', '-q']).catch(() => undefined);
  // Without containerd's list, a lease may belong to a live container: leave them all.
  if (after?.code !== 0) return ids;
  const live = new Set(after.stdout.split('\n').map((s) => s.trim()));
  return [...ids, ...(await sweepCniLeftovers((id) => id.startsWith(ID_PREFIX) && !live.has(id)))];
}

/** ProcInfo is one host process: pid, parent and argv. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  argv: string[];
  exe: string;
}

/** listProcs reads every process's pid, ppid, argv and exe from /proc. */
export async function listProcs(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const [stat, cmdline] = await Promise.all([
        readFile(`/proc/${name}/stat`, 'utf8'),
        readFile(`/proc/${name}/cmdline`, 'utf8'),
      ]);
      // The comm field may hold spaces and parentheses: parse after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const exe = await readlink(`/proc/${name}/exe`).catch(() => '');
      out.push({ pid: Number(name), ppid: Number(rest[1]), argv: cmdline.split('\0').filter((s) => s !== ''), exe });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * isShimFor reports whether argv is a containerd shim v2 (any runtime) serving container
 * id: containerd starts every shim with `-namespace NS -id ID -address SOCKET`. The hako
 * shim runs as `node …/dist/src/shim/main.js …`, so the binary name alone is not enough.
 */
export function isShimFor(argv: readonly string[], id: string): boolean {
  const i = argv.indexOf('-id');
  return i > 0 && argv[i + 1] === id && argv.includes('-namespace') && argv.includes('-address');
}

/** descendants returns root and every process below it. */
export function descendants(procs: readonly ProcInfo[], root: number): ProcInfo[] {
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of procs) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const todo = procs.filter((p) => p.pid === root);
  while (todo.length > 0) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(byParent.get(p.pid) ?? []));
  }
  return out;
}

async function killShimChildren(id: string): Promise<void> {
  const procs = await listProcs();
  for (const shim of procs.filter((p) => isShimFor(p.argv, id))) {
    for (const p of descendants(procs, shim.pid)) {
      if (p.pid !== shim.pid) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  }
}
