// Where a sandbox keeps its files: /run/hako/sandboxes/<id>/ (runtime.state_dir) and the
// names of the files inside, shared by the Sandbox, cleanupSandbox and the CLI.

import { join } from 'node:path';
import { Code, errorf } from '../errors/index.js';
import { vmDirPaths } from '../factory/index.js';

// The id becomes a directory name and a QEMU VM name: the VM name rule is the stricter one.
const SANDBOX_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** validSandboxId checks a sandbox id (at most 64 of letters, digits, `_`, `.`, `-`). */
export function validSandboxId(id: string): string {
  if (typeof id !== 'string' || !SANDBOX_ID.test(id)) {
    throw errorf(Code.INVALID_ARGUMENT, `sandbox id ${JSON.stringify(id)} must be 1-64 letters, digits, '_', '.' or '-' (not starting with a symbol)`);
  }
  return id;
}

/** SandboxPaths names the files of one sandbox directory. */
export interface SandboxPaths {
  dir: string;
  state: string;
  /** vm is the VM's directory: QEMU's sockets, pidfile and log, the agent socket, the console log, the 9p share. */
  vm: string;
  agentSocket: string;
  console: string;
  /** control is the socket of the owner process (`hako exec/kill/rm` talk to it). */
  control: string;
}

/** sandboxesDir is <stateDir>/sandboxes. */
export function sandboxesDir(stateDir: string): string {
  return join(stateDir, 'sandboxes');
}

/** sandboxPaths returns the paths of sandbox id under stateDir. */
export function sandboxPaths(stateDir: string, id: string): SandboxPaths {
  const dir = join(sandboxesDir(stateDir), validSandboxId(id));
  const vm = vmDirPaths(join(dir, 'vm'));
  return {
    dir,
    state: join(dir, 'state.json'),
    vm: vm.dir,
    agentSocket: vm.agentSocket,
    console: vm.console,
    control: join(dir, 'control.sock'),
  };
}
