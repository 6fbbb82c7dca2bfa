// The small contracts between the sandbox and a hypervisor driver: Hypervisor starts a VM,
// Vm controls one. Optional abilities are separate interfaces, found with the has* guards.

import type { VmDescription } from './types.js';

/** VmExitReason says why a VM process ended. */
export type VmExitReason =
  /** Vm.stop() ended it (see VmExit.stoppedBy for the step that worked). */
  | 'stop'
  /** The guest powered itself off. */
  | 'guest-shutdown'
  /** The guest rebooted or panicked; drivers run VMs so that a reboot ends them. */
  | 'guest-reset'
  /** Someone other than Vm.stop() asked the hypervisor to quit (a signal, a monitor command). */
  | 'host-quit'
  /** The process was killed by a signal without a clean shutdown (SIGKILL, OOM killer). */
  | 'killed'
  /** The process exited on its own with an error and no shutdown. */
  | 'crashed';

/** VmExit describes how a VM process ended. */
export interface VmExit {
  /** code is the exit status, or null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  reason: VmExitReason;
  /** stoppedBy is the step of Vm.stop() that ended the VM, when reason is `stop`. */
  stoppedBy?: 'quit' | 'sigterm' | 'sigkill';
  /** detail is a human sentence, with the hypervisor's last error lines when it crashed. */
  detail: string;
}

/** VmRunState is the run state a VM reports. */
export interface VmRunState {
  running: boolean;
  /** status is the driver's own word (QEMU: `running`, `paused`, `prelaunch`, `shutdown`, ...). */
  status: string;
}

/** CallOptions bounds a single control call. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** StopOptions sets the deadline of each step of an ordered stop. */
export interface StopOptions {
  /** signal, when aborted, skips the graceful steps and goes straight to SIGKILL. */
  signal?: AbortSignal;
  /** timeoutMs is how long the graceful quit may take before SIGTERM (default 3000). */
  timeoutMs?: number;
  /** termTimeoutMs is how long SIGTERM may take before SIGKILL (default 2000). */
  termTimeoutMs?: number;
  /** killTimeoutMs is how long to wait for the process to vanish after SIGKILL (default 5000). */
  killTimeoutMs?: number;
}

/** Vm is a running VM process. */
export interface Vm {
  readonly id: string;
  readonly pid: number;
  /** exited settles (never rejects) when the VM process has ended, however it ended. */
  readonly exited: Promise<VmExit>;
  /** exit is the VmExit once the process has ended, else undefined. */
  exit(): VmExit | undefined;
  /** stop ends the VM: graceful quit, then SIGTERM, then SIGKILL, each with its own deadline. */
  stop(opts?: StopOptions): Promise<VmExit>;
  /** pause freezes the vCPUs. */
  pause(opts?: CallOptions): Promise<void>;
  /** resume lets paused vCPUs run again. */
  resume(opts?: CallOptions): Promise<void>;
  /** state asks the hypervisor for the run state. */
  state(opts?: CallOptions): Promise<VmRunState>;
}

/** StartOptions bounds Hypervisor.start. */
export interface StartOptions {
  signal?: AbortSignal;
  /** timeoutMs bounds the whole start, up to a ready control channel (default 10000). */
  timeoutMs?: number;
  /** nice runs the VM at this scheduling niceness (-20..19; default the caller's). */
  nice?: number;
}

/** Hypervisor starts VMs from descriptions. */
export interface Hypervisor {
  /** name is the driver's name (`qemu`). */
  readonly name: string;
  /** start launches a VM and resolves once the driver controls it; on failure nothing is left running. */
  start(desc: VmDescription, opts?: StartOptions): Promise<Vm>;
}

/** VmEvent is an asynchronous event from the hypervisor (QEMU: a QMP event). */
export interface VmEvent {
  name: string;
  data: Record<string, unknown>;
  /** timestampMs is when the hypervisor emitted it, in ms since the epoch. */
  timestampMs: number;
}

/** VmEvents is the optional ability to watch hypervisor events. */
export interface VmEvents {
  /** onEvent calls listener for each event until the returned function is called. */
  onEvent(listener: (ev: VmEvent) => void): () => void;
}

/** QmpAccess is the optional ability to send raw QMP commands (QEMU drivers only). */
export interface QmpAccess {
  /** qmp runs one QMP command and resolves with its `return` value. */
  qmp<T = unknown>(command: string, args?: Record<string, unknown>, opts?: CallOptions): Promise<T>;
}

/** HotNic is a NIC to hot-plug: the tap the hypervisor creates (in its own network namespace) and the MAC. */
export interface HotNic {
  ifname: string;
  /** mac is a unicast address, `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  /** slot is the hot-plug slot (0 .. nic-slots count - 1); the caller keeps track of free ones. */
  slot: number;
}

/** NicHotplug is the optional ability to add and remove NICs while the VM runs. */
export interface NicHotplug {
  /** plugNic creates the tap nic.ifname and plugs a virtio-net NIC on it; on failure nothing is left. */
  plugNic(nic: HotNic, opts?: CallOptions): Promise<void>;
  /** unplugNic asks the guest to release the NIC, then removes it and its tap. */
  unplugNic(ifname: string, opts?: CallOptions): Promise<void>;
}

/** SavedVmState describes a saved device state file. */
export interface SavedVmState {
  bytes: number;
  /** sha256 is the hex digest of the file. */
  sha256: string;
}

/**
 * VmStateSave is the optional ability to save a VM and restore it in a new process: the device
 * state goes to a file, while RAM stays in the VM's file memory backend (VmDescription.memory).
 */
export interface VmStateSave {
  /** saveState pauses the VM and writes its device state to path (created, never replaced). */
  saveState(path: string, opts?: CallOptions): Promise<SavedVmState>;
  /** loadState restores a VM started with `incoming: true` from a saved state; resolves once the guest runs. */
  loadState(data: Uint8Array, opts?: CallOptions): Promise<void>;
}

/** VmHandOff is the optional ability to let go of a running VM so that another process adopts it. */
export interface VmHandOff {
  /** release stops controlling and watching the VM without stopping it. */
  release(): Promise<void>;
}

/** hasStateSave reports whether vm can be saved and restored. */
export function hasStateSave(vm: Vm): vm is Vm & VmStateSave {
  return typeof (vm as Partial<VmStateSave>).saveState === 'function' && typeof (vm as Partial<VmStateSave>).loadState === 'function';
}

/** hasHandOff reports whether vm can be released to another process. */
export function hasHandOff(vm: Vm): vm is Vm & VmHandOff {
  return typeof (vm as Partial<VmHandOff>).release === 'function';
}

/** hasEvents reports whether vm can report hypervisor events. */
export function hasEvents(vm: Vm): vm is Vm & VmEvents {
  return typeof (vm as Partial<VmEvents>).onEvent === 'function';
}

/** hasNicHotplug reports whether NICs can be added to vm while it runs. */
export function hasNicHotplug(vm: Vm): vm is Vm & NicHotplug {
  return typeof (vm as Partial<NicHotplug>).plugNic === 'function';
}

/** hasQmp reports whether vm accepts raw QMP commands. */
export function hasQmp(vm: Vm): vm is Vm & QmpAccess {
  return typeof (vm as Partial<QmpAccess>).qmp === 'function';
}
