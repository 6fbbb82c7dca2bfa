// Test support for the `hako` CLI integration tests: run bin/hako as a child process, find the
// sandboxes and QEMU processes a test made (by name prefix), and assert nothing of them is left.

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

/** REPO is the checkout root (the tests run from dist/test/integration). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** HAKO is the launcher under test. */
export const HAKO = join(REPO, 'bin', 'hako');
/** SANDBOXES is runtime.state_dir/sandboxes with the default configuration. */
export const SANDBOXES = '/run/hako/sandboxes';
/** BOOT_MS is generous: a cold boot under TCG on a loaded 2-core machine took up to 35 s. */
export const BOOT_MS = 120_000;

/** prefix names this test process's containers, so checks never touch other helpers' sandboxes. */
export const prefix = `it${process.pid}`;

/** Result is a finished hako run. */
export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** HakoOptions tunes one hako invocation. */
export interface HakoOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** onSpawn gets the child (to signal it while it runs). */
  onSpawn?: (child: ChildProcess) => void;
}

/** hako runs bin/hako with args and resolves when it exits (it is killed at timeoutMs). */
export function hako(args: string[], opts: HakoOptions = {}): Promise<Result> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [HAKO, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? BOOT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
    opts.onSpawn?.(child);
  });
}

/** ourSandboxes lists sandbox directories whose names start with prefix. */
export function ourSandboxes(): string[] {
  return existsSync(SANDBOXES) ? readdirSync(SANDBOXES).filter((n) => n.startsWith(prefix)) : [];
}

/** ourQemus lists the pids of QEMU processes whose command line names one of our sandboxes. */
export function ourQemus(): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const argv0 = cmd.split('\0')[0] ?? '';
    if (/(^|\/)qemu-system-/.test(argv0) && cmd.includes(`${SANDBOXES}/${prefix}`)) out.push(Number(pid));
  }
  return out;
}

/** ourMounts lists host mount points below our sandboxes. */
export function ourMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(`${SANDBOXES}/${prefix}`));
}

/** ourNetworkLeftovers lists network namespaces, namespace holders and host taps of our sandboxes. */
export function ourNetworkLeftovers(): string[] {
  const found: string[] = [];
  if (existsSync('/run/netns')) for (const n of readdirSync('/run/netns')) if (n.startsWith(`hako-${prefix}`)) found.push(`netns ${n}`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const cmd = (() => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return ''; } })();
    if (!(cmd.split('\0')[0] ?? '').endsWith('/hako-netns')) continue;
    const ppid = (() => { try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]; } catch { return undefined; } })();
    // Ours (it joined one of our namespaces), or anyone's once orphaned: a holder dies with its owner.
    if (cmd.includes(`hako-${prefix}`) || ppid === '1') found.push(`namespace holder ${pid}`);
  }
  return found;
}

/** assertClean fails when a QEMU, a mount, a sandbox directory or a pod network of this test process is left. */
export function assertClean(what: string): void {
  assert.deepEqual(ourQemus(), [], `${what}: a QEMU process was left running`);
  assert.deepEqual(ourMounts(), [], `${what}: mounts were left`);
  assert.deepEqual(ourSandboxes(), [], `${what}: sandbox directories were left in ${SANDBOXES}`);
  assert.deepEqual(ourNetworkLeftovers(), [], `${what}: pod network pieces were left`);
}

/** sweep removes whatever a failed test left (so one failure does not cascade). */
export async function sweep(): Promise<void> {
  for (const id of ourSandboxes()) await hako(['rm', '-f', id], { timeoutMs: 60_000 });
  for (const pid of ourQemus()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** waitFor polls cond every 200 ms until it is true or ms pass; resolves whether it became true. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return cond();
}

/** stateOf reads state.json of a sandbox (undefined when it is not there). */
export function stateOf(id: string): { status: string; qemuPid: number; ownerPid: number; containers: Array<{ status: string; exitStatus?: number }> } | undefined {
  try {
    return JSON.parse(readFileSync(join(SANDBOXES, id, 'state.json'), 'utf8'));
  } catch {
    return undefined;
  }
}
