// The schema of /etc/hako/config.toml: every key with its type, default and a one-line
// description. Loading, validation and `hako config` output are all driven from this table.

/** HakoConfig is the validated configuration every part of the host side reads. */
export interface HakoConfig {
  hypervisor: {
    /** path is the QEMU system emulator binary. */
    path: string;
    accel: 'auto' | 'kvm' | 'tcg';
    vcpus: number;
    memoryMiB: number;
    /** kernelParams are extra kernel command-line words appended after hako's own. */
    kernelParams: string[];
    /** tcgCacheMiB bounds TCG's translation cache per VM (software emulation only). */
    tcgCacheMiB: number;
  };
  agent: {
    timeoutMs: number;
    bootTimeoutMs: number;
  };
  runtime: {
    stateDir: string;
    cacheDir: string;
  };
  factory: {
    /** template boots sandbox VMs as clones of a saved VM template (docs/factory.md). */
    template: boolean;
    /** pool is how many warm VMs `hako factory serve` keeps ready. */
    pool: number;
  };
  network: {
    /** subnet is the IPv4 range of the hako CNI network (`hako run`, and `ctr run --cni` after setup). */
    subnet: string;
    /** bridge is the host bridge of that network. */
    bridge: string;
    /** pluginDirs are searched in order for the CNI plugin executables. */
    pluginDirs: string[];
  };
  log: {
    level: 'debug' | 'info' | 'warn' | 'error';
  };
}

/** KeyType is the TOML type a key accepts. */
export type KeyType =
  | { kind: 'string'; absolutePath?: boolean }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'integer'; min: number; max: number }
  | { kind: 'boolean' }
  | { kind: 'words'; absolutePaths?: boolean }
  | { kind: 'ipv4-network'; minPrefix: number; maxPrefix: number }
  | { kind: 'ifname' };

/** KeySpec describes one configuration key. */
export interface KeySpec {
  /** section and key give the TOML name `section.key`. */
  section: keyof HakoConfig;
  key: string;
  /** prop is the property of HakoConfig[section] the value lands in. */
  prop: string;
  type: KeyType;
  default: string | number | boolean | string[];
  description: string;
}

/** SCHEMA lists every key hako reads from its configuration file. */
export const SCHEMA: readonly KeySpec[] = [
  {
    section: 'hypervisor', key: 'path', prop: 'path',
    type: { kind: 'string', absolutePath: true }, default: '/usr/bin/qemu-system-x86_64',
    description: 'QEMU system emulator binary that runs the sandbox VMs',
  },
  {
    section: 'hypervisor', key: 'accel', prop: 'accel',
    type: { kind: 'enum', values: ['auto', 'kvm', 'tcg'] }, default: 'auto',
    description: 'accelerator: auto probes KVM and falls back to TCG (software emulation)',
  },
  {
    section: 'hypervisor', key: 'vcpus', prop: 'vcpus',
    type: { kind: 'integer', min: 1, max: 64 }, default: 1,
    description: 'virtual CPUs of each sandbox VM unless a sandbox asks for more',
  },
  {
    section: 'hypervisor', key: 'memory_mib', prop: 'memoryMiB',
    // The guest runs a Node agent: below about 128 MiB it gets OOM-killed.
    type: { kind: 'integer', min: 128, max: 1024 * 1024 }, default: 256,
    description: 'memory of each sandbox VM in MiB unless a sandbox asks for more',
  },
  {
    section: 'hypervisor', key: 'kernel_params', prop: 'kernelParams',
    type: { kind: 'words' }, default: [],
    description: 'extra guest kernel command-line words, appended after hako\'s own',
  },
  {
    section: 'hypervisor', key: 'tcg_cache_mib', prop: 'tcgCacheMiB',
    // Speed against memory: the cache fills with the code a VM runs; a full cache is flushed and
    // retranslated. 64 MiB measured starts 0.24-0.33 s and execs 0.12-0.14 s against 0.65-1.0 s and
    // 0.4-0.5 s at 32 MiB, for up to 32 MiB more memory per VM (docs/factory.md, Memory).
    type: { kind: 'integer', min: 8, max: 1024 }, default: 64,
    description: 'size of TCG\'s translation cache per VM in MiB (software emulation only): larger is faster, smaller uses less memory',
  },
  {
    section: 'agent', key: 'timeout_ms', prop: 'timeoutMs',
    type: { kind: 'integer', min: 100, max: 3_600_000 }, default: 30_000,
    description: 'deadline of one call to the guest agent (container create, kill, ...)',
  },
  {
    section: 'agent', key: 'boot_timeout_ms', prop: 'bootTimeoutMs',
    // A cold boot under TCG takes about 3 s here; leave room for a loaded machine.
    type: { kind: 'integer', min: 1000, max: 3_600_000 }, default: 60_000,
    description: 'deadline from starting QEMU until the guest agent answers',
  },
  {
    section: 'runtime', key: 'state_dir', prop: 'stateDir',
    type: { kind: 'string', absolutePath: true }, default: '/run/hako',
    description: 'runtime state: one directory per sandbox under sandboxes/',
  },
  {
    section: 'runtime', key: 'cache_dir', prop: 'cacheDir',
    type: { kind: 'string', absolutePath: true }, default: '/var/cache/hako',
    description: 'built guest kernel and root image, the busybox image, unpacked image rootfs',
  },
  {
    section: 'factory', key: 'template', prop: 'template',
    type: { kind: 'boolean' }, default: true,
    description: 'start VMs as copy-on-write clones of a saved, warmed-up VM (a failed restore boots cold)',
  },
  {
    section: 'factory', key: 'pool', prop: 'pool',
    // Each warm VM holds its own QEMU (about 80 MiB when idle): a few are enough to absorb bursts.
    type: { kind: 'integer', min: 0, max: 64 }, default: 0,
    description: 'warm VMs that `hako factory serve` keeps restored and ready to hand out',
  },
  {
    section: 'network', key: 'subnet', prop: 'subnet',
    // Inside 10/8, away from the ranges other tools default to (docker 172.17/16, podman
    // 10.88/16, k3s 10.42/16, flannel 10.244/16). host-local takes .1 as the gateway, so a /30
    // holds one container.
    type: { kind: 'ipv4-network', minPrefix: 8, maxPrefix: 30 }, default: '10.213.0.0/16',
    description: 'IPv4 subnet of the hako CNI network; it must not overlap an address of the host',
  },
  {
    section: 'network', key: 'bridge', prop: 'bridge',
    type: { kind: 'ifname' }, default: 'hako0',
    description: 'host bridge of the hako CNI network, shared by `hako run` and `ctr run --cni` containers',
  },
  {
    section: 'network', key: 'plugin_dirs', prop: 'pluginDirs',
    // ctr and most runtimes look in /opt/cni/bin; Debian's containernetworking-plugins installs to /usr/lib/cni.
    type: { kind: 'words', absolutePaths: true }, default: ['/opt/cni/bin', '/usr/lib/cni'],
    description: 'directories searched in order for CNI plugin executables',
  },
  {
    section: 'log', key: 'level', prop: 'level',
    type: { kind: 'enum', values: ['debug', 'info', 'warn', 'error'] }, default: 'info',
    description: 'least severity of log lines that are written',
  },
];

/** defaultConfig returns a fresh HakoConfig holding every key's default. */
export function defaultConfig(): HakoConfig {
  const out: Record<string, Record<string, unknown>> = {};
  for (const spec of SCHEMA) {
    const section = (out[spec.section] ??= {});
    section[spec.prop] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
  }
  return out as unknown as HakoConfig;
}
