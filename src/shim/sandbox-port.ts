// The part of src/sandbox the shim drives, as small structural interfaces.
// The real Sandbox satisfies them; unit tests pass a fake built on the same shapes.

import type { Readable, Writable } from 'node:stream';
import type { HakoError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { PodNetns } from './bundle-spec.js';

/** ExitInfo is how a process ended: exit code, or 128 + signal number. */
export interface ExitInfo {
  exitStatus: number;
  exitedAt: Date;
}

/** SandboxProcess is one process (init or exec) of a container in the VM. */
export interface SandboxProcess {
  readonly execId: string;
  readonly pid: number;
  readonly terminal: boolean;
  /** start runs an exec'd process and resolves with its pid in the guest. */
  start(): Promise<number>;
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  resize(rows: number, cols: number): Promise<void> | void;
  /** wait resolves once, after the process exited and its output was drained. */
  wait(): Promise<ExitInfo>;
}

/** ContainerStatus is the container's state as the sandbox sees it. */
export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped';

/** SandboxContainer is one container in the VM. */
export interface SandboxContainer {
  readonly id: string;
  readonly status: ContainerStatus;
  readonly pid: number;
  readonly init: SandboxProcess;
  start(): Promise<number>;
  exec(opts: { execId: string; process: unknown; stdin: boolean; terminal: boolean; signal?: AbortSignal }): Promise<SandboxProcess>;
  kill(signal: number, opts?: { execId?: string; all?: boolean }): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  update(resourcesJson: string): Promise<void>;
  stats(): Promise<object>;
  pids(): Promise<number[]>;
  delete(opts?: { force?: boolean }): Promise<void>;
}

/** CreateContainerOptions are what the shim hands the sandbox for a new container. */
export interface CreateContainerOptions {
  id: string;
  /** spec is the OCI runtime spec as the host sees it. */
  spec: Record<string, unknown>;
  /** rootfs is the host directory holding the container's root (already mounted). */
  rootfs: string;
  stdin: boolean;
  terminal: boolean;
  signal?: AbortSignal;
}

/** ShimSandbox is one VM serving the containers of one shim. */
export interface ShimSandbox {
  readonly id: string;
  /** hostPid is a host process in the pod's network namespace: the pid containerd is told. */
  readonly hostPid?: number;
  onExit(cb: (reason: HakoError) => void): void;
  createContainer(opts: CreateContainerOptions): Promise<SandboxContainer>;
  stop(opts?: { signal?: AbortSignal }): Promise<void>;
}

/** OomSource is the optional ability of a sandbox to report OOM kills by container id. */
export interface OomSource {
  onOOM(cb: (containerId: string) => void): void;
}

/** hasOomSource reports whether a sandbox can report OOM kills. */
export function hasOomSource(s: object): s is OomSource {
  return typeof (s as Partial<OomSource>).onOOM === 'function';
}

/** SandboxBackend creates sandboxes and cleans up after dead ones. */
export interface SandboxBackend {
  create(opts: { id: string; log: Logger; signal?: AbortSignal; netns?: PodNetns }): Promise<ShimSandbox>;
  /** cleanup kills a leftover VM and removes its state; no object needed. */
  cleanup(id: string, log: Logger): Promise<void>;
}
