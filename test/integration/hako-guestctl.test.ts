// hako-guestctl, the agent's C co-process, compiled with the host's gcc and driven by the agent's
// own client (src/guest/agent/guestctl.ts) on the host: replies, errors, ordering, restarts.
// Only calls that leave the host as it was are made (no clock setting, no entropy credit).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, HakoError } from '../../src/errors/index.js';
import { nullLogger } from '../../src/log/index.js';
import { guestFilesDir } from '../../src/image/paths.js';
import { GUESTCTL_SOURCES } from '../../src/image/root-image.js';
import { GuestCtl } from '../../src/guest/agent/guestctl.js';
import { reseedRandom, setGuestDateTime } from '../../src/guest/agent/sandbox-setup.js';

let dir = '';
let bin = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hako-guestctl-'));
  bin = join(dir, 'hako-guestctl');
  const cFiles = GUESTCTL_SOURCES.filter((f) => f.endsWith('.c')).map((f) => join(guestFilesDir(), f));
  execFileSync('gcc', ['-static', '-Os', '-Wall', '-Werror', '-o', bin, ...cFiles]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const mounted = (p: string): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);

test('umount succeeds on a real mount and reports errno text otherwise', async () => {
  const ctl = new GuestCtl(bin, nullLogger);
  const target = join(dir, 'mnt');
  mkdirSync(target);
  execFileSync('mount', ['-t', 'tmpfs', 'hako-guestctl-test', target]);
  assert.ok(mounted(target));
  await ctl.umount(target);
  assert.ok(!mounted(target), 'hako-guestctl unmounted it');
  await assert.rejects(ctl.umount(target), (e: unknown) => e instanceof HakoError && /umount: Invalid argument/.test(e.message));
  await assert.rejects(ctl.umount(join(dir, 'missing')), /umount: No such file or directory/);
  await assert.rejects(ctl.umount('relative'), /umount: Invalid argument/);
  await assert.rejects(ctl.mount9p('tag', 'relative', 262144), /mount9p: Invalid argument/);
  await assert.rejects(ctl.umount('/with space'), (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT);
  ctl.close();
});

test('concurrent requests are answered in order, one each', async () => {
  const ctl = new GuestCtl(bin, nullLogger);
  const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? ctl.umount(join(dir, `none${i}`)) : ctl.umount('relative'))));
  results.forEach((r, i) => {
    assert.equal(r.status, 'rejected');
    assert.match(String((r as PromiseRejectedResult).reason.message), i % 2 === 0 ? /No such file or directory/ : /Invalid argument/);
  });
  ctl.close();
});

test('a helper that dies is restarted by the next request', async () => {
  const ctl = new GuestCtl(bin, nullLogger);
  await assert.rejects(ctl.umount('relative'), /Invalid argument/);
  execFileSync('pkill', ['-KILL', '-f', `^${bin}$`]);
  await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(ctl.umount('relative'), /Invalid argument/, 'a new helper answers');
  ctl.close();
});

test('the clock and entropy checks refuse bad input before the helper sees it', async () => {
  const ctl = new GuestCtl(bin, nullLogger);
  await assert.rejects(setGuestDateTime(ctl, 100n, 0n), (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT && /implausible/.test(e.message));
  await assert.rejects(setGuestDateTime(ctl, 2_000_000_000n, 1_000_000n), /invalid usec/);
  await assert.rejects(reseedRandom(ctl, new Uint8Array()), /no seed data/);
  await assert.rejects(reseedRandom(ctl, new Uint8Array(257)), /too large/);
  ctl.close();
});
