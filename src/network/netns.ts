// The host process that stands for a sandbox's network namespace (hako-netns, a small C
// helper): it creates or joins the namespace, keeps a new one alive, and reports changes in
// it. Its pid is the task pid the shim gives containerd, so /proc/<pid>/ns/net is the pod's.

import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { execTool, type ExecOptions } from '../storage/exec.js';

/** HOLDER_START_MS bounds the helper's start (it only enters a namespace). */
const HOLDER_START_MS = 5000;
const MAX_STDERR = 4096;

/** NetnsTarget says which namespace the holder stands for. */
export type NetnsTarget = { kind: 'new' } | { kind: 'join'; path: string };

/** NetnsHolder is one running hako-netns. */
export class NetnsHolder {
  private readonly listeners: Array<() => void> = [];
  private closed = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly pid: number,
    /** inode identifies the namespace (the inode of /proc/<pid>/ns/net). */
    readonly inode: string,
    readonly exited: Promise<void>,
  ) {}

  /** path names the namespace while the holder lives. */
  get path(): string {
    return `/proc/${this.pid}/ns/net`;
  }

  /**
   * start runs the helper and resolves once it is in the namespace. A join of a path that does
   * not exist, or is no network namespace, fails with a clear error and leaves nothing running.
   */
  static async start(helper: string, target: NetnsTarget, opts: { signal?: AbortSignal; log: Logger }): Promise<NetnsHolder> {
    if (target.kind === 'join') {
      const st = await stat(target.path).catch(() => null);
      if (!st) throw errorf(Code.NOT_FOUND, `network namespace ${target.path} does not exist`);
    }
    const args = target.kind === 'new' ? ['new'] : ['join', target.path];
    const child = spawn(helper, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      if (stderr.length < MAX_STDERR) stderr += s;
    });
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const out = child.stdout!.setEncoding('utf8');
    let buf = '';
    let holder: NetnsHolder | undefined;
    const ready = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(errorf(Code.DEADLINE_EXCEEDED, `hako-netns did not start within ${HOLDER_START_MS} ms`)), HOLDER_START_MS);
      const onAbort = () => reject(errorf(Code.CANCELLED, 'cancelled'));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      child.once('error', (err) => {
        done();
        reject(HakoError.wrap(err, `starting ${helper} (npm run build compiles it)`));
      });
      void exited.then(() => {
        done();
        reject(errorf(target.kind === 'join' ? Code.INVALID_ARGUMENT : Code.INTERNAL,
          `${target.kind === 'join' ? `network namespace ${target.path}` : 'a new network namespace'}: ${stderr.trim() || 'hako-netns exited'}`));
      });
      out.on('data', (s: string) => {
        buf += s;
        if (buf.length > 65536) buf = buf.slice(-1024);
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const m = /^ready (\d+)$/.exec(line);
          if (m && !holder) {
            done();
            resolve(m[1]!);
          } else if (line === 'change') {
            holder?.changed();
          }
        }
      });
    });
    try {
      const inode = await ready;
      if (child.pid === undefined) throw errorf(Code.INTERNAL, 'hako-netns has no pid');
      holder = new NetnsHolder(child, child.pid, inode, exited);
      opts.log.debug('network namespace holder ready', { pid: child.pid, target: target.kind === 'new' ? 'new' : target.path, inode });
      return holder;
    } catch (err) {
      child.kill('SIGKILL');
      await exited;
      throw err;
    }
  }

  /** onChange calls cb after each batch of link, address or route changes in the namespace. */
  onChange(cb: () => void): () => void {
    this.listeners.push(cb);
    return () => {
      const i = this.listeners.indexOf(cb);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private changed(): void {
    if (this.closed) return;
    for (const cb of this.listeners) cb();
  }

  /** close ends the holder (a new namespace goes with it unless something else holds it). */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.length = 0;
    this.child.stdin?.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 1000);
    await this.exited;
    clearTimeout(t);
  }
}

/** nsExec runs argv inside the network namespace at nsPath (nsenter --net). */
export function nsExec(nsPath: string, argv: readonly string[], opts: ExecOptions = {}): Promise<string> {
  return execTool(['nsenter', `--net=${nsPath}`, '--', ...argv], opts);
}

/** batch runs several `ip` or `tc` commands in one process (`-batch -`); stops at the first error. */
export function nsBatch(nsPath: string, tool: 'ip' | 'tc', lines: readonly string[], opts: ExecOptions = {}): Promise<string> {
  if (lines.length === 0) return Promise.resolve('');
  return nsExec(nsPath, [tool, '-batch', '-'], { ...opts, input: `${lines.join('\n')}\n` });
}
