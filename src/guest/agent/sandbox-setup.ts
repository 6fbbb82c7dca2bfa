// Sandbox-wide guest setup for CreateSandbox/DestroySandbox/SetGuestDateTime/ReseedRandomDev:
// the 9p share mount, hostname, resolv.conf, the clock and the entropy pool (through hako-guestctl).

import { mkdir, writeFile } from 'node:fs/promises';
import { Code, HakoError } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import type { GuestCtl } from './guestctl.js';
import { validateHostname, validateNameserver, validateShareTag } from './ids.js';
import { SHARE_ROOT } from './spec-rewrite.js';

/** SHARE_MSIZE is the 9p message size: 256 KiB moves large reads and writes in few round trips. */
const SHARE_MSIZE = 262_144;

/** MAX_RESEED_BYTES bounds ReseedRandomDev's data (one hako-guestctl request). */
export const MAX_RESEED_BYTES = 256;

/** SandboxSetup remembers what CreateSandbox did, so it is idempotent and checkable. */
export class SandboxSetup {
  private created: { sandboxId: string; shareTag: string } | null = null;

  constructor(private readonly log: Logger, private readonly ctl: GuestCtl, private readonly shareRoot = SHARE_ROOT) {}

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
    await this.ctl.mount9p(tag, this.shareRoot, SHARE_MSIZE).catch((err: unknown) => {
      throw HakoError.wrap(err, `mounting the 9p share ${tag}`);
    });
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
    await this.ctl.umount(this.shareRoot).catch((err: unknown) => this.log.warn('unmounting the share failed', { err }));
    this.created = null;
  }
}

/** setGuestDateTime sets the clock to sec + usec (clock_settime, microsecond precision). */
export async function setGuestDateTime(ctl: GuestCtl, sec: bigint, usec: bigint): Promise<void> {
  // 2000-01-01 .. 2200-01-01: anything else is a broken host clock, not a time to set.
  if (sec < 946_684_800n || sec > 7_258_118_400n) throw new HakoError(Code.INVALID_ARGUMENT, `implausible time ${sec}`);
  if (usec < 0n || usec >= 1_000_000n) throw new HakoError(Code.INVALID_ARGUMENT, `invalid usec ${usec}`);
  await ctl.setTime(sec, usec);
}

/**
 * reseedRandom credits host-provided bytes to the guest's entropy pool and reseeds the kernel
 * RNG at once (RNDADDENTROPY + RNDRESEEDCRNG): a plain write to /dev/urandom only mixes them in,
 * and the RNG would keep its pre-snapshot state until its next scheduled reseed.
 */
export async function reseedRandom(ctl: GuestCtl, data: Uint8Array): Promise<void> {
  if (data.length === 0) throw new HakoError(Code.INVALID_ARGUMENT, 'no seed data');
  if (data.length > MAX_RESEED_BYTES) throw new HakoError(Code.INVALID_ARGUMENT, `seed of ${data.length} bytes is too large`);
  await ctl.reseed(data);
}
