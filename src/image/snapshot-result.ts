// Judges what the snapshot-building guest left in its share (exit statuses, the self-check's JSON
// line, the build log): a usable snapshot, or the reason the image falls back to the plain bundle.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** SNAPSHOT_FILE is the snapshot's name in the builder VM's share. */
export const SNAPSHOT_FILE = 'hako-agent.snapshot';

/** MAX_SNAPSHOT_BYTES bounds what the builder VM may hand back (the agent's is ~5 MiB). */
export const MAX_SNAPSHOT_BYTES = 64 * 1048576;

/** SnapshotOutcome says whether a usable snapshot was made, and if not, why. */
export type SnapshotOutcome =
  | { built: true; bytes: number; ms: number }
  | { built: false; reason: string };

/** SnapshotFiles is what /etc/hako/snapshot-build wrote (undefined: the file is missing). */
export interface SnapshotFiles {
  buildStatus?: string;
  checkStatus?: string;
  checkJson?: string;
  buildLog?: string;
  /** snapshotBytes is the snapshot's size, undefined when it is missing. */
  snapshotBytes?: number;
}

/** judgeSnapshot turns the guest's files into an outcome; ms is how long the build took. */
export function judgeSnapshot(files: SnapshotFiles, ms: number): SnapshotOutcome {
  const logTail = (files.buildLog ?? '').trim().split('\n').slice(-5).join(' | ').slice(0, 600);
  const withLog = (what: string): SnapshotOutcome => ({ built: false, reason: logTail ? `${what}: ${logTail}` : what });
  if (files.buildStatus === undefined) return withLog('the guest did not finish building the snapshot');
  if (files.buildStatus.trim() !== '0') return withLog(`node --build-snapshot exited with status ${files.buildStatus.trim()}`);
  if (files.snapshotBytes === undefined || files.snapshotBytes === 0) return withLog('node --build-snapshot wrote no snapshot');
  if (files.snapshotBytes > MAX_SNAPSHOT_BYTES) return withLog(`the snapshot is ${files.snapshotBytes} bytes, over the ${MAX_SNAPSHOT_BYTES}-byte limit`);
  if (files.checkStatus === undefined) return withLog('the guest did not finish checking the snapshot');
  if (files.checkStatus.trim() !== '0') return withLog(`node could not start from the snapshot (status ${files.checkStatus.trim()})`);
  const last = (files.checkJson ?? '').trim().split('\n').pop() ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    return withLog(`the snapshot's self-check printed no JSON line (got ${JSON.stringify(last.slice(0, 200))})`);
  }
  if (typeof parsed !== 'object' || parsed === null || (parsed as { ok?: unknown }).ok !== true) {
    return withLog(`the snapshot's self-check failed: ${last.slice(0, 200)}`);
  }
  return { built: true, bytes: files.snapshotBytes, ms };
}

/** readSnapshotFiles reads the builder VM's share directory; missing files stay undefined. */
export async function readSnapshotFiles(dir: string): Promise<SnapshotFiles> {
  const text = (name: string): Promise<string | undefined> => readFile(join(dir, name), 'utf8').then((s) => s.slice(0, 64 * 1024), () => undefined);
  return {
    buildStatus: await text('build.status'),
    checkStatus: await text('check.status'),
    checkJson: await text('check.json'),
    buildLog: await text('build.log'),
    snapshotBytes: await stat(join(dir, SNAPSHOT_FILE)).then((s) => (s.isFile() ? s.size : undefined), () => undefined),
  };
}
