// An in-process fake hako-agent for AgentClient unit tests: a ttRPC Server with a partial Agent
// implementation on one end of an in-memory Duplex pair, the client on the other.

import { Duplex } from 'node:stream';
import { AgentClient } from '../../src/agent-client/index.js';
import { Agent } from '../../src/protocols/generated/hako/agent_pb.js';
import { registerService, Server, type ServiceImpl } from '../../src/ttrpc/index.js';

/** duplexPair returns two connected in-memory Duplex ends. */
export function duplexPair(): [Duplex, Duplex] {
  let a: Duplex;
  let b: Duplex;
  const mk = (peer: () => Duplex) => new Duplex({
    read() {},
    write(chunk, _enc, cb) {
      peer().push(chunk);
      cb();
    },
    final(cb) {
      peer().push(null);
      cb();
    },
    destroy(err, cb) {
      peer().destroy();
      cb(err);
    },
  });
  a = mk(() => b);
  b = mk(() => a);
  return [a, b];
}

/** fakeAgent serves impl (missing methods answer UNIMPLEMENTED) to a new AgentClient. */
export function fakeAgent(impl: ServiceImpl<typeof Agent>, callTimeoutMs = 2_000): { client: AgentClient; hostEnd: Duplex; guestEnd: Duplex } {
  const server = new Server();
  registerService(server, Agent, impl);
  const [hostEnd, guestEnd] = duplexPair();
  server.serve(guestEnd);
  return { client: new AgentClient(hostEnd, { callTimeoutMs }), hostEnd, guestEnd };
}
