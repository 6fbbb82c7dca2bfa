// The real SandboxBackend: src/sandbox's Sandbox.create and cleanupSandbox, with the
// hako configuration loaded once per shim process.

import { loadConfig } from '../config/index.js';
import type { Logger } from '../log/index.js';
import type { SandboxBackend, ShimSandbox } from './sandbox-port.js';

interface SandboxModule {
  Sandbox: { create(opts: { id: string; config: unknown; log: Logger; signal?: AbortSignal }): Promise<ShimSandbox> };
  cleanupSandbox(id: string, opts?: { log?: Logger; signal?: AbortSignal }): Promise<void>;
}

// src/sandbox is written in parallel; it is loaded by name so the shim builds without it.
const SANDBOX_MODULE = '../sandbox/index.js';

async function sandboxModule(): Promise<SandboxModule> {
  return (await import(SANDBOX_MODULE)) as SandboxModule;
}

/** sandboxBackend returns the backend that boots real VMs. */
export function sandboxBackend(): SandboxBackend {
  return {
    async create({ id, log, signal }) {
      const [{ config }, mod] = await Promise.all([loadConfig(), sandboxModule()]);
      return mod.Sandbox.create({ id, config, log, signal });
    },
    async cleanup(id, log) {
      const mod = await sandboxModule();
      await mod.cleanupSandbox(id, { log, signal: AbortSignal.timeout(60_000) });
    },
  };
}
