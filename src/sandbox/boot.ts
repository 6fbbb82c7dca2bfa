// The boot half of a sandbox: the VM description (devices per docs/guest-contract.md) and
// the wait for the guest agent, bounded by the boot deadline, the VM's exit and cancellation.

import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { HakoConfig } from '../config/index.js';
import type { Device, VmDescription, Vm } from '../hypervisor/index.js';
import { BASE_KERNEL_CMDLINE, type Assets } from '../image/index.js';
import { SHARE_TAG, type Share } from '../storage/index.js';
import { AgentClient } from '../agent-client/index.js';
import type { SandboxPaths } from './paths.js';

/** AGENT_PORT_NAME is the virtio-serial port of the agent channel (docs/guest-contract.md). */
export const AGENT_PORT_NAME = 'agent.channel.0';

/**
 * connectAgent dials the VM's agent socket and waits until the agent answers, giving up at the
 * boot deadline (DEADLINE_EXCEEDED), when the VM exits (UNAVAILABLE) or when signal aborts.
 */
export async function connectAgent(path: string, vm: Vm, deadline: number, config: HakoConfig, log: Logger, signal?: AbortSignal): Promise<AgentClient> {
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let vmGone = false;
  void vm.exited.then(() => {
    vmGone = true;
    ac.abort(errorf(Code.UNAVAILABLE, 'the VM exited'));
  });
  let agent: AgentClient | undefined;
  try {
    agent = await AgentClient.connect(path, { log, callTimeoutMs: config.agent.timeoutMs, signal: ac.signal, timeoutMs: Math.max(1, deadline - Date.now()) });
    // QEMU holds what the host writes until the guest reads the port, so one pending Check at a
    // time answers as soon as the agent serves (shorter attempts measured no faster).
    const { attempts } = await agent.waitReady({ signal: ac.signal, timeoutMs: Math.max(1, deadline - Date.now()) });
    log.debug('agent answered', { attempts });
    return agent;
  } catch (err) {
    agent?.close();
    if (vmGone) {
      const exit = await vm.exited;
      throw errorf(Code.UNAVAILABLE, `the VM exited before its agent answered: ${exit.detail} (see ${path.replace(/agent\.sock$/, 'console.log')})`, err);
    }
    const e = HakoError.from(err);
    if (e.code === Code.DEADLINE_EXCEEDED) {
      throw errorf(Code.DEADLINE_EXCEEDED, `the guest agent did not answer within agent.boot_timeout_ms (${config.agent.bootTimeoutMs} ms): ${e.message}`, e);
    }
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** vmDescription describes the sandbox VM: root image, share, console, agent port, rng. */
export function vmDescription(
  id: string,
  config: HakoConfig,
  opts: { vcpus?: number; memoryMiB?: number },
  assets: Assets,
  paths: SandboxPaths,
  share: Share,
  accel: VmDescription['accel'],
): VmDescription {
  const devices: Device[] = [
    { kind: 'blk', id: 'root', path: assets.rootImage, readonly: true },
    { kind: '9p', path: share.path, tag: SHARE_TAG, readonly: false },
    { kind: 'serial-console', logPath: paths.console },
    { kind: 'virtio-serial-port', name: AGENT_PORT_NAME, socketPath: paths.agentSocket },
    { kind: 'rng' },
  ];
  return {
    id,
    vcpus: opts.vcpus ?? config.hypervisor.vcpus,
    memoryMiB: opts.memoryMiB ?? config.hypervisor.memoryMiB,
    kernel: { path: assets.kernel, params: [...BASE_KERNEL_CMDLINE.split(' '), ...config.hypervisor.kernelParams] },
    accel,
    devices,
    runtimeDir: paths.dir,
  };
}
