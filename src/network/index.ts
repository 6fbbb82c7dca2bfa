// Public surface of hako's host networking: the namespace holder, reading a namespace, and the
// tap + tc mirroring that joins a pod interface to a VM; CNI (the exec protocol, hako's own network, ports).
export { NetnsHolder, nsExec, nsBatch } from './netns.js';
export type { NetnsTarget } from './netns.js';
export { inspectNetns, parseLinks, parseRoutes } from './inspect.js';
export type { NetAddress, NetLink, NetRoute, NetnsView } from './inspect.js';
export { endpointsOf, mirror, mirrorLines, moveTap, tapName, unmirror, TAP_PREFIX } from './mirror.js';
export { cniAdd, cniDel } from './cni.js';
export type { CniAttachment, CniDelOptions } from './cni.js';
export { parseConflist } from './cni-config.js';
export type { CniConflist } from './cni-config.js';
export { containerIpv4 } from './cni-result.js';
export type { CniResult } from './cni-result.js';
export { hakoConflist, checkSubnetFree, HAKO_NETWORK_NAME, DEFAULT_SUBNET, DEFAULT_BRIDGE, DEFAULT_PLUGIN_DIRS } from './hako-network.js';
export { parsePublish, formatPortMapping, findPortConflicts, hostPortInUse, ensureHostPortFree, portMappingsArg } from './ports.js';
export type { PortMapping, PortProtocol } from './ports.js';
