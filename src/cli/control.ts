// The owner's control socket (<sandbox>/control.sock): the hako.agent.v1.Agent API over ttRPC,
// served by the process that holds the Sandbox, so `hako exec/kill/rm` reach a detached container.

import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { Agent } from '../protocols/generated/hako/agent_pb.js';
import type { Container, OciProcess, Process, Sandbox } from '../sandbox/index.js';
import { Server, dialUnix, registerService } from '../ttrpc/index.js';
import { AgentClient } from '../agent-client/index.js';
import { readChunk } from './read-chunk.js';

/** OWNER_VERSION is what the owner answers to Check, telling it apart from a guest agent. */
export const OWNER_VERSION = 'hako-owner/1';

// An exec's process JSON comes from another local process; bound it like the agent does.
const MAX_PROCESS_JSON = 1 << 20;
const MAX_READ = 1 << 20;

/** ControlOptions configures serveControl. */
export interface ControlOptions {
  sandbox: Sandbox;
  /** initProcess gives exec defaults (env, cwd, user) when the caller leaves them out. */
  initProcess: OciProcess;
  log: Logger;
  /** onDestroy is called (after the reply) when a client asks the owner to remove the sandbox. */
  onDestroy(): void;
}

/** serveControl listens on the sandbox's control socket (0600) and returns the server. */
export async function serveControl(opts: ControlOptions): Promise<Server> {
  const { sandbox } = opts;
  const server = new Server({ log: opts.log.child({ subsystem: 'control' }) });
  const container = (id: string): Container => {
    const c = sandbox.container(id);
    if (!c) throw errorf(Code.NOT_FOUND, `no container ${JSON.stringify(id)} in sandbox ${sandbox.id}`);
    return c;
  };
  const proc = (id: string, execId: string): Process => {
    const p = container(id).process(execId);
    if (!p) throw errorf(Code.NOT_FOUND, `no process ${JSON.stringify(execId)} in container ${id}`);
    return p;
  };
  registerService(server, Agent, {
    async check() {
      return { agentVersion: OWNER_VERSION };
    },
    async getGuestDetails() {
      const d = sandbox.guestDetails;
      return {
        ...d,
        uptimeAtAgentStartMs: BigInt(d.uptimeAtAgentStartMs),
        uptimeMs: BigInt(d.uptimeMs),
        memTotalKib: BigInt(d.memTotalKib),
      };
    },
    async execProcess(req) {
      if (req.processJson.length > MAX_PROCESS_JSON) throw errorf(Code.INVALID_ARGUMENT, 'process JSON is too large');
      let given: Partial<OciProcess>;
      try {
        given = JSON.parse(new TextDecoder().decode(req.processJson)) as Partial<OciProcess>;
      } catch (err) {
        throw errorf(Code.INVALID_ARGUMENT, `process JSON: ${(err as Error).message}`);
      }
      const base = opts.initProcess;
      const process: OciProcess = {
        ...base,
        ...given,
        args: given.args ?? [],
        env: given.env && given.env.length > 0 ? [...(base.env ?? []), ...given.env] : base.env,
        cwd: given.cwd || base.cwd,
        user: given.user ?? base.user,
        terminal: req.terminal,
      };
      // The init's console size is not the exec's: only a size the caller sent applies.
      if (given.consoleSize === undefined) delete process.consoleSize;
      const p = await container(req.containerId).exec({ execId: req.execId, process, stdin: req.stdin, terminal: req.terminal });
      return { pid: await p.start() };
    },
    async signalProcess(req) {
      await container(req.containerId).kill(req.signal, { execId: req.execId, all: req.all });
      return {};
    },
    async waitProcess(req, ctx) {
      const p = proc(req.containerId, req.execId);
      const aborted = new Promise<never>((_, reject) => ctx.signal.addEventListener('abort', () => reject(errorf(Code.CANCELLED, 'wait cancelled')), { once: true }));
      const info = await Promise.race([p.wait(), aborted]);
      return { exitStatus: info.exitStatus, exitedAt: timestampFromDate(info.exitedAt) };
    },
    async listProcesses(req) {
      return { pids: await container(req.containerId).pids() };
    },
    async readStdout(req, ctx) {
      return readChunk(proc(req.containerId, req.execId).stdout, Math.min(req.maxLen || MAX_READ, MAX_READ), ctx.signal);
    },
    async readStderr(req, ctx) {
      const s = proc(req.containerId, req.execId).stderr;
      if (!s) return { data: new Uint8Array(0), eof: true };
      return readChunk(s, Math.min(req.maxLen || MAX_READ, MAX_READ), ctx.signal);
    },
    async writeStdin(req) {
      const w = proc(req.containerId, req.execId).stdin;
      if (!w) throw errorf(Code.FAILED_PRECONDITION, 'the process was started without stdin');
      await new Promise<void>((resolve, reject) => w.write(Buffer.from(req.data), (err) => (err ? reject(HakoError.from(err)) : resolve())));
      return { len: req.data.length };
    },
    async closeStdin(req) {
      proc(req.containerId, req.execId).stdin?.end();
      return {};
    },
    async ttyWinResize(req) {
      await proc(req.containerId, req.execId).resize(req.rows, req.cols);
      return {};
    },
    async pauseContainer(req) {
      await container(req.containerId).pause();
      return {};
    },
    async resumeContainer(req) {
      await container(req.containerId).resume();
      return {};
    },
    async statsContainer(req) {
      return container(req.containerId).stats();
    },
    async destroySandbox() {
      setImmediate(() => opts.onDestroy());
      return {};
    },
  });
  await server.listen(sandbox.paths.control);
  return server;
}

/**
 * connectControl dials an owner's control socket (UNAVAILABLE when no owner listens). The owner
 * speaks the agent's API, so the same validating AgentClient drives it.
 */
export async function connectControl(path: string, log: Logger, callTimeoutMs?: number): Promise<AgentClient> {
  const sock = await dialUnix(path, { timeoutMs: 5000 });
  return new AgentClient(sock, { log, callTimeoutMs });
}
