// Public surface of the VM factory: provisionVm (pool, template clone or cold boot), the template
// store and key, the warm pool daemon and client, and the sandbox VM recipe they all share.
export { provisionVm, factoryDir, poolSocket } from './provision.js';
export type { ProvisionOptions, ProvisionedVm, ProvisionMark, VmSource } from './provision.js';
export { AGENT_PORT_NAME, NIC_SLOTS, sandboxVmDescription, deviceSignature, vmDirPaths, shareDirOf } from './recipe.js';
export type { VmRecipe, VmDirPaths } from './recipe.js';
export { templateKey, FACTORY_FORMAT } from './key.js';
export type { TemplateKey, TemplateInputs } from './key.js';
export { TemplateStore } from './store.js';
export type { Template, TemplateMeta, TemplateInfo } from './store.js';
export { buildTemplate, cloneTemplate, ensureTemplate, BadTemplateError } from './template.js';
export { warmUp, WARM_UP_SANDBOX_ID } from './warm-up.js';
export { personalizeGuest, RESEED_BYTES } from './personalize.js';
export type { WarmUpInputs } from './warm-up.js';
export { PoolDaemon, poolVmsDir, POOL_NICE } from './pool-daemon.js';
export { poolRequest, poolStatus, takeFromPool } from './pool-client.js';
export { isTmpfs, ensureTmpfs, unmountOwnTmpfs } from './tmpfs.js';
