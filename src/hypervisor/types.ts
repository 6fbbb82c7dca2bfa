// Typed descriptions of a VM and its devices: what a sandbox hands to a hypervisor driver.
// Drivers turn these into their own configuration (QEMU: a command line); nothing here is QEMU syntax.

/** AccelPreference is the configured accelerator choice; `auto` means probe. */
export type AccelPreference = 'auto' | 'kvm' | 'tcg';

/** Accel is the accelerator a VM runs with. */
export type Accel =
  | { kind: 'kvm' }
  | {
      kind: 'tcg';
      /** thread: `multi` runs one host thread per vCPU (MTTCG); default `multi` when vcpus > 1, else `single`. */
      thread?: 'single' | 'multi';
      /** tbSizeMiB bounds the translation-block cache; QEMU's default reserves 1 GiB and fills it as code runs. */
      tbSizeMiB?: number;
    };

/** BlockDevice is a raw disk image on virtio-blk. The first one is the guest's /dev/vda. */
export interface BlockDevice {
  kind: 'blk';
  /** id names the device within the VM (letters, digits, `-`, `_`, `.`). */
  id: string;
  path: string;
  readonly: boolean;
}

/** NinePDevice shares a host directory with the guest over virtio-9p. */
export interface NinePDevice {
  kind: '9p';
  path: string;
  /** tag is the mount tag the guest passes to `mount -t 9p`. */
  tag: string;
  readonly: boolean;
}

/**
 * SerialConsole sends the guest's first serial port (ttyS0) to a host file. The guest controls
 * what it writes, so drivers must cap the file (QEMU: a socket the driver copies, 4 MiB at most).
 */
export interface SerialConsole {
  kind: 'serial-console';
  logPath: string;
}

/** VirtioSerialPort is a named virtio-serial port backed by a unix socket the hypervisor listens on. */
export interface VirtioSerialPort {
  kind: 'virtio-serial-port';
  /** name is what the guest sees in /sys/class/virtio-ports/<port>/name. */
  name: string;
  socketPath: string;
}

/** RngDevice gives the guest a virtio-rng fed from the host's /dev/urandom. */
export interface RngDevice {
  kind: 'rng';
}

/** NetTapDevice attaches an existing tap interface as a virtio-net NIC. */
export interface NetTapDevice {
  kind: 'net-tap';
  ifname: string;
  /** mac is a unicast address, `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  /** vhost uses /dev/vhost-net; absent on some hosts (this one), so it is off unless asked for. */
  vhost?: boolean;
}

/**
 * NicSlotsDevice reserves hot-plug slots for NICs added while the VM runs (QEMU: PCIe root
 * ports, since q35's root bus takes no hot-plug). A template needs them to give clones NICs.
 */
export interface NicSlotsDevice {
  kind: 'nic-slots';
  /** count is the number of slots, 1 .. 16. */
  count: number;
}

/** VsockDevice gives the guest a vhost-vsock device; needs /dev/vhost-vsock on the host. */
export interface VsockDevice {
  kind: 'vsock';
  /** cid is the guest's context id, 3 .. 2^32-2, unique on the host. */
  cid: number;
}

/**
 * VmGenIdDevice gives the guest a VM generation ID (ACPI vmgenid) that changes in every new
 * hypervisor process, so a guest restored from a template notices and reseeds its RNG at once.
 */
export interface VmGenIdDevice {
  kind: 'vmgenid';
}

/** Device is any device a VM description can hold. */
export type Device =
  | BlockDevice
  | NinePDevice
  | SerialConsole
  | VirtioSerialPort
  | RngDevice
  | NetTapDevice
  | NicSlotsDevice
  | VsockDevice
  | VmGenIdDevice;

/** DeviceKind is the tag of a Device. */
export type DeviceKind = Device['kind'];

/** KernelBoot is a direct kernel boot: no bootloader, the hypervisor loads the kernel itself. */
export interface KernelBoot {
  path: string;
  initrdPath?: string;
  /** params are kernel command-line words (`console=ttyS0`, `ro`); no whitespace inside one. */
  params: string[];
}

/**
 * FileMemory backs guest RAM with a file instead of anonymous memory (VM templates). `shared`
 * writes through to the file (a template being built); private maps it copy-on-write (a clone),
 * so pages no clone writes stay one copy in the host page cache.
 */
export interface FileMemory {
  kind: 'file';
  /** path is the RAM file, on tmpfs; its size is the VM's memory. */
  path: string;
  shared: boolean;
}

/** VmDescription is everything needed to start one VM. */
export interface VmDescription {
  /** id names the VM (letters, digits, `-`, `_`, `.`; at most 64). */
  id: string;
  vcpus: number;
  memoryMiB: number;
  /** kernel is absent only for tests: the VM then sits in its firmware. */
  kernel?: KernelBoot;
  accel: Accel;
  /** devices appear to the guest in this order (the first `blk` is /dev/vda). */
  devices: Device[];
  /** runtimeDir holds the driver's files for this VM (control socket, pidfile, log); mode 0700. */
  runtimeDir: string;
  /** memory places guest RAM in a file; absent means anonymous memory. */
  memory?: FileMemory;
  /**
   * incoming starts the VM waiting for a saved state (Vm restore) instead of booting; the
   * devices must then be the same as those of the VM that was saved, in the same order.
   */
  incoming?: boolean;
}
