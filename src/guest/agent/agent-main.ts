// runAgent: everything hako-agent does at start, with no work at module load, so the same
// code can run from the plain bundle (main.ts) or from a V8 startup snapshot.

import { accessSync, constants, readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { fdSink, Logger, parseLevel } from '../../log/index.js';
import { Agent } from '../../protocols/generated/hako/agent_pb.js';
import { registerService, Server } from '../../ttrpc/index.js';
import { agentService } from './agent-service.js';
import { ContainerManager } from './containers.js';
import { GUESTCTL_PATH, GuestCtl } from './guestctl.js';
import { AGENT_VERSION, GuestInfo, uptimeMs } from './guest-info.js';
import { OomWatcher } from './oom-watch.js';
import { AGENT_PORT_NAME, findPort, PortChannel } from './port-channel.js';
import { PortSocketChannel } from './port-socket.js';
import { SandboxSetup } from './sandbox-setup.js';
import { NetCtl } from './net-ctl.js';
import { GuestNetwork } from './network.js';

/** kernelParam returns a hako.* parameter from the kernel command line. */
function kernelParam(name: string): string | undefined {
  try {
    for (const word of readFileSync('/proc/cmdline', 'utf8').trim().split(/\s+/)) {
      if (word.startsWith(`${name}=`)) return word.slice(name.length + 1);
    }
  } catch {
    // no /proc: not in the guest
  }
  return undefined;
}

/**
 * die ends the agent at once. process.exit() cannot be used: Node joins its thread pool
 * on exit, and one pool thread sits in a blocking read() of the virtio port that never
 * returns, so exit() would hang and leave a zombie agent (measured). SIGKILL cannot hang.
 */
function die(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

function readPersonality(): string {
  try {
    return readFileSync('/proc/self/personality', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function findPtyHelper(): string | undefined {
  for (const p of ['/usr/bin/hako-pty']) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not there
    }
  }
  return undefined;
}

/** AgentStart says how node loaded the agent: from the plain bundle or from a V8 startup snapshot. */
export type AgentStart = 'bundle' | 'snapshot';

/** runAgent starts the agent: logging to the console, fatal-error handling, the port and the service. */
export function runAgent(opts: { startedFrom: AgentStart }): void {
  const startUptimeMs = uptimeMs();
  const nodeStartUptimeMs = Math.max(0, startUptimeMs - Math.round(process.uptime() * 1000));
  // The console (fd 2) is the host's console.log: one JSON object per line.
  const log = new Logger(fdSink(2), parseLevel(kernelParam('hako.agent.log'))).child({ subsystem: 'hako-agent' });
  const fatal = (what: string, err: unknown): never => {
    log.error(`fatal: ${what}; the agent exits and the VM powers off`, { err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) });
    die();
  };
  process.on('uncaughtException', (err) => fatal('uncaught exception', err));
  process.on('unhandledRejection', (err) => fatal('unhandled promise rejection', err));
  process.on('SIGTERM', () => {
    log.info('SIGTERM: exiting');
    die();
  });

  const start = async (): Promise<void> => {
    const oom = new OomWatcher(log.child({ subsystem: 'oom' }));
    // Started now, so that a VM restored from a template finds it running.
    const ctl = new GuestCtl(GUESTCTL_PATH, log.child({ subsystem: 'guestctl' }));
    ctl.start();
    const sandbox = new SandboxSetup(log, ctl);
    const ptyHelper = findPtyHelper();
    const containers = new ContainerManager({ log, oom, shareReady: () => sandbox.shareReady(), ptyHelper });
    const server = new Server({ log: log.child({ subsystem: 'ttrpc' }) });
    registerService(server, Agent, agentService({ log, info: new GuestInfo(startUptimeMs), sandbox, containers, oom, ctl, network: new GuestNetwork(new NetCtl(ctl), log.child({ subsystem: 'network' })) }));
    const port = await findPort(AGENT_PORT_NAME);
    const portOpts = {
      log,
      onSession: (stream: Duplex) => void server.serve(stream),
      onFatal: (err: Error) => fatal('the agent port failed', err),
    };
    // The event loop drives the port where Node lets it; else (or with hako.agent.port_io=pool)
    // blocking reads in the thread pool.
    const wantPool = kernelParam('hako.agent.port_io') === 'pool';
    const io = !wantPool && PortSocketChannel.open(port, portOpts) ? 'event loop' : 'thread pool';
    if (io === 'thread pool') await PortChannel.open(port, portOpts);
    log.info('hako-agent ready', {
      version: AGENT_VERSION,
      port,
      io,
      nodeStartUptimeMs,
      mainStartUptimeMs: startUptimeMs,
      readyUptimeMs: uptimeMs(),
      startedFrom: opts.startedFrom,
      tty: ptyHelper ?? 'none (no hako-pty: terminals fall back to pipes)',
      threadpool: process.env.UV_THREADPOOL_SIZE ?? 'default (4)',
      // 00040000 (ADDR_NO_RANDOMIZE): crun is not randomized, see /etc/hako/agent.
      personality: readPersonality(),
    });
  };
  start().catch((err) => fatal('startup failed', err));
}
