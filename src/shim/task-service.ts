// containerd.task.v2.Task for one shim: containers of one group (pod) in one sandbox VM.
// Handlers validate, find the process, drive the sandbox and publish events in order.

import { writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { AnySchema, timestampFromDate, UInt32ValueSchema, type Any } from '@bufbuild/protobuf/wkt';
import { Code, HakoError, isUnavailable } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { CallContext, ServiceImpl } from '../ttrpc/index.js';
import type { Task } from '../protocols/generated/containerd/shim_pb.js';
import { Status } from '../protocols/generated/containerd/task-types_pb.js';
import { podNetns, readBundleSpec, validateProcess, validateSpec, type OciSpec } from './bundle-spec.js';
import { taskEvents, type EventSink } from './events.js';
import { metricsAny, type ContainerStats } from './metrics.js';
import { mountRootfs, unmountAll } from './rootfs.js';
import { hasOomSource, type ExitInfo, type SandboxBackend, type SandboxContainer, type ShimSandbox } from './sandbox-port.js';
import { HostIO, type StdioPaths } from './stdio.js';
import { TaskProcess } from './task-process.js';

/** PROCESS_SPEC_TYPE_URL is the type URL of an exec's OCI Process spec. */
export const PROCESS_SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';
/** DRAIN_TIMEOUT_MS bounds the wait for output to reach the client after a process exits. */
const DRAIN_TIMEOUT_MS = 5_000;
/** SANDBOX_CREATE_TIMEOUT_MS bounds a VM boot (a cold TCG boot takes a few seconds). */
const SANDBOX_CREATE_TIMEOUT_MS = 120_000;
/** NON_FATAL_SIGNALS do not end a process by default: 0 (probe), CHLD, CONT, STOP, TSTP, TTIN, TTOU, URG, WINCH. */
const NON_FATAL_SIGNALS = new Set([0, 17, 18, 19, 20, 21, 22, 23, 28]);
/** EXIT_STATUS_VM_GONE is reported when the VM died under a process (as containerd does for a lost shim). */
export const EXIT_STATUS_VM_GONE = 255;

/** TaskServiceOptions wire a TaskService to its world. */
export interface TaskServiceOptions {
  /** sandboxId names the VM this shim owns (the group id). */
  sandboxId: string;
  namespace: string;
  backend: SandboxBackend;
  events: EventSink;
  log: Logger;
  version: string;
  /** onShutdown is called (after the reply) when Shutdown finds no container left. */
  onShutdown: () => void;
}

interface TaskContainer {
  id: string;
  bundle: string;
  rootfsMounted: string | null;
  container: SandboxContainer;
  init: TaskProcess;
  execs: Map<string, TaskProcess>;
}

/** TaskService implements the Task RPCs. */
export class TaskService {
  readonly containers = new Map<string, TaskContainer>();
  private readonly reserved = new Set<string>();
  private sandbox: Promise<ShimSandbox> | null = null;
  /** hostPid is the pid containerd is told for every process (the pod's namespace holder), once known. */
  private hostPid = 0;
  private shuttingDown = false;
  private readonly log: Logger;

  constructor(private readonly o: TaskServiceOptions) {
    this.log = o.log.child({ subsystem: 'task' });
  }

  /** impl returns the handlers to register for service Task. */
  impl(): ServiceImpl<typeof Task> {
    return {
      state: async (r) => this.state(r.id, r.execId),
      create: async (r, ctx) => this.create(r, ctx),
      start: async (r) => ({ pid: await this.start(r.id, r.execId) }),
      delete: async (r) => this.remove(r.id, r.execId),
      pids: async (r) => ({ processes: guestProcessInfo(await this.get(r.id).container.pids(), this.hostPid) }),
      pause: async (r) => { await this.get(r.id).container.pause(); this.o.events.publish(taskEvents.paused({ containerId: r.id })); return {}; },
      resume: async (r) => { await this.get(r.id).container.resume(); this.o.events.publish(taskEvents.resumed({ containerId: r.id })); return {}; },
      checkpoint: async () => { throw new HakoError(Code.UNIMPLEMENTED, 'checkpoint is not supported by hako'); },
      kill: async (r) => { await this.kill(r.id, r.execId, r.signal, r.all); return {}; },
      exec: async (r) => { await this.exec(r); return {}; },
      resizePty: async (r) => { await this.process(r.id, r.execId).proc.resize(r.height, r.width); return {}; },
      closeIO: async (r) => { const p = this.process(r.id, r.execId); if (r.stdin) p.io.closeStdin(p.proc); return {}; },
      update: async (r) => { await this.get(r.id).container.update(resourcesJson(r.resources)); return {}; },
      wait: async (r, ctx) => {
        const e = await this.process(r.id, r.execId).wait(ctx.signal);
        return { exitStatus: e.exitStatus, exitedAt: timestampFromDate(e.exitedAt) };
      },
      stats: async (r) => ({ stats: metricsAny((await this.get(r.id).container.stats()) as ContainerStats) }),
      connect: async (r) => ({ shimPid: process.pid, taskPid: this.containers.get(r.id)?.init.pid ?? 0, version: this.o.version }),
      shutdown: async () => {
        if (this.containers.size > 0 || this.reserved.size > 0 || this.shuttingDown) return {};
        this.shuttingDown = true;
        setImmediate(this.o.onShutdown);
        return {};
      },
    };
  }

  /** reportedPid is what containerd is told for a process: the host pid standing for the pod, else the guest's. */
  private reportedPid(guestPid: number): number {
    return this.hostPid > 0 ? this.hostPid : guestPid;
  }

  /** currentSandbox is the VM if one was created (for shutdown). */
  async currentSandbox(): Promise<ShimSandbox | null> {
    return this.sandbox ? this.sandbox.catch(() => null) : null;
  }

  private get(id: string): TaskContainer {
    const c = this.containers.get(id);
    if (!c) throw new HakoError(Code.NOT_FOUND, `container ${id}: not found`);
    return c;
  }

  private process(id: string, execId: string): TaskProcess {
    const c = this.get(id);
    if (execId === '') return c.init;
    const p = c.execs.get(execId);
    if (!p) throw new HakoError(Code.NOT_FOUND, `container ${id}: exec ${execId}: not found`);
    return p;
  }

  private ensureSandbox(spec: OciSpec): Promise<ShimSandbox> {
    if (!this.sandbox) {
      const log = this.o.log.child({ sandbox: this.o.sandboxId });
      const netns = podNetns(spec);
      if (netns.hostNetwork) log.warn('the spec asks for the host network, which a VM cannot share: the pod gets a network namespace of its own');
      const p = this.o.backend.create({ id: this.o.sandboxId, log, signal: AbortSignal.timeout(SANDBOX_CREATE_TIMEOUT_MS), netns }).then((sb) => {
        this.hostPid = sb.hostPid ?? 0;
        sb.onExit((reason) => this.onSandboxExit(reason));
        if (hasOomSource(sb)) sb.onOOM((cid) => this.o.events.publish(taskEvents.oom({ containerId: cid })));
        return sb;
      });
      p.catch(() => { if (this.sandbox === p) this.sandbox = null; });
      this.sandbox = p;
    }
    return this.sandbox;
  }

  private async state(id: string, execId: string) {
    const c = this.get(id);
    const p = this.process(id, execId);
    let status: Status;
    if (p.exit) status = Status.STOPPED;
    else if (execId !== '') status = p.status === 'created' ? Status.CREATED : Status.RUNNING;
    else status = ({ created: Status.CREATED, running: Status.RUNNING, paused: Status.PAUSED, stopped: Status.STOPPED } as const)[c.container.status] ?? Status.UNKNOWN;
    return {
      id, execId, bundle: c.bundle, pid: p.pid, status,
      stdin: p.stdio.stdin, stdout: p.stdio.stdout, stderr: p.stdio.stderr, terminal: p.stdio.terminal,
      exitStatus: p.exit?.exitStatus ?? 0,
      exitedAt: p.exit ? timestampFromDate(p.exit.exitedAt) : undefined,
    };
  }

  private async create(r: Parameters<NonNullable<ServiceImpl<typeof Task>['create']>>[0], ctx: CallContext) {
    const id = r.id;
    if (id === '' || /[/\0]/.test(id) || id === '.' || id === '..') throw new HakoError(Code.INVALID_ARGUMENT, `invalid container id "${id}"`);
    if (!isAbsolute(r.bundle)) throw new HakoError(Code.INVALID_ARGUMENT, `bundle must be an absolute path, got "${r.bundle}"`);
    if (r.checkpoint !== '') throw new HakoError(Code.UNIMPLEMENTED, 'restoring from a checkpoint is not supported by hako');
    if (this.containers.has(id) || this.reserved.has(id)) throw new HakoError(Code.ALREADY_EXISTS, `container ${id}: already exists`);
    if (this.shuttingDown) throw new HakoError(Code.FAILED_PRECONDITION, 'shim is shutting down');
    this.reserved.add(id);
    const log = this.log.child({ container: id });
    let mounted: string | null = null;
    let io: HostIO | null = null;
    try {
      // containerd's delete action reads this to find a hung shim, as with runc's shim.pid.
      await writeFile(join(r.bundle, 'shim.pid'), String(process.pid)).catch(() => {});
      const spec = await readBundleSpec(r.bundle);
      validateSpec(spec);
      let rootfs: string;
      if (r.rootfs.length > 0) {
        rootfs = join(r.bundle, 'rootfs');
        await mountRootfs(r.rootfs.map((m) => ({ type: m.type, source: m.source, target: m.target, options: [...m.options] })), rootfs);
        mounted = rootfs;
      } else {
        rootfs = isAbsolute(spec.root!.path) ? spec.root!.path : join(r.bundle, spec.root!.path);
      }
      const stdio: StdioPaths = { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal };
      io = await HostIO.open(stdio, { id, namespace: ctx.namespace ?? this.o.namespace, log });
      const sandbox = await this.ensureSandbox(spec);
      const container = await sandbox.createContainer({ id, spec, rootfs, stdin: r.stdin !== '', terminal: r.terminal });
      const init = new TaskProcess(id, '', stdio, container.init, io);
      init.pid = this.reportedPid(container.pid);
      io.attach(container.init);
      this.containers.set(id, { id, bundle: r.bundle, rootfsMounted: mounted, container, init, execs: new Map() });
      this.o.events.publish(taskEvents.create({
        containerId: id, bundle: r.bundle, rootfs: r.rootfs, pid: init.pid, checkpoint: r.checkpoint,
        io: { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal },
      }));
      log.info('container created', { pid: init.pid, terminal: r.terminal, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, rootfs: rootfs });
      return { pid: init.pid };
    } catch (err) {
      log.error('create failed', { err });
      await io?.close().catch(() => {});
      if (mounted) await unmountAll(mounted).catch((e) => log.error('rootfs unmount after failed create', { err: e }));
      throw HakoError.wrap(err, `create ${id}`);
    } finally {
      this.reserved.delete(id);
    }
  }

  private async start(id: string, execId: string): Promise<number> {
    const c = this.get(id);
    const p = this.process(id, execId);
    if (p.status !== 'created' || p.exit) throw new HakoError(Code.FAILED_PRECONDITION, `${describe(id, execId)}: cannot start a process that is ${p.exit ? 'stopped' : p.status}`);
    if (execId !== '' && c.init.exit) throw new HakoError(Code.FAILED_PRECONDITION, `container ${id}: not running`);
    p.status = 'running';
    let pid: number;
    try {
      const guestPid = execId === '' ? await c.container.start() : await p.proc.start();
      pid = this.reportedPid(guestPid);
      this.log.debug('process started', { container: id, execId, pid, guestPid });
    } catch (err) {
      p.status = 'created';
      throw HakoError.wrap(err, `start ${describe(id, execId)}`);
    }
    p.pid = pid;
    if (execId === '') {
      this.o.events.publish(taskEvents.start({ containerId: id, pid }));
      // containerd's delete action reads this when the shim is gone, as runc's init.pid.
      await writeFile(join(c.bundle, 'init.pid'), String(pid)).catch((err) => this.log.warn('writing init.pid', { err }));
    } else {
      this.o.events.publish(taskEvents.execStarted({ containerId: id, execId, pid }));
    }
    p.startPublished = true;
    void this.watchExit(p);
    return pid;
  }

  /** watchExit waits for a started process to end, lets its output drain, then publishes TaskExit. */
  private async watchExit(p: TaskProcess): Promise<void> {
    let e: ExitInfo;
    try {
      e = await p.proc.wait();
    } catch (err) {
      this.log.warn('wait failed; reporting the process as lost', { container: p.containerId, execId: p.execId, err });
      e = { exitStatus: EXIT_STATUS_VM_GONE, exitedAt: new Date() };
    }
    await p.io.drained(DRAIN_TIMEOUT_MS);
    this.finishExit(p, e);
  }

  /** finishExit records an exit once and publishes TaskExit (always after TaskStart, when started). */
  private finishExit(p: TaskProcess, e: ExitInfo, publishUnstarted = false): void {
    if (p.exit) return;
    if (p.startPublished || publishUnstarted) {
      this.o.events.publish(taskEvents.exit({
        containerId: p.containerId, id: p.execId === '' ? p.containerId : p.execId,
        pid: p.pid, exitStatus: e.exitStatus, exitedAt: timestampFromDate(e.exitedAt),
      }));
    }
    p.setExited(e);
    this.log.info('process exited', { container: p.containerId, execId: p.execId, pid: p.pid, exitStatus: e.exitStatus });
  }

  private onSandboxExit(reason: HakoError): void {
    this.log.error('sandbox VM exited', { err: reason });
    const at = new Date();
    for (const c of this.containers.values()) {
      for (const p of [...c.execs.values(), c.init]) {
        if (p.exit) continue;
        void p.io.drained(0).then(() => this.finishExit(p, { exitStatus: EXIT_STATUS_VM_GONE, exitedAt: at }));
      }
    }
  }

  private async remove(id: string, execId: string) {
    const c = this.get(id);
    const p = this.process(id, execId);
    if (p.status === 'running' && !p.exit) throw new HakoError(Code.FAILED_PRECONDITION, `${describe(id, execId)}: cannot delete a running process`);
    const e = p.exit ?? { exitStatus: 0, exitedAt: new Date() };
    const out = { pid: p.pid, exitStatus: e.exitStatus, exitedAt: timestampFromDate(e.exitedAt) };
    if (execId !== '') {
      c.execs.delete(execId);
      await p.io.close();
      return out;
    }
    const log = this.log.child({ container: id });
    try {
      await c.container.delete({ force: true });
    } catch (err) {
      if (!isUnavailable(err)) log.warn('sandbox delete failed; cleaning up the host side anyway', { err });
    }
    for (const x of [...c.execs.values(), c.init]) await x.io.close().catch(() => {});
    if (c.rootfsMounted) await unmountAll(c.rootfsMounted);
    this.containers.delete(id);
    this.o.events.publish(taskEvents.delete({ containerId: id, pid: out.pid, exitStatus: out.exitStatus, exitedAt: out.exitedAt }));
    log.info('container deleted');
    return out;
  }

  private async kill(id: string, execId: string, signal: number, all: boolean): Promise<void> {
    const c = this.get(id);
    const p = this.process(id, execId);
    if (p.exit) {
      throw new HakoError(Code.NOT_FOUND, `${describe(id, execId)}: process already finished`);
    }
    if (p.status !== 'created') {
      await c.container.kill(signal, execId === '' ? { all } : { execId, all });
      return;
    }
    // Never started: nothing in the guest will report an exit, yet containerd's forced
    // delete kills and then waits. A fatal signal ends the process here, as runc's would.
    try {
      await c.container.kill(signal, execId === '' ? { all: true } : { execId, all });
    } catch (err) {
      this.log.debug('kill of a process that never started', { container: id, execId, err });
    }
    if (!NON_FATAL_SIGNALS.has(signal)) {
      this.finishExit(p, { exitStatus: 128 + signal, exitedAt: new Date() }, execId === '');
    }
  }

  private async exec(r: { id: string; execId: string; terminal: boolean; stdin: string; stdout: string; stderr: string; spec?: Any }): Promise<void> {
    const c = this.get(r.id);
    if (r.execId === '' || /[/\0]/.test(r.execId)) throw new HakoError(Code.INVALID_ARGUMENT, `invalid exec id "${r.execId}"`);
    const key = `${r.id}/${r.execId}`;
    if (c.execs.has(r.execId) || this.reserved.has(key)) throw new HakoError(Code.ALREADY_EXISTS, `container ${r.id}: exec ${r.execId}: already exists`);
    if (c.init.exit) throw new HakoError(Code.FAILED_PRECONDITION, `container ${r.id}: not running`);
    const spec = processSpec(r.spec);
    this.reserved.add(key);
    let io: HostIO | null = null;
    try {
      const stdio: StdioPaths = { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal };
      io = await HostIO.open(stdio, { id: r.id, namespace: this.o.namespace, log: this.log.child({ container: r.id, execId: r.execId }) });
      const proc = await c.container.exec({ execId: r.execId, process: spec, stdin: r.stdin !== '', terminal: r.terminal });
      const p = new TaskProcess(r.id, r.execId, stdio, proc, io);
      io.attach(proc);
      c.execs.set(r.execId, p);
      this.o.events.publish(taskEvents.execAdded({ containerId: r.id, execId: r.execId }));
    } catch (err) {
      await io?.close().catch(() => {});
      throw HakoError.wrap(err, `exec ${r.execId} in ${r.id}`);
    } finally {
      this.reserved.delete(key);
    }
  }
}

/** GUEST_PID_TYPE_URL types a Pids entry's info: the process's pid in the guest (a bare name, which ctr 1.6 resolves). */
export const GUEST_PID_TYPE_URL = 'google.protobuf.UInt32Value';

/**
 * guestProcessInfo answers Pids: one entry per guest process, each with the pid containerd
 * knows (a host pid, as every other answer gives) and the guest's own pid in info.
 */
export function guestProcessInfo(guestPids: readonly number[], hostPid: number): Array<{ pid: number; info?: Any }> {
  return guestPids.map((g) => (hostPid > 0
    ? { pid: hostPid, info: create(AnySchema, { typeUrl: GUEST_PID_TYPE_URL, value: toBinary(UInt32ValueSchema, create(UInt32ValueSchema, { value: g })) }) }
    : { pid: g }));
}

function describe(id: string, execId: string): string {
  return execId === '' ? `container ${id}` : `container ${id}: exec ${execId}`;
}

/** processSpec decodes an exec's Any into a checked OCI Process object. */
export function processSpec(a: Any | undefined): Record<string, unknown> {
  if (!a) throw new HakoError(Code.INVALID_ARGUMENT, 'exec: spec is missing');
  if (a.typeUrl !== PROCESS_SPEC_TYPE_URL && !a.typeUrl.endsWith('/runtime-spec/1/Process')) {
    throw new HakoError(Code.INVALID_ARGUMENT, `exec: spec has type ${a.typeUrl}, want ${PROCESS_SPEC_TYPE_URL}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(a.value));
  } catch (err) {
    throw new HakoError(Code.INVALID_ARGUMENT, `exec: spec is not valid JSON: ${(err as Error).message}`);
  }
  validateProcess(v, 'spec');
  return v as Record<string, unknown>;
}

/** resourcesJson checks an Update's Any holds a JSON object (LinuxResources) and returns the text. */
export function resourcesJson(a: Any | undefined): string {
  if (!a) throw new HakoError(Code.INVALID_ARGUMENT, 'update: resources are missing');
  let text: string;
  let v: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(a.value);
    v = JSON.parse(text);
  } catch (err) {
    throw new HakoError(Code.INVALID_ARGUMENT, `update: resources are not valid JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HakoError(Code.INVALID_ARGUMENT, 'update: resources must be a JSON object (LinuxResources)');
  return text;
}
