// Public surface of the hypervisor layer: VM and device descriptions, the Hypervisor/Vm contracts,
// optional abilities, description validation and the accelerator probe. Drivers live in subfolders.
export type {
  Accel,
  AccelPreference,
  BlockDevice,
  Device,
  DeviceKind,
  FileMemory,
  KernelBoot,
  NetTapDevice,
  NicSlotsDevice,
  NinePDevice,
  RngDevice,
  SerialConsole,
  VirtioSerialPort,
  VmDescription,
  VsockDevice,
  VmGenIdDevice,
} from './types.js';
export type {
  CallOptions,
  HotNic,
  Hypervisor,
  NicHotplug,
  QmpAccess,
  SavedVmState,
  StartOptions,
  StopOptions,
  Vm,
  VmEvent,
  VmEvents,
  VmExit,
  VmExitReason,
  VmHandOff,
  VmRunState,
  VmStateSave,
} from './vm.js';
export { hasEvents, hasHandOff, hasNicHotplug, hasQmp, hasStateSave } from './vm.js';
export { validateDescription, MAX_NIC_SLOTS, MAX_SOCKET_PATH, MAX_KERNEL_CMDLINE } from './validate.js';
export { chooseAccel, probeAccel, readAccelFacts, parseCpuVirt, parseProcModules, DEFAULT_ACCEL_PATHS, DEFAULT_TCG_TB_SIZE_MIB } from './accel.js';
export type { AccelChoice, AccelFacts, AccelPaths } from './accel.js';
