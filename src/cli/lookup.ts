// Finding a container by the id or name the user typed (or a unique prefix of it), and
// reading what `hako ps` shows about it: status, whether its owner and its QEMU still run.

import { Code, errorf } from '../errors/index.js';
import { listSandboxIds, pidAlive, readState, sandboxPaths, type SandboxState } from '../sandbox/index.js';

/** resolveId returns the sandbox id named by idOrPrefix; NOT_FOUND or ambiguous prefixes are errors. */
export async function resolveId(stateDir: string, idOrPrefix: string): Promise<string> {
  const ids = await listSandboxIds(stateDir);
  if (ids.includes(idOrPrefix)) return idOrPrefix;
  const hits = idOrPrefix.length > 0 ? ids.filter((id) => id.startsWith(idOrPrefix)) : [];
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw errorf(Code.INVALID_ARGUMENT, `${JSON.stringify(idOrPrefix)} matches several containers: ${hits.join(', ')}`);
  throw errorf(Code.NOT_FOUND, `no such container: ${JSON.stringify(idOrPrefix)} (hako ps lists them)`);
}

/** Summary is what `hako ps` and `hako rm` know about one sandbox. */
export interface Summary {
  id: string;
  state: SandboxState | undefined;
  ownerAlive: boolean;
  qemuAlive: boolean;
  /** status is a word for humans: running, exited (N), created, dead, failed, ... */
  status: string;
}

/** summarize reads a sandbox's state.json and checks its processes. */
export async function summarize(stateDir: string, id: string): Promise<Summary> {
  let state: SandboxState | undefined;
  try {
    state = await readState(sandboxPaths(stateDir, id).state);
  } catch {
    state = undefined;
  }
  const ownerAlive = state ? await pidAlive(state.ownerPid) : false;
  const qemuAlive = state ? await pidAlive(state.qemuPid) : false;
  let status: string;
  const c = state?.containers[0];
  if (!state) status = 'unknown (no state.json)';
  else if (state.status === 'stopped') status = c?.exitStatus !== undefined ? `exited (${c.exitStatus})` : 'exited';
  else if (state.status === 'failed') status = `failed: ${state.error ?? 'unknown error'}`;
  else if (!ownerAlive) status = qemuAlive ? 'dead (owner gone, VM left)' : 'dead (owner gone)';
  else if (state.status === 'creating') status = 'creating';
  else if (state.status === 'stopping') status = 'stopping';
  else status = c?.status === 'stopped' && c.exitStatus !== undefined ? `exited (${c.exitStatus})` : (c?.status ?? 'ready');
  return { id, state, ownerAlive, qemuAlive, status };
}
