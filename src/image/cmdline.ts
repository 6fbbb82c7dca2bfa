// The guest kernel's base command line, as agreed in docs/guest-contract.md.
// The host appends its hako.* parameters; the guest agent reads them from /proc/cmdline.

/**
 * BASE_KERNEL_CMDLINE: serial console on ttyS0, the read-only ext4 root on the
 * first virtio-blk disk, busybox init as PID 1, reboot at once on panic
 * (panic=-1; run QEMU with -no-reboot so that means "QEMU exits").
 */
export const BASE_KERNEL_CMDLINE = 'console=ttyS0 root=/dev/vda ro rootfstype=ext4 init=/sbin/init panic=-1 quiet';
