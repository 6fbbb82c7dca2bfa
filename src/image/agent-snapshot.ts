// Builds hako-agent's V8 startup snapshot in a throwaway VM that boots the staged root image:
// V8 loads a snapshot only on a CPU with the features it was built on, and the guest's differ.

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Accel, Vm, VmDescription, VmExit } from '../hypervisor/index.js';
import { QemuHypervisor } from '../hypervisor/qemu/index.js';
import type { Logger } from '../log/index.js';
import { SNAPSHOT_BUILD_PARAM } from './agent-launch.js';
import { BASE_KERNEL_CMDLINE } from './cmdline.js';
import { judgeSnapshot, readSnapshotFiles, SNAPSHOT_FILE, type SnapshotOutcome } from './snapshot-result.js';

/** BUILDER_SHARE_TAG must match the tag /etc/hako/snapshot-build mounts. */
export const BUILDER_SHARE_TAG = 'hakoshare';

/** DEFAULT_SNAPSHOT_TIMEOUT_MS bounds the builder VM: about 15 s under TCG on a quiet machine. */
export const DEFAULT_SNAPSHOT_TIMEOUT_MS = 5 * 60_000;

/** BuildSnapshotOptions configures buildAgentSnapshot. */
export interface BuildSnapshotOptions {
  kernel: string;
  /** image is the staged root image: it holds the snapshot bundle and /etc/hako/snapshot-build. */
  image: string;
  /** workDir is a fresh directory for the VM's runtime files and its share. */
  workDir: string;
  /** accel must be what sandboxes run with: the snapshot fits only that CPU's features. */
  accel: Accel;
  /** qemuBinary is the QEMU executable (default qemu-system-x86_64 on PATH). */
  qemuBinary?: string;
  log: Logger;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** BuiltSnapshot is an outcome, with the snapshot's path when it was built. */
export type BuiltSnapshot = SnapshotOutcome & { path?: string };

/**
 * buildAgentSnapshot boots the image with hako.snapshot=build, waits for the guest to power off
 * and judges what it left in the share. Failures other than cancellation are an outcome
 * ({ built: false, reason }), so the image can still be made with the plain bundle.
 */
export async function buildAgentSnapshot(opts: BuildSnapshotOptions): Promise<BuiltSnapshot> {
  const started = Date.now();
  const share = join(opts.workDir, 'share');
  const runtimeDir = join(opts.workDir, 'vm');
  await mkdir(share, { recursive: true, mode: 0o700 });
  await mkdir(runtimeDir, { recursive: true, mode: 0o700 });
  const desc: VmDescription = {
    id: 'hako-snapshot-build',
    vcpus: 1,
    memoryMiB: 512,
    kernel: { path: opts.kernel, params: [...BASE_KERNEL_CMDLINE.split(' '), SNAPSHOT_BUILD_PARAM] },
    accel: opts.accel,
    devices: [
      { kind: 'blk', id: 'root', path: opts.image, readonly: true },
      { kind: '9p', path: share, tag: BUILDER_SHARE_TAG, readonly: false },
      { kind: 'serial-console', logPath: join(opts.workDir, 'console.log') },
      // node reads entropy as it starts; without a source the guest's getrandom() may block.
      { kind: 'rng' },
    ],
    runtimeDir,
  };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS;
  let vm: Vm | undefined;
  try {
    vm = await new QemuHypervisor({ binary: opts.qemuBinary, log: opts.log }).start(desc, { signal: opts.signal, timeoutMs: 60_000 });
    const exit = await waitExit(vm, timeoutMs, opts.signal);
    const files = await readSnapshotFiles(share);
    const outcome = judgeSnapshot(files, Date.now() - started);
    if (outcome.built) return { ...outcome, path: join(share, SNAPSHOT_FILE) };
    // Without the script's own files, the guest console says how far the boot got.
    const consoleNote = files.buildStatus === undefined ? ` (guest console: ${await consoleTail(join(opts.workDir, 'console.log'))})` : '';
    const how = exit.reason === 'guest-shutdown' ? '' : `the builder VM did not power off cleanly (${exit.detail}); `;
    return { built: false, reason: `${how}${outcome.reason}${consoleNote}` };
  } catch (err) {
    const e = HakoError.from(err);
    if (opts.signal?.aborted || e.code === Code.CANCELLED) throw e;
    return { built: false, reason: e.message };
  } finally {
    // Cleanup gets its own deadlines: the caller's signal may be aborted already.
    if (vm !== undefined && vm.exit() === undefined) await vm.stop().catch(() => {});
  }
}

async function consoleTail(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.replace(/[^\x20-\x7e\n]/g, '').trim().split('\n').slice(-5).join(' | ').slice(-600) || 'empty';
}

/** waitExit waits for the VM to end, up to timeoutMs (DEADLINE_EXCEEDED) or an abort (CANCELLED). */
function waitExit(vm: Vm, timeoutMs: number, signal?: AbortSignal): Promise<VmExit> {
  return new Promise<VmExit>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      done();
      reject(errorf(Code.CANCELLED, 'building the agent snapshot: cancelled', signal?.reason));
    };
    const timer = setTimeout(() => {
      done();
      reject(errorf(Code.DEADLINE_EXCEEDED, `the snapshot builder VM did not finish within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    void vm.exited.then((exit) => {
      done();
      resolve(exit);
    });
  });
}
