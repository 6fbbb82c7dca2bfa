// GetOOMEvent's source: watches each running container's memory.events (inotify, with a
// slow poll as a fallback) and queues the container id whenever oom_kill goes up.

import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Code, HakoError } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import { parseFlatKeyed } from './cgroup-stats.js';

const MAX_QUEUED = 256;
const POLL_MS = 2_000;

interface Watched {
  file: string;
  lastKills: bigint;
  watcher: FSWatcher | null;
}

/** OomWatcher turns oom_kill increments into a queue of container ids. */
export class OomWatcher {
  private readonly watched = new Map<string, Watched>();
  private readonly queue: string[] = [];
  private readonly waiters: Array<(id: string) => void> = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly log: Logger) {}

  /** add starts watching a container's cgroup directory. */
  async add(containerId: string, cgroupDir: string): Promise<void> {
    const file = `${cgroupDir}/memory.events`;
    const w: Watched = { file, lastKills: await readKills(file), watcher: null };
    try {
      w.watcher = watch(file, { persistent: false }, () => void this.check(containerId));
      w.watcher.on('error', () => {});
    } catch (err) {
      this.log.debug('cannot watch memory.events; polling instead', { container: containerId, err });
    }
    this.watched.set(containerId, w);
    if (!this.timer) {
      this.timer = setInterval(() => { for (const id of this.watched.keys()) void this.check(id); }, POLL_MS);
      this.timer.unref();
    }
  }

  /** remove stops watching (after a last look, so a kill that ended the container is not missed). */
  async remove(containerId: string): Promise<void> {
    await this.check(containerId);
    const w = this.watched.get(containerId);
    w?.watcher?.close();
    this.watched.delete(containerId);
    if (this.watched.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** next resolves with the id of the next container that had an OOM kill. */
  next(signal?: AbortSignal): Promise<string> {
    const id = this.queue.shift();
    if (id !== undefined) return Promise.resolve(id);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason ?? new HakoError(Code.CANCELLED, 'GetOOMEvent cancelled'));
      };
      const done = (cid: string) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(cid);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(done);
    });
  }

  private async check(containerId: string): Promise<void> {
    const w = this.watched.get(containerId);
    if (!w) return;
    const kills = await readKills(w.file);
    if (kills <= w.lastKills) return;
    w.lastKills = kills;
    this.log.info('container had an OOM kill', { container: containerId, oomKill: kills.toString() });
    const waiter = this.waiters.shift();
    if (waiter) waiter(containerId);
    else if (this.queue.length < MAX_QUEUED) this.queue.push(containerId);
  }
}

async function readKills(file: string): Promise<bigint> {
  try {
    return parseFlatKeyed(await readFile(file, 'utf8')).get('oom_kill') ?? 0n;
  } catch {
    return 0n;
  }
}
