// Public surface of the QEMU driver: the Hypervisor implementation, leftover cleanup, the
// command-line builder and the QMP client (for tools and tests that need them directly).
export { QemuHypervisor, DEFAULT_START_TIMEOUT_MS } from './qemu-hypervisor.js';
export type { AdoptOptions, QemuHypervisorOptions } from './qemu-hypervisor.js';
export { setVmPriority } from './vm-process.js';
export { MAX_STATE_BYTES } from './migration.js';
export { QemuVm, explainExit } from './qemu-vm.js';
export { isDead, isQemuOf, isVmOf, killLeftoverVm, readPidFile, startTimeOf } from './leftover.js';
export type { KillLeftoverOptions } from './leftover.js';
export { buildQemuArgs, optValue } from './cmdline.js';
export { QmpClient, qmpErrorOf, DEFAULT_QMP_TIMEOUT_MS } from './qmp.js';
export type { QmpCallOptions, QmpConnectOptions } from './qmp.js';
export type { QmpErrorDetail, QmpEvent, QmpGreeting } from './qmp-wire.js';
export { CONSOLE_LOG_MAX_BYTES } from './console.js';
export { qemuRuntimeFiles } from './runtime-files.js';
export type { QemuRuntimeFiles } from './runtime-files.js';
