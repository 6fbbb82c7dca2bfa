// Owning a `hako run` sandbox: boot it from a RunPlan, create the container, serve the control
// socket, and at the end stop everything, leaving only a small exit record unless --rm.

import { mkdir } from 'node:fs/promises';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { HakoConfig } from '../config/index.js';
import { Sandbox, sandboxPaths, writeState, type Container, type ExitInfo } from '../sandbox/index.js';
import type { Server } from '../ttrpc/index.js';
import { serveControl } from './control.js';
import type { RunPlan } from './plan.js';

/** OWNER_ANNOTATION marks sandboxes owned by the CLI (`hako rm -f` may end their owner). */
export const OWNER_ANNOTATION = 'hako.owner';

/** Owned is a running `hako run` sandbox and its container (created, not started). */
export interface Owned {
  sandbox: Sandbox;
  container: Container;
  /** removeRequested is set when `hako rm -f` asked the owner to remove everything. */
  readonly removeRequested: boolean;
  /** onRemoveRequest registers what to do when `hako rm -f` arrives (default: SIGKILL the container). */
  onRemoveRequest(fn: () => void): void;
  /** finish stops the sandbox; without --rm (and without rm -f) it leaves an exit record for `hako ps`. */
  finish(exit?: ExitInfo, error?: HakoError): Promise<void>;
}

/** startOwned boots the sandbox of plan and creates its container; on failure nothing is left. */
export async function startOwned(plan: RunPlan, ctx: { config: HakoConfig; log: Logger; signal?: AbortSignal }): Promise<Owned> {
  const annotations: Record<string, string> = {
    [OWNER_ANNOTATION]: 'cli',
    image: plan.image,
    command: plan.spec.process.args.join(' '),
    rm: String(plan.rm),
    detached: String(plan.detach),
  };
  const sandbox = await Sandbox.create({
    id: plan.id, config: ctx.config, log: ctx.log, vcpus: plan.vcpus, memoryMiB: plan.memoryMiB,
    assets: plan.assets, annotations, hostname: plan.hostname, signal: ctx.signal,
    cni: plan.network === 'hako' ? { ports: plan.ports } : undefined,
    etc: plan.etc,
  });
  let control: Server | undefined;
  let removeRequested = false;
  let onRemove: () => void = () => {};
  try {
    const rootfs = plan.lower !== undefined ? await sandbox.mountImageRootfs(plan.id, plan.lower) : plan.rootfsDir!;
    const container = await sandbox.createContainer({
      id: plan.id, spec: plan.spec, rootfs, stdin: plan.interactive, terminal: plan.tty, signal: ctx.signal,
    });
    control = await serveControl({
      sandbox,
      initProcess: plan.spec.process,
      log: ctx.log,
      onDestroy: () => {
        removeRequested = true;
        onRemove();
      },
    });
    const ctl = control;
    onRemove = () => {
      container.kill(9, { all: true }).catch(() => void sandbox.stop().catch(() => {}));
    };
    return {
      sandbox,
      container,
      get removeRequested() {
        return removeRequested;
      },
      onRemoveRequest(fn) {
        onRemove = fn;
      },
      async finish(exit, error) {
        await ctl.close().catch(() => {});
        await sandbox.stop();
        if (plan.rm || removeRequested) return;
        await writeExitRecord(ctx.config, plan, sandbox, exit, error).catch((err: unknown) => ctx.log.warn('exit record not written', { err }));
      },
    };
  } catch (err) {
    await control?.close().catch(() => {});
    await sandbox.stop().catch((e: unknown) => ctx.log.error('cleanup after a failed container create', { err: e }));
    if (ctx.signal?.aborted) throw errorf(Code.CANCELLED, 'cancelled', err);
    throw err;
  }
}

/** writeExitRecord leaves <state>/sandboxes/<id>/state.json for a stopped container: no VM, no mounts. */
async function writeExitRecord(config: HakoConfig, plan: RunPlan, sandbox: Sandbox, exit?: ExitInfo, error?: HakoError): Promise<void> {
  const paths = sandboxPaths(config.runtime.stateDir, plan.id);
  await mkdir(paths.dir, { mode: 0o700 });
  await writeState(paths.state, {
    version: 1,
    id: plan.id,
    status: error ? 'failed' : 'stopped',
    created: sandbox.timings.startedAt.toISOString(),
    ownerPid: 0,
    qemuPid: 0,
    containers: [{
      id: plan.id, status: 'stopped', pid: 0, mounts: [],
      ...(exit ? { exitStatus: exit.exitStatus, exitedAt: exit.exitedAt.toISOString() } : {}),
    }],
    annotations: { [OWNER_ANNOTATION]: 'cli', image: plan.image, command: plan.spec.process.args.join(' ') },
    ...(error ? { error: error.message } : {}),
  });
}
