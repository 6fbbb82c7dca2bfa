// Finds containerd's log file (where it copies each shim's log lines) and extracts the
// hako shim's timing lines for given containers, to break down the `ctr run` path too.

import { open, readlink, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { listProcs } from './ctr.js';
import { parseMarks, type Mark } from '../suites/boot-marks.js';

const MAX_READ = 64 << 20;

/** containerdLogPath returns the regular file containerd's stderr goes to, if it goes to one. */
export async function containerdLogPath(): Promise<string | undefined> {
  const daemon = (await listProcs()).find((p) => basename(p.exe) === 'containerd');
  if (daemon === undefined) return undefined;
  const target = await readlink(`/proc/${daemon.pid}/fd/2`).catch(() => undefined);
  if (target === undefined || !target.startsWith('/') || target.startsWith('/dev/')) return undefined;
  const st = await stat(target).catch(() => undefined);
  return st?.isFile() ? target : undefined;
}

/** logSize returns the current size of path (0 when unreadable), to read only what comes after. */
export async function logSize(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}

/** shimMarks reads path from offset and returns the timing marks logged for each of ids (by their sandbox/shim field). */
export async function shimMarks(path: string, offset: number, ids: readonly string[]): Promise<Map<string, Mark[]>> {
  const want = new Set(ids);
  const out = new Map<string, Mark[]>();
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const len = Math.min(Math.max(0, size - offset), MAX_READ);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, offset);
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line.includes('"timing"')) continue;
      let rec: { sandbox?: unknown; shim?: unknown };
      try {
        rec = JSON.parse(line) as { sandbox?: unknown; shim?: unknown };
      } catch {
        continue;
      }
      const id = [rec.sandbox, rec.shim].find((v): v is string => typeof v === 'string' && want.has(v));
      if (id === undefined) continue;
      out.set(id, [...(out.get(id) ?? []), ...parseMarks(line)]);
    }
  } finally {
    await fh.close();
  }
  return out;
}
