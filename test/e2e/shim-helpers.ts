// Helpers for the shim's end-to-end tests: temporary bundles, running the real
// containerd-shim-hako-v2 binary, and checking that nothing is left behind.

import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** SHIM_BIN is the repository's launcher (what /usr/local/bin links to). */
export const SHIM_BIN = resolve(fileURLToPath(import.meta.url), '../../../../bin/containerd-shim-hako-v2');

/** RunResult is a finished command. */
export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

/** run runs a command to completion with a timeout, never throwing on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
  const t0 = Date.now();
  return new Promise((resolvePromise) => {
    const child = execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'buffer', timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolvePromise({ code, stdout: stdout as Buffer, stderr: (stderr as Buffer).toString(), ms: Date.now() - t0 });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** Bundle is a temporary bundle directory with config.json and a `log` FIFO that is drained. */
export interface Bundle {
  dir: string;
  logLines(): string[];
  cleanup(): void;
}

/** makeBundle creates a bundle like containerd does (config.json, log FIFO read by us). */
export function makeBundle(annotations: Record<string, string> = {}): Bundle {
  const dir = mkdtempSync(join(tmpdir(), 'hako-shim-e2e-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    ociVersion: '1.0.2', process: { args: ['true'], cwd: '/' }, root: { path: 'rootfs' }, annotations,
  }));
  execFileSync('mkfifo', [join(dir, 'log')]);
  // Keep a reader on the FIFO like containerd: a `cat` appending to log.txt.
  const reader = spawn('sh', ['-c', `exec cat log > log.txt`], { cwd: dir, stdio: 'ignore' });
  return {
    dir,
    logLines: () => (existsSync(join(dir, 'log.txt')) ? readFileSync(join(dir, 'log.txt'), 'utf8').split('\n').filter(Boolean) : []),
    cleanup: () => {
      reader.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** shimArgs are the flags containerd passes. */
export function shimArgs(id: string, address: string, ns = 'hako-e2e'): string[] {
  return ['-namespace', ns, '-address', address, '-publish-binary', '/usr/bin/containerd', '-id', id];
}

/** pidsOf lists pids whose command line contains every needle. */
export function pidsOf(...needles: string[]): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (needles.every((n) => cmd.includes(n))) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

/** waitFor polls cond until it holds or ms pass; returns whether it held. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** mountsUnder lists mount points at or below prefix (from /proc/self/mountinfo). */
export function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m === prefix || m.startsWith(prefix + '/'));
}
