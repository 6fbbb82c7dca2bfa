// The hako.agent.v1.Agent implementation: decodes nothing itself (the ttRPC layer does),
// checks arguments and delegates to the sandbox setup, container manager, OOM watcher and network.

import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, HakoError } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import { Agent } from '../../protocols/generated/hako/agent_pb.js';
import type { ServiceImpl } from '../../ttrpc/index.js';
import type { ContainerManager } from './containers.js';
import { AGENT_VERSION, type GuestInfo } from './guest-info.js';
import type { GuestCtl } from './guestctl.js';
import type { GuestNetwork } from './network.js';
import type { OomWatcher } from './oom-watch.js';
import { reseedRandom, setGuestDateTime, type SandboxSetup } from './sandbox-setup.js';

/** MAX_READ_CHUNK caps ReadStdout/ReadStderr answers whatever max_len the host asks for. */
export const MAX_READ_CHUNK = 1 << 20;

/** AgentDeps are the parts the service delegates to. */
export interface AgentDeps {
  log: Logger;
  info: GuestInfo;
  sandbox: SandboxSetup;
  containers: ContainerManager;
  oom: OomWatcher;
  ctl: GuestCtl;
  network: GuestNetwork;
}

/** agentService builds the Agent implementation for registerService. */
export function agentService(d: AgentDeps): ServiceImpl<typeof Agent> {
  const { containers, network } = d;
  return {
    async check() {
      return { agentVersion: AGENT_VERSION };
    },
    async getGuestDetails() {
      return d.info.details();
    },
    async setGuestDateTime(req) {
      await setGuestDateTime(d.ctl, req.sec, req.usec);
      return {};
    },
    async createSandbox(req) {
      await d.sandbox.create({ sandboxId: req.sandboxId, hostname: req.hostname, shareTag: req.shareTag, dns: req.dns });
      return {};
    },
    async destroySandbox() {
      await containers.removeAll();
      await d.sandbox.destroy();
      return {};
    },
    async reseedRandomDev(req) {
      await reseedRandom(d.ctl, req.data);
      return {};
    },
    async createContainer(req) {
      await containers.create({ containerId: req.containerId, specJson: req.specJson, stdin: req.stdin, terminal: req.terminal });
      return {};
    },
    async startContainer(req) {
      return { pid: await containers.start(req.containerId) };
    },
    async removeContainer(req) {
      await containers.remove(req.containerId, req.force);
      return {};
    },
    async execProcess(req) {
      const pid = await containers.exec({
        containerId: req.containerId, execId: req.execId, processJson: req.processJson, stdin: req.stdin, terminal: req.terminal,
      });
      return { pid };
    },
    async signalProcess(req) {
      await containers.signal(req.containerId, req.execId, req.signal, req.all);
      return {};
    },
    async waitProcess(req, ctx) {
      const e = await containers.wait(req.containerId, req.execId, ctx.signal);
      return { exitStatus: e.status, exitedAt: timestampFromDate(e.exitedAt) };
    },
    async listProcesses(req) {
      return { pids: await containers.pids(req.containerId) };
    },
    async updateContainer(req) {
      await containers.update(req.containerId, req.resourcesJson);
      return {};
    },
    async statsContainer(req) {
      return containers.stats(req.containerId);
    },
    async pauseContainer(req) {
      await containers.pause(req.containerId);
      return {};
    },
    async resumeContainer(req) {
      await containers.resume(req.containerId);
      return {};
    },
    async getOOMEvent(_req, ctx) {
      return { containerId: await d.oom.next(ctx.signal) };
    },
    async writeStdin(req, ctx) {
      const p = containers.process(req.containerId, req.execId);
      return { len: await p.writeStdin(req.data, ctx.signal) };
    },
    async readStdout(req, ctx) {
      const p = containers.process(req.containerId, req.execId);
      return p.stdout.read(readLimit(req.maxLen), ctx.signal);
    },
    async readStderr(req, ctx) {
      const p = containers.process(req.containerId, req.execId);
      return p.stderr.read(readLimit(req.maxLen), ctx.signal);
    },
    async closeStdin(req) {
      containers.process(req.containerId, req.execId).closeStdin();
      return {};
    },
    async updateInterface(req, ctx) {
      return network.updateInterface(req.interface, ctx.signal);
    },
    async updateRoutes(req) {
      return { routes: await network.updateRoutes(req.routes?.routes ?? []) };
    },
    async addARPNeighbors(req) {
      await network.addNeighbors(req.neighbors);
      return {};
    },
    async listInterfaces() {
      return { interfaces: await network.listInterfaces() };
    },
    async listRoutes() {
      return { routes: await network.listRoutes() };
    },
    async ttyWinResize(req) {
      if (req.rows > 0xffff || req.cols > 0xffff) throw new HakoError(Code.INVALID_ARGUMENT, `invalid window size ${req.rows}x${req.cols}`);
      await containers.process(req.containerId, req.execId).resize(req.rows, req.cols);
      return {};
    },
  };
}

function readLimit(maxLen: number): number {
  if (maxLen === 0) throw new HakoError(Code.INVALID_ARGUMENT, 'max_len must be positive');
  return Math.min(maxLen, MAX_READ_CHUNK);
}
