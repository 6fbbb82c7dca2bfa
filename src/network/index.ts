// Public surface of hako's host networking: the namespace holder, reading a namespace, and the
// tap + tc mirroring that joins a pod interface to a VM.
export { NetnsHolder, nsExec, nsBatch } from './netns.js';
export type { NetnsTarget } from './netns.js';
export { inspectNetns, parseLinks, parseRoutes } from './inspect.js';
export type { NetAddress, NetLink, NetRoute, NetnsView } from './inspect.js';
export { endpointsOf, mirror, mirrorLines, moveTap, tapName, unmirror, TAP_PREFIX } from './mirror.js';
