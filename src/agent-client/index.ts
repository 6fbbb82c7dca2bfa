// Public surface of the host-side hako-agent client.
export { AgentClient, DEFAULT_CALL_TIMEOUT_MS } from './agent-client.js';
export type { AgentCallOptions, AgentClientOptions, ContainerStats, GuestDetailsInfo, ProcessExit } from './agent-client.js';
export { dialWithRetry } from './connect.js';
export { MAX_GUEST_ADDRESSES, MAX_GUEST_NEIGHBORS, MAX_GUEST_ROUTES } from './network.js';
export type { GuestInterface, GuestIpAddress, GuestNeighbor, GuestRoute } from './network.js';
export { MAX_READ_LEN, MAX_SPEC_BYTES, PID_MAX } from './validate.js';
