// The real SandboxBackend: src/sandbox's Sandbox.create and cleanupSandbox, with the
// hako configuration (/etc/hako/config.toml or HAKO_CONFIG) loaded once per shim process.

import { loadConfig, type HakoConfig } from '../config/index.js';
import { cleanupSandbox, Sandbox } from '../sandbox/index.js';
import type { SandboxBackend, ShimSandbox } from './sandbox-port.js';

/** sandboxBackend returns the backend that boots real VMs. */
export function sandboxBackend(): SandboxBackend {
  let config: Promise<HakoConfig> | null = null;
  const cfg = () => (config ??= loadConfig().then((l) => l.config));
  return {
    async create({ id, log, signal, netns }) {
      // A new namespace is filled by CNI after Create (ctr run --cni): follow it.
      const network = netns ? { netns, watch: netns.kind === 'new' } : undefined;
      const sb: ShimSandbox = await Sandbox.create({ id, config: await cfg(), log, signal, network });
      return sb;
    },
    async cleanup(id, log) {
      await cleanupSandbox(id, { stateDir: (await cfg()).runtime.stateDir, log });
    },
  };
}
