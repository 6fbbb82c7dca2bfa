// Warming a VM before it is saved as a template or held in the pool: one throw-away container
// runs through the paths a real start takes (9p share, overlay rootfs, crun run and exec, stdio).

import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { AgentClient } from '../agent-client/index.js';
import { mountContainerRootfs, type Share } from '../storage/index.js';
import { personalizeGuest } from './personalize.js';

/** WarmUpInputs describe the throw-away container: an unpacked image and a spec for it. */
export interface WarmUpInputs {
  /** lower is an unpacked image (the built-in busybox), mounted read-only under an overlay. */
  lower: string;
  /** spec is a complete OCI spec; root and the process arguments are replaced. */
  spec: { process: Record<string, unknown>; root?: unknown; [k: string]: unknown };
}

/** WARM_UP_VERSION is part of a template's key: a template warmed differently is rebuilt. */
export const WARM_UP_VERSION = '2';

/** WARM_UP_SANDBOX_ID names the guest sandbox during a warm-up; the real one is created later. */
export const WARM_UP_SANDBOX_ID = 'hako-warm-up';
const CID = 'hako-warm-up';
const EXEC_ID = 'warm-exec';

/**
 * warmUp runs one container in the VM: reseeds, sets the clock, mounts the share, starts `sleep` as init, runs an exec
 * that prints, reads its output, kills init, removes the container and unmounts the share again,
 * so the guest is back to a state a template may be saved in (no 9p mount). Resolves with ms.
 */
export async function warmUp(agent: AgentClient, share: Share, vmDir: string, inputs: WarmUpInputs, opts: { log: Logger; signal?: AbortSignal }): Promise<number> {
  const t0 = Date.now();
  const call = { signal: opts.signal };
  const rootfs = await mountContainerRootfs(vmDir, CID, inputs.lower, opts.log);
  try {
    // The calls a restored VM gets first (entropy, clock, identity), so they are warm too.
    await personalizeGuest(agent, { sandboxId: WARM_UP_SANDBOX_ID, hostname: 'hako', restored: true }, opts.signal);
    // The netlink dumps of a pod's first UpdateInterface: translated now, not on its start path.
    await agent.listInterfaces(call);
    await agent.listRoutes(call);
    const root = await share.addRootfs(CID, rootfs.path);
    const spec = { ...inputs.spec, root: { path: root, readonly: false }, process: { ...inputs.spec.process, args: ['sleep', '60'], terminal: false } };
    await agent.createContainer({ containerId: CID, spec, stdin: false, terminal: false }, call);
    await agent.startContainer(CID, call);
    await agent.execProcess({ containerId: CID, execId: EXEC_ID, process: { ...inputs.spec.process, args: ['sh', '-c', 'echo warm'], terminal: false }, stdin: false, terminal: false }, call);
    let out = '';
    for (let eof = false; !eof;) {
      const r = await agent.readStdout(CID, EXEC_ID, 4096, { ...call, timeoutMs: 30_000 });
      out += Buffer.from(r.data).toString();
      eof = r.eof;
    }
    const exec = await agent.waitProcess(CID, EXEC_ID, { ...call, timeoutMs: 30_000 });
    if (exec.exitStatus !== 0 || out.trim() !== 'warm') throw errorf(Code.INTERNAL, `the warm-up exec ended with ${exec.exitStatus} and printed ${JSON.stringify(out.slice(0, 200))}`);
    await agent.signalProcess({ containerId: CID, signal: 9 }, call);
    await agent.waitProcess(CID, '', { ...call, timeoutMs: 30_000 });
    await agent.removeContainer(CID, true, call);
    // DestroySandbox unmounts the share: QEMU cannot save a VM whose 9p export is mounted.
    await agent.destroySandbox(call);
  } catch (err) {
    throw HakoError.wrap(err, 'warming up the VM');
  } finally {
    await share.removeContainer(CID).catch((e: unknown) => opts.log.warn('unsharing the warm-up rootfs', { err: e }));
    await rootfs.remove().catch((e: unknown) => opts.log.warn('removing the warm-up rootfs', { err: e }));
  }
  const ms = Date.now() - t0;
  opts.log.debug('VM warmed up', { ms });
  return ms;
}
