// Sandbox-wide guest setup for CreateSandbox/DestroySandbox/SetGuestDateTime/ReseedRandomDev:
// the 9p share mount, hostname, resolv.conf, the clock and the entropy pool.

import { mkdir, open, writeFile } from 'node:fs/promises';
import { Code, HakoError } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import { runCommand } from './crun.js';
import { validateHostname, validateNameserver, validateShareTag } from './ids.js';
import { SHARE_ROOT } from './spec-rewrite.js';

/** MAX_RESEED_BYTES bounds ReseedRandomDev's data. */
export const MAX_RESEED_BYTES = 64 * 1024;

/** SandboxSetup remembers what CreateSandbox did, so it is idempotent and checkable. */
export class SandboxSetup {
  private created: { sandboxId: string; shareTag: string } | null = null;

  constructor(private readonly log: Logger, private readonly shareRoot = SHARE_ROOT) {}

  /** shareReady throws FAILED_PRECONDITION until the share is mounted. */
  shareReady(): void {
    if (!this.created) throw new HakoError(Code.FAILED_PRECONDITION, 'the sandbox is not created yet (CreateSandbox mounts the share)');
  }

  /** create mounts the share and sets hostname and DNS; repeating it with the same share is a no-op. */
  async create(req: { sandboxId: string; hostname: string; shareTag: string; dns: string[] }): Promise<void> {
    const tag = validateShareTag(req.shareTag);
    if (req.sandboxId.length > 256) throw new HakoError(Code.INVALID_ARGUMENT, 'sandbox id is too long');
    if (req.hostname !== '') validateHostname(req.hostname);
    if (req.dns.length > 16) throw new HakoError(Code.INVALID_ARGUMENT, 'more than 16 DNS servers');
    req.dns.forEach(validateNameserver);
    if (this.created) {
      if (this.created.shareTag === tag && this.created.sandboxId === req.sandboxId) return;
      throw new HakoError(Code.ALREADY_EXISTS, `sandbox ${this.created.sandboxId} already created`);
    }
    const t0 = Date.now();
    await mkdir(this.shareRoot, { recursive: true });
    const r = await runCommand(['mount', '-t', '9p', '-o', 'trans=virtio,version=9p2000.L,msize=262144', tag, this.shareRoot], { timeoutMs: 30_000 });
    if (r.status !== 0) throw new HakoError(Code.UNKNOWN, `mounting the 9p share ${tag}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
    if (req.hostname !== '') await writeFile('/proc/sys/kernel/hostname', req.hostname);
    if (req.dns.length > 0) {
      // /etc/resolv.conf on the read-only root links to /run/resolv.conf.
      await writeFile('/run/resolv.conf', req.dns.map((d) => `nameserver ${d}\n`).join(''));
    }
    this.created = { sandboxId: req.sandboxId, shareTag: tag };
    this.log.info('sandbox created', { sandbox: req.sandboxId, shareTag: tag, hostname: req.hostname, ms: Date.now() - t0 });
  }

  /** destroy unmounts the share (containers must be gone). */
  async destroy(): Promise<void> {
    if (!this.created) return;
    const r = await runCommand(['umount', this.shareRoot], { timeoutMs: 30_000 });
    if (r.status !== 0) this.log.warn('unmounting the share failed', { err: r.stderr.trim().slice(0, 500) });
    this.created = null;
  }
}

/** setGuestDateTime sets the clock (busybox date -s @sec); usec is applied to the nearest second. */
export async function setGuestDateTime(sec: bigint, usec: bigint): Promise<void> {
  // 2000-01-01 .. 2200-01-01: anything else is a broken host clock, not a time to set.
  if (sec < 946_684_800n || sec > 7_258_118_400n) throw new HakoError(Code.INVALID_ARGUMENT, `implausible time ${sec}`);
  if (usec < 0n || usec >= 1_000_000n) throw new HakoError(Code.INVALID_ARGUMENT, `invalid usec ${usec}`);
  const whole = usec >= 500_000n ? sec + 1n : sec;
  const r = await runCommand(['date', '-u', '-s', `@${whole}`], { timeoutMs: 10_000 });
  if (r.status !== 0) throw new HakoError(Code.UNKNOWN, `date -s: ${r.stderr.trim().slice(0, 500)}`);
}

/** reseedRandom mixes host-provided bytes into the guest's entropy pool (after a snapshot restore). */
export async function reseedRandom(data: Uint8Array): Promise<void> {
  if (data.length === 0) throw new HakoError(Code.INVALID_ARGUMENT, 'no seed data');
  if (data.length > MAX_RESEED_BYTES) throw new HakoError(Code.INVALID_ARGUMENT, `seed of ${data.length} bytes is too large`);
  const fh = await open('/dev/urandom', 'w');
  try {
    await fh.write(data);
  } finally {
    await fh.close();
  }
}
