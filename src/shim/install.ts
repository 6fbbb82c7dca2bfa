// Setting up containerd for hako: put containerd-shim-hako-v2 on PATH, register the CRI
// runtime `hako` in /etc/containerd/config.toml without clobbering it, and (re)start containerd.

import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, readlink, rename, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'smol-toml';
import { Code, HakoError } from '../errors/index.js';
import { nullLogger, type Logger } from '../log/index.js';
import { canConnect } from './socket.js';

const run = promisify(execFile);

/** RUNTIME_TYPE is the containerd runtime name that maps to containerd-shim-hako-v2. */
export const RUNTIME_TYPE = 'io.containerd.hako.v2';
/** DEFAULT_CONTAINERD_LOG receives containerd's output when hako starts it without systemd. */
export const DEFAULT_CONTAINERD_LOG = '/var/log/containerd.log';
/** CRI_RUNTIME_TABLE is the config.toml table that registers the runtime for CRI (config version 2). */
export const CRI_RUNTIME_TABLE = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hako]';

/** InstallOptions tune installShim; the defaults are the system locations. */
export interface InstallOptions {
  binDir?: string;
  configPath?: string;
  /** restart: 'if-changed' (default) restarts containerd only when the config changed or it is not running. */
  restart?: 'if-changed' | 'always' | 'never';
  containerdSocket?: string;
  log?: Logger;
}

/** InstallResult says what installShim did. */
export interface InstallResult {
  link: string;
  linkChanged: boolean;
  configChanged: boolean;
  containerd: 'restarted' | 'started' | 'left running' | 'not touched';
}

/** shimBinaryPath is the repository's bin/containerd-shim-hako-v2. */
export function shimBinaryPath(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../../bin/containerd-shim-hako-v2');
}

/**
 * addHakoRuntime returns config text with the hako CRI runtime added, or null when the
 * runtime is already registered. The text is appended, so everything else stays as written.
 */
export function addHakoRuntime(text: string): string | null {
  const doc = parseToml(text, 'containerd config');
  if (doc.version !== 2) {
    throw new HakoError(Code.FAILED_PRECONDITION, `containerd config: version is ${String(doc.version ?? 1)}, want 2 (regenerate it with \`containerd config default\`)`);
  }
  const cri = (doc.plugins as Record<string, any> | undefined)?.['io.containerd.grpc.v1.cri'];
  if (cri?.containerd?.runtimes?.hako !== undefined) return null;
  const sep = text === '' || text.endsWith('\n') ? '' : '\n';
  const out = `${text}${sep}\n${CRI_RUNTIME_TABLE}\n  runtime_type = "${RUNTIME_TYPE}"\n`;
  const check = parseToml(out, 'containerd config with the hako runtime') as Record<string, any>;
  if (check.plugins?.['io.containerd.grpc.v1.cri']?.containerd?.runtimes?.hako?.runtime_type !== RUNTIME_TYPE) {
    throw new HakoError(Code.INTERNAL, 'containerd config: the hako runtime did not land where expected');
  }
  return out;
}

function parseToml(text: string, what: string): Record<string, unknown> {
  try {
    return parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new HakoError(Code.INVALID_ARGUMENT, `${what}: invalid TOML: ${(err as Error).message.split('\n', 1)[0]}`);
  }
}

/** installShim links the shim onto PATH, registers the runtime, and (re)starts containerd as asked. */
export async function installShim(o: InstallOptions = {}): Promise<InstallResult> {
  const log = o.log ?? nullLogger;
  const binDir = o.binDir ?? '/usr/local/bin';
  const configPath = o.configPath ?? '/etc/containerd/config.toml';
  const socket = o.containerdSocket ?? '/run/containerd/containerd.sock';
  const target = shimBinaryPath();
  await stat(target).catch((err) => { throw HakoError.wrap(err, `shim launcher ${target}`); });
  const link = join(binDir, 'containerd-shim-hako-v2');
  let linkChanged = false;
  const current = await readlink(link).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : err.code === 'EINVAL' ? 'not-a-link' : Promise.reject(err)));
  if (current === 'not-a-link') throw new HakoError(Code.ALREADY_EXISTS, `${link} exists and is not a symlink; remove it first`);
  if (current !== target) {
    await mkdir(binDir, { recursive: true });
    const tmp = `${link}.hako-tmp`;
    await unlink(tmp).catch(() => {});
    await symlink(target, tmp);
    await rename(tmp, link);
    linkChanged = true;
    log.info('linked shim', { link, target });
  }

  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw HakoError.wrap(err, `reading ${configPath}`);
    text = (await run('containerd', ['config', 'default'], { timeout: 30_000, maxBuffer: 4 << 20 })).stdout;
    await mkdir(dirname(configPath), { recursive: true });
    log.info('wrote containerd default config', { configPath });
  }
  const updated = addHakoRuntime(text);
  const configChanged = updated !== null;
  if (updated !== null) {
    const tmp = `${configPath}.hako-tmp`;
    await writeFile(tmp, updated, { mode: 0o644 });
    await rename(tmp, configPath);
    log.info('registered the hako runtime', { configPath });
  }

  const restart = o.restart ?? 'if-changed';
  let containerd: InstallResult['containerd'] = 'not touched';
  if (restart !== 'never') {
    const pid = await containerdPid();
    if (pid === null) {
      await startContainerd(socket, [], log, DEFAULT_CONTAINERD_LOG);
      containerd = 'started';
    } else if (restart === 'always' || configChanged) {
      const args = await readCmdline(pid);
      // Keep writing where the running containerd wrote (whoever started it chose that file).
      const logPath = await readlink(`/proc/${pid}/fd/2`).catch(() => DEFAULT_CONTAINERD_LOG);
      await stopContainerd(pid);
      await startContainerd(socket, args.slice(1), log, logPath.startsWith('/') && !logPath.includes(' (deleted)') ? logPath : DEFAULT_CONTAINERD_LOG);
      containerd = 'restarted';
    } else {
      containerd = 'left running';
    }
  }
  return { link, linkChanged, configChanged, containerd };
}

async function containerdPid(): Promise<number | null> {
  try {
    const { stdout } = await run('pidof', ['-s', 'containerd'], { timeout: 5_000 });
    const pid = Number.parseInt(stdout.trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

async function readCmdline(pid: number): Promise<string[]> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => 'containerd\0');
  return raw.split('\0').filter((s) => s !== '');
}

async function stopContainerd(pid: number): Promise<void> {
  if (await systemd('stop')) return;
  process.kill(pid, 'SIGTERM');
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new HakoError(Code.DEADLINE_EXCEEDED, `containerd (pid ${pid}) did not exit within 20 s of SIGTERM`);
}

async function startContainerd(socket: string, args: string[], log: Logger, logPath: string): Promise<void> {
  if (!(await systemd('start'))) {
    // No systemd (containers, CI): run it detached, appending its output to logPath.
    const fd = openSync(logPath, 'a');
    const child = spawn('containerd', args, { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.unref();
    log.info('started containerd', { pid: child.pid, args, logPath });
  }
  const end = Date.now() + 30_000;
  while (!(await canConnect(socket))) {
    if (Date.now() > end) throw new HakoError(Code.DEADLINE_EXCEEDED, `containerd did not listen on ${socket} within 30 s (see its log)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function systemd(verb: 'start' | 'stop'): Promise<boolean> {
  try {
    await run('systemctl', [verb, 'containerd'], { timeout: 60_000 });
    return true;
  } catch {
    return false;
  }
}
