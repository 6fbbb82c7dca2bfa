// The template store: <state_dir>/factory/templates/<key>/{ram,state,meta.json} on tmpfs.
// A template is built in a hidden sibling and renamed into place whole; a broken one is removed.

import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { isDead } from '../hypervisor/qemu/index.js';
import { withLock } from '../image/lock.js';
import { FACTORY_FORMAT, type TemplateInputs, type TemplateKey } from './key.js';
import { ensureTmpfs } from './tmpfs.js';
import { removeVmDir } from './recipe.js';

/** TemplateMeta is a template's meta.json, written last: a template without it does not exist. */
export interface TemplateMeta {
  format: string;
  key: string;
  inputs: TemplateInputs;
  created: string;
  /** buildMs is how long boot, warm-up and save took. */
  buildMs: number;
  state: { bytes: number; sha256: string };
  ramBytes: number;
  /** guest facts at save time (kernel, agent). */
  guest: Record<string, string | number>;
}

/** Template is an installed, checked template. */
export interface Template {
  key: string;
  dir: string;
  ram: string;
  state: string;
  meta: TemplateMeta;
}

/** BuildPaths are where a builder writes a template before it is installed. */
export interface BuildPaths {
  dir: string;
  ram: string;
  state: string;
  /** vmDir is the runtime directory of the VM being saved (removed before install). */
  vmDir: string;
}

/** TemplateInfo is one template as `hako factory status` shows it. */
export interface TemplateInfo {
  key: string;
  dir: string;
  meta?: TemplateMeta;
  /** problem says why the template would not be used, if it would not. */
  problem?: string;
  /** fileBytes is the apparent size of ram + state. */
  fileBytes: number;
  /** residentBytes is the memory the files really take on tmpfs (allocated blocks). */
  residentBytes: number;
}

const META_MAX_BYTES = 64 * 1024;
const BUILD_PREFIX = '.build-';
const FAILED_PREFIX = '.failed-';

/**
 * BUILD_RETRY_MS is how long starts boot cold without trying again after a template build failed
 * twice in a row: such a build (a broken image, a guest that cannot warm up) costs a cold boot's
 * time and more, and would otherwise be paid by every start. One failure (a VM killed while it
 * was saved) is retried by the next start.
 */
export const BUILD_RETRY_MS = 5 * 60_000;

/** TemplateStore manages the templates under one factory directory. */
export class TemplateStore {
  readonly templatesDir: string;
  private readonly locksDir: string;
  private prepared: Promise<void> | undefined;

  /** dir is the factory directory (`<state_dir>/factory`), made a tmpfs on first use. */
  constructor(readonly dir: string, private readonly log: Logger) {
    this.templatesDir = join(dir, 'templates');
    this.locksDir = join(dir, 'locks');
  }

  /** prepare makes sure the directory is a tmpfs with its subdirectories; once per store. */
  prepare(): Promise<void> {
    this.prepared ??= (async () => {
      await ensureTmpfs(this.dir, this.log);
      await mkdir(this.templatesDir, { recursive: true, mode: 0o700 });
      await mkdir(this.locksDir, { recursive: true, mode: 0o700 });
    })().catch((err: unknown) => {
      this.prepared = undefined;
      throw err;
    });
    return this.prepared;
  }

  /** pathsOf names the files of the template with key. */
  pathsOf(key: string): { dir: string; ram: string; state: string; meta: string } {
    if (!/^[0-9a-f]{64}$/.test(key)) throw errorf(Code.INVALID_ARGUMENT, `template key ${JSON.stringify(key)} is not a sha256`);
    const dir = join(this.templatesDir, key);
    return { dir, ram: join(dir, 'ram'), state: join(dir, 'state'), meta: join(dir, 'meta.json') };
  }

  /**
   * lookup returns the installed template for key, checked cheaply (meta, file sizes); a broken
   * one is logged and removed, so the caller builds a new one. Undefined when there is none.
   */
  async lookup(tk: TemplateKey): Promise<Template | undefined> {
    await this.prepare();
    const p = this.pathsOf(tk.key);
    if (!(await lstat(p.dir).then((s) => s.isDirectory(), () => false))) return undefined;
    const problem = await this.check(tk.key);
    if (problem.meta !== undefined && problem.why === undefined) return { key: tk.key, dir: p.dir, ram: p.ram, state: p.state, meta: problem.meta };
    await this.invalidate(tk.key, problem.why ?? 'unreadable');
    return undefined;
  }

  // check reads and verifies a template's meta.json against its files; why names what is wrong.
  private async check(key: string): Promise<{ meta?: TemplateMeta; why?: string }> {
    const p = this.pathsOf(key);
    let meta: TemplateMeta;
    try {
      const fh = await open(p.meta, 'r');
      try {
        if ((await fh.stat()).size > META_MAX_BYTES) return { why: 'meta.json is too large' };
        meta = JSON.parse(await fh.readFile('utf8')) as TemplateMeta;
      } finally {
        await fh.close();
      }
    } catch (err) {
      return { why: `meta.json: ${HakoError.from(err).message}` };
    }
    if (meta.format !== FACTORY_FORMAT || meta.key !== key) return { why: `meta.json is for ${meta.format} ${String(meta.key).slice(0, 12)}` };
    const ram = await stat(p.ram).catch(() => undefined);
    if (ram === undefined || ram.size !== meta.ramBytes) return { meta, why: `the RAM file is ${ram?.size ?? 'missing'} bytes, not ${meta.ramBytes}` };
    const state = await stat(p.state).catch(() => undefined);
    if (state === undefined || state.size !== meta.state.bytes) return { meta, why: `the state file is ${state?.size ?? 'missing'} bytes, not ${meta.state.bytes}` };
    return { meta };
  }

  /**
   * invalidate removes a template that must not be used again. Its files are unlinked, never
   * truncated: running clones map the RAM file and keep their pages.
   */
  async invalidate(key: string, why: string): Promise<void> {
    const p = this.pathsOf(key);
    this.log.warn('discarding a broken VM template; the next start builds a new one', { template: key.slice(0, 12), why });
    const aside = join(this.templatesDir, `.bad-${key.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(p.dir, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw HakoError.wrap(err, `discarding template ${key.slice(0, 12)}`);
    }
    await rm(aside, { recursive: true, force: true });
  }

  /**
   * build returns the template for tk, building it with fn unless someone else has: builders
   * take a per-key lock, so concurrent starts make one template between them. fn fills the
   * build paths and returns the meta; the template is renamed into place only after it returns.
   */
  async build(tk: TemplateKey, fn: (paths: BuildPaths) => Promise<Omit<TemplateMeta, 'format' | 'key' | 'inputs' | 'created'>>, opts: { signal?: AbortSignal; timeoutMs: number }): Promise<Template> {
    await this.prepare();
    const lockPath = join(this.locksDir, `${tk.key.slice(0, 16)}.lock`);
    return withLock(lockPath, { signal: opts.signal, timeoutMs: opts.timeoutMs, onWait: () => this.log.info('waiting for another process to build the VM template', { template: tk.key.slice(0, 12) }) }, async () => {
      const existing = await this.lookup(tk);
      if (existing !== undefined) return existing;
      await this.sweepBuilds(tk.key);
      const dir = join(this.templatesDir, `${BUILD_PREFIX}${tk.key.slice(0, 12)}-${process.pid}-${randomBytes(4).toString('hex')}`);
      const paths: BuildPaths = { dir, ram: join(dir, 'ram'), state: join(dir, 'state'), vmDir: join(dir, 'vm') };
      await mkdir(dir, { mode: 0o700 });
      try {
        const built = await fn(paths);
        await removeVmDir(paths.vmDir, this.log);
        const meta: TemplateMeta = { format: FACTORY_FORMAT, key: tk.key, inputs: tk.inputs, created: new Date().toISOString(), ...built };
        const fh = await open(join(dir, 'meta.json'), 'wx', 0o600);
        try {
          await fh.writeFile(JSON.stringify(meta, null, 2) + '\n');
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(dir, this.pathsOf(tk.key).dir);
      } catch (err) {
        await this.removeBuild(dir);
        if (opts.signal?.aborted !== true) await this.recordFailure(tk.key, HakoError.from(err).message);
        throw err;
      }
      await rm(this.failurePath(tk.key), { force: true });
      await this.removeSuperseded(tk);
      const t = await this.lookup(tk);
      if (t === undefined) throw errorf(Code.INTERNAL, `template ${tk.key.slice(0, 12)} vanished right after it was installed`);
      return t;
    });
  }

  private failurePath(key: string): string {
    this.pathsOf(key);
    return join(this.templatesDir, `${FAILED_PREFIX}${key.slice(0, 16)}`);
  }

  private async recordFailure(key: string, why: string): Promise<void> {
    const previous = await this.readFailure(key);
    const count = previous !== undefined && Date.now() - previous.at < BUILD_RETRY_MS ? previous.count + 1 : 1;
    await open(this.failurePath(key), 'w', 0o600).then(async (fh) => {
      await fh.writeFile(JSON.stringify({ at: Date.now(), count, why: why.slice(0, 2000) }) + '\n');
      await fh.close();
    }).catch(() => {});
  }

  private async readFailure(key: string): Promise<{ at: number; count: number; why: string } | undefined> {
    const text = await readFile(this.failurePath(key), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const f = JSON.parse(text) as { at?: unknown; count?: unknown; why?: unknown };
      return { at: Number(f.at) || 0, count: Number(f.count) || 1, why: String(f.why ?? 'unknown') };
    } catch {
      return undefined;
    }
  }

  /** recentFailure returns why building key failed twice in a row within BUILD_RETRY_MS, if it did. */
  async recentFailure(key: string): Promise<string | undefined> {
    const f = await this.readFailure(key);
    if (f === undefined || f.count < 2 || Date.now() - f.at > BUILD_RETRY_MS) return undefined;
    return f.why;
  }

  /**
   * removeSuperseded removes the templates of the same VM shape (vCPUs, memory, accelerator,
   * kernel parameters) that tk replaces: after an image or QEMU update they would only hold
   * tmpfs memory. Their running clones keep working (the files are unlinked).
   */
  private async removeSuperseded(tk: TemplateKey): Promise<void> {
    const shape = (i: TemplateInputs): string => JSON.stringify([i.vcpus, i.memoryMiB, i.accel, i.kernelParams]);
    for (const t of await this.list()) {
      if (t.key === tk.key || t.meta === undefined || shape(t.meta.inputs) !== shape(tk.inputs)) continue;
      this.log.info('removing a VM template superseded by a new build', { template: t.key.slice(0, 12), by: tk.key.slice(0, 12) });
      await rm(t.dir, { recursive: true, force: true });
    }
  }

  // sweepBuilds removes what crashed builders of key left behind (their pid is gone).
  private async sweepBuilds(key: string): Promise<void> {
    const prefix = `${BUILD_PREFIX}${key.slice(0, 12)}-`;
    for (const name of await readdir(this.templatesDir).catch(() => [] as string[])) {
      if (!name.startsWith(prefix)) continue;
      const pid = Number(name.slice(prefix.length).split('-')[0]);
      if (Number.isInteger(pid) && pid > 0 && !(await isDead(pid))) continue;
      this.log.info('removing a template build left by a process that died', { dir: name });
      await this.removeBuild(join(this.templatesDir, name));
    }
  }


  private async removeBuild(dir: string): Promise<void> {
    try {
      await removeVmDir(join(dir, 'vm'), this.log);
      await rm(dir, { recursive: true, force: true });
    } catch (err) {
      this.log.error('cleaning up a failed template build', { dir, err });
    }
  }

  /** list describes every template and leftover build directory. */
  async list(): Promise<TemplateInfo[]> {
    const names = await readdir(this.templatesDir).catch(() => [] as string[]);
    const out: TemplateInfo[] = [];
    for (const name of names.sort()) {
      const dir = join(this.templatesDir, name);
      const sizes = await dirSizes(dir);
      if (name.startsWith(FAILED_PREFIX)) continue;
      if (!/^[0-9a-f]{64}$/.test(name)) {
        out.push({ key: name, dir, problem: name.startsWith(BUILD_PREFIX) ? 'a build in progress (or left by a crash)' : 'not a template', ...sizes });
        continue;
      }
      const c = await this.check(name);
      out.push({ key: name, dir, ...(c.meta ? { meta: c.meta } : {}), ...(c.why ? { problem: c.why } : {}), ...sizes });
    }
    return out;
  }

  /** destroy removes every template and build; running clones keep working (files are unlinked). */
  async destroy(): Promise<number> {
    const names = await readdir(this.templatesDir).catch(() => [] as string[]);
    for (const name of names) {
      const dir = join(this.templatesDir, name);
      if (name.startsWith(BUILD_PREFIX)) await this.removeBuild(dir);
      else await rm(dir, { recursive: true, force: true });
    }
    return names.length;
  }
}

async function dirSizes(dir: string): Promise<{ fileBytes: number; residentBytes: number }> {
  let fileBytes = 0;
  let residentBytes = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const st = await lstat(join(dir, name)).catch(() => undefined);
    if (!st?.isFile()) continue;
    fileBytes += st.size;
    residentBytes += st.blocks * 512;
  }
  return { fileBytes, residentBytes };
}
