// state.json: what a sandbox's owner records so that other processes (`hako ps`, `hako rm`,
// a restarted shim) can find and clean up the VM. Written atomically (temp file + rename).

import { open, readFile, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, HakoError, errorf } from '../errors/index.js';
import { sandboxesDir } from './paths.js';

/** ContainerStatus is the lifecycle state of a container. */
export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped';

/** ContainerRecord is one container in state.json. */
export interface ContainerRecord {
  id: string;
  status: ContainerStatus;
  /** pid of the init process in the guest (0 before start). */
  pid: number;
  /** mounts are the host mount points made for this container (share binds, overlay). */
  mounts: string[];
  exitStatus?: number;
  exitedAt?: string;
}

/** SandboxStatus is the lifecycle state of a sandbox. */
export type SandboxStatus = 'creating' | 'ready' | 'stopping' | 'stopped' | 'failed';

/** SandboxState is the content of state.json. */
export interface SandboxState {
  version: 1;
  id: string;
  status: SandboxStatus;
  /** created is an ISO timestamp. */
  created: string;
  /** ownerPid is the process that holds the Sandbox object (the CLI, `hako _serve`, the shim). */
  ownerPid: number;
  qemuPid: number;
  /** hostPid is the pod network namespace's holder, the task pid the shim reports (if networked). */
  hostPid?: number;
  containers: ContainerRecord[];
  /** annotations are the owner's own facts (image, command, name) shown by `hako ps`. */
  annotations: Record<string, string>;
  /** error is the reason of a failed sandbox. */
  error?: string;
}

// state.json is written by hako, but a sandbox directory may be tampered with: bound the read.
const MAX_STATE_BYTES = 1 << 20;

/** writeState replaces path atomically with state. */
export function writeState(path: string, state: SandboxState): Promise<void> {
  return writeJsonAtomic(path, state);
}

/** writeJsonAtomic replaces path with value as JSON (temp file, fsync, rename; mode 0600). */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(value, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** readState reads and checks a state.json; NOT_FOUND when it does not exist. */
export async function readState(path: string): Promise<SandboxState> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      if (size > MAX_STATE_BYTES) throw errorf(Code.DATA_LOSS, `${path} is ${size} bytes`);
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw HakoError.wrap(err, 'reading sandbox state');
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw errorf(Code.DATA_LOSS, `${path} is not valid JSON: ${(err as Error).message}`);
  }
  const s = v as Partial<SandboxState>;
  if (typeof s !== 'object' || s === null || s.version !== 1 || typeof s.id !== 'string' || !Array.isArray(s.containers)) {
    throw errorf(Code.DATA_LOSS, `${path} is not a hako sandbox state`);
  }
  return { annotations: {}, qemuPid: 0, ownerPid: 0, status: 'failed', created: '', ...s } as SandboxState;
}

/** listSandboxIds returns the ids of the sandbox directories under stateDir. */
export async function listSandboxIds(stateDir: string): Promise<string[]> {
  try {
    const entries = await readdir(sandboxesDir(stateDir), { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** pidAlive reports whether a process with pid exists (and is not a zombie). */
export async function pidAlive(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const stat = await readFile(join('/proc', String(pid), 'stat'), 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
