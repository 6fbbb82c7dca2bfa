// The options of Sandbox.create and Sandbox.createContainer.

import type { HakoConfig } from '../config/index.js';
import type { Assets } from '../image/index.js';
import type { Logger } from '../log/index.js';
import type { NetnsTarget, PortMapping } from '../network/index.js';
import type { EtcOptions } from './etc-files.js';
import type { OciSpec } from './spec.js';

/** SandboxCreateOptions configures Sandbox.create. */
export interface SandboxCreateOptions {
  id: string;
  config: HakoConfig;
  log: Logger;
  vcpus?: number;
  memoryMiB?: number;
  hostname?: string;
  /** annotations are stored in state.json for `hako ps` (image, command, name). */
  annotations?: Record<string, string>;
  signal?: AbortSignal;
  /** assets skips ensureAssets (tests and benchmarks that built them already). */
  assets?: Assets;
  /**
   * network puts the sandbox in a pod network: the namespace at a path (CRI, podman, hako run's
   * own), or a new one (the shim, which CNI fills later: `ctr run --cni`). Its interfaces are
   * mirrored into the VM; with watch, interfaces that arrive later are too. Absent: loopback only.
   */
  network?: { netns: NetnsTarget; watch?: boolean };
  /**
   * cni joins hako's own CNI network in a namespace made for the sandbox (hako run), publishing
   * ports; it replaces network. Everything is undone by stop() and by cleanupSandbox.
   */
  cni?: { ports: PortMapping[] };
  /** etc tunes the /etc/hosts and /etc/resolv.conf hako writes for containers that bring none. */
  etc?: Omit<EtcOptions, 'hostname'>;
}

/** CreateContainerOptions creates a container in a sandbox. */
export interface CreateContainerOptions {
  id: string;
  /** spec is the OCI spec as the host sees it: bind sources are host paths. */
  spec: OciSpec;
  /** rootfs is a host directory (mounted by the caller, or from mountImageRootfs). */
  rootfs: string;
  stdin: boolean;
  terminal: boolean;
  signal?: AbortSignal;
}
