// `hako check`: whether this host can run hako, and why not: QEMU and its version, the
// accelerator and the reason for it, guest assets, 9p, overlayfs, /dev/net/tun, containerd.

import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { access, readFile, stat } from 'node:fs/promises';
import { HakoError } from '../errors/index.js';
import { probeAccel } from '../hypervisor/index.js';
import { assetStatus } from '../image/index.js';
import type { CliContext } from './context.js';

type Verdict = 'ok' | 'warn' | 'FAIL';

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 10_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(err) : resolve(stdout + stderr)));
  });
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    setTimeout(() => done(false), 2000).unref();
  });
}

/** checkCommand implements `hako check`; it exits 1 when something required is missing. */
export async function checkCommand(_argv: string[], ctx: CliContext, configSource: string | null, dropIns: readonly string[] = []): Promise<number> {
  const lines: Array<[Verdict, string, string]> = [];
  const add = (v: Verdict, what: string, detail: string): void => void lines.push([v, what, detail]);
  const withDropIns = dropIns.length > 0 ? `, then ${dropIns.join(', ')}` : '';
  add('ok', 'config', (configSource ?? 'no config file: compiled-in defaults (/etc/hako/config.toml or HAKO_CONFIG)') + withDropIns);

  const qemu = ctx.config.hypervisor.path;
  try {
    const version = (await run(qemu, ['--version'])).split('\n')[0]!.trim();
    add('ok', 'qemu', `${version} (${qemu})`);
    const devices = await run(qemu, ['-nodefaults', '-device', 'help']);
    add(devices.includes('virtio-9p-pci') ? 'ok' : 'FAIL', '9p', devices.includes('virtio-9p-pci') ? 'QEMU has virtio-9p-pci (the sandbox share)' : 'QEMU lacks virtio-9p-pci');
    add(devices.includes('virtserialport') ? 'ok' : 'FAIL', 'virtio-serial', devices.includes('virtserialport') ? 'QEMU has virtserialport (the agent channel)' : 'QEMU lacks virtserialport');
  } catch (err) {
    add('FAIL', 'qemu', `${qemu} does not run (${(err as Error).message.split('\n')[0]}): install qemu-system-x86`);
  }
  try {
    const choice = await probeAccel(ctx.config.hypervisor.accel);
    add(choice.accel.kind === 'kvm' ? 'ok' : 'warn', 'accelerator', choice.reason);
  } catch (err) {
    add('FAIL', 'accelerator', HakoError.from(err).message);
  }
  try {
    for (const a of await assetStatus({ cacheDir: ctx.config.runtime.cacheDir, accel: ctx.config.hypervisor.accel, qemuBinary: ctx.config.hypervisor.path })) {
      add(a.state === 'ready' ? 'ok' : a.state === 'missing' ? 'warn' : 'FAIL', `asset ${a.asset}`, `${a.state}: ${a.detail}${a.path ? ` (${a.path})` : ''}`);
    }
  } catch (err) {
    add('FAIL', 'assets', HakoError.from(err).message);
  }
  const filesystems = await readFile('/proc/filesystems', 'utf8').catch(() => '');
  add(/\boverlay\b/.test(filesystems) ? 'ok' : 'FAIL', 'overlayfs', /\boverlay\b/.test(filesystems) ? 'host kernel has overlayfs (image rootfs)' : 'host kernel lacks overlayfs (modprobe overlay)');
  add(process.getuid?.() === 0 ? 'ok' : 'FAIL', 'root', process.getuid?.() === 0 ? 'running as root (mounts need it)' : 'hako needs root for mounts');
  const tun = await stat('/dev/net/tun').then((s) => s.isCharacterDevice(), () => false);
  add(tun ? 'ok' : 'warn', '/dev/net/tun', tun ? 'present (tap networking)' : 'missing: no tap devices for CNI networking');
  try {
    const v = (await run('containerd', ['--version'])).trim();
    const running = await socketAnswers('/run/containerd/containerd.sock');
    add(running ? 'ok' : 'warn', 'containerd', `${v}; ${running ? 'running (/run/containerd/containerd.sock answers)' : 'not running'}`);
  } catch {
    add('warn', 'containerd', 'not installed (only needed for ctr/CRI use)');
  }
  const shim = await access('/usr/local/bin/containerd-shim-hako-v2').then(() => true, () => false);
  add(shim ? 'ok' : 'warn', 'shim', shim ? '/usr/local/bin/containerd-shim-hako-v2 is installed' : 'containerd-shim-hako-v2 is not on /usr/local/bin (npm run setup installs it)');

  const w = Math.max(...lines.map(([, what]) => what.length));
  for (const [v, what, detail] of lines) process.stdout.write(`${v.padEnd(4)}  ${what.padEnd(w)}  ${detail}\n`);
  return lines.some(([v]) => v === 'FAIL') ? 1 : 0;
}
