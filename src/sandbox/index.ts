// Public surface of hako's sandbox core: Sandbox, Container and Process, cleanup by id,
// state.json, the default OCI spec for `hako run`, and the timing marks of the boot path.
export { Sandbox, AGENT_PORT_NAME } from './sandbox.js';
export { sandboxRecipe } from './recipe.js';
export { warmUpInputs } from './warm-up-inputs.js';
export type { SandboxCreateOptions, CreateContainerOptions } from './sandbox-options.js';
export { Container } from './container.js';
export type { ExecOptions } from './container.js';
export { Process } from './process.js';
export type { ExitInfo } from './process.js';
export { cleanupSandbox, DEFAULT_STATE_DIR } from './cleanup.js';
export type { CleanupOptions } from './cleanup.js';
export { sandboxPaths, sandboxesDir, validSandboxId } from './paths.js';
export type { SandboxPaths } from './paths.js';
export { readState, writeState, listSandboxIds, pidAlive } from './state.js';
export type { SandboxState, ContainerRecord, ContainerStatus, SandboxStatus } from './state.js';
export { defaultSpec, mergeEnv, resolveUser, isBindMount, DEFAULT_PATH, DEFAULT_CAPABILITIES } from './spec.js';
export type { OciSpec, OciProcess, OciMount, SpecInput, Volume } from './spec.js';
export { Timings } from './timings.js';
export type { TimingMark } from './timings.js';
export type { AgentClient } from '../agent-client/index.js';
export { OWNER_NODE_FLAGS } from './owner-flags.js';
export { hostnameOf, parseAddHost, resolvConf, hostsFile } from './etc-files.js';
