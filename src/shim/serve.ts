// The serving shim process: logs into the bundle's `log` FIFO, serves the Task API on
// its socket (0600), publishes events to containerd, and exits when Shutdown allows it.

import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '../log/index.js';
import { registerService, Server } from '../ttrpc/index.js';
import { Task } from '../protocols/generated/containerd/shim_pb.js';
import { groupId } from './address.js';
import { readBundleSpec } from './bundle-spec.js';
import type { ShimFlags } from './flags.js';
import { Publisher } from './publisher.js';
import type { SandboxBackend } from './sandbox-port.js';
import { fifoSink } from './shim-log.js';
import { EXIT_ALREADY_SERVED, listenExclusive } from './socket.js';
import { TaskService } from './task-service.js';

/** SANDBOX_STOP_TIMEOUT_MS bounds the VM stop at shutdown before falling back to cleanup. */
const SANDBOX_STOP_TIMEOUT_MS = 30_000;

/** ServeOptions are what the serving process needs besides its flags. */
export interface ServeOptions {
  backend: SandboxBackend;
  version: string;
  /** ttrpcAddress is containerd's ttRPC socket for events (env TTRPC_ADDRESS). */
  ttrpcAddress: string;
  /** bundle is the first container's bundle (the working directory). */
  bundle: string;
}

/** serve runs the shim server until Shutdown; it resolves with the process exit code. */
export async function serve(f: ShimFlags, o: ServeOptions): Promise<number> {
  const sink = fifoSink(join(o.bundle, 'log'));
  const log = new Logger(sink, f.debug ? 'debug' : 'info').child({ runtime: 'io.containerd.hako.v2', namespace: f.namespace, shim: f.id });
  let sandboxId = f.id;
  try {
    sandboxId = groupId(f.id, (await readBundleSpec(o.bundle)).annotations);
  } catch (err) {
    log.warn('cannot read the bundle spec; the group is the task id', { err });
  }
  const events = new Publisher({ address: o.ttrpcAddress, namespace: f.namespace, log: log.child({ subsystem: 'events' }) });
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((r) => { finish = r; });

  const server = new Server({ log: log.child({ subsystem: 'ttrpc' }) });
  let shuttingDown = false;
  const shutdown = async (why: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('shutting down', { why });
    const sb = await tasks.currentSandbox();
    if (sb) {
      try {
        await withTimeout(sb.stop({ signal: AbortSignal.timeout(SANDBOX_STOP_TIMEOUT_MS) }), SANDBOX_STOP_TIMEOUT_MS + 1_000);
      } catch (err) {
        log.error('sandbox stop failed; cleaning up', { err });
        await o.backend.cleanup(sandboxId, log).catch((e) => log.error('sandbox cleanup failed', { err: e }));
      }
    }
    await events.flush(3_000);
    events.close();
    try { unlinkSync(f.socket); } catch { /* already gone */ }
    // Server.close waits for open connections (containerd's) to end; exiting ends them.
    void server.close();
    sink.close();
    finish(0);
  };
  const tasks = new TaskService({
    sandboxId, namespace: f.namespace, backend: o.backend, events, log, version: o.version,
    onShutdown: () => void shutdown('Shutdown with no container left'),
  });
  registerService(server, Task, tasks.impl());

  try {
    const listener = await listenExclusive(f.socket, (sock) => server.serve(sock));
    listener.on('error', (err) => log.error('listener error', { err }));
  } catch (err) {
    log.warn('not serving', { err, socket: f.socket });
    events.close();
    sink.close();
    return EXIT_ALREADY_SERVED;
  }
  log.info('serving', { socket: f.socket, sandbox: sandboxId, pid: process.pid });

  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('uncaughtException', (err) => log.error('uncaught exception', { err, stack: err.stack }));
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { err }));
  return done;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => { t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); }),
  ]);
}
