// hako-agent's entry point (bundled to /usr/lib/hako/hako-agent.mjs): serves hako.agent.v1.Agent
// over ttRPC on the virtio-serial port. Any fatal error exits the process, and the guest then powers off.

import { runAgent } from './agent-main.js';

runAgent({ startedFrom: 'bundle' });
