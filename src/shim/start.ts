// The `start` action: find or launch the shim that serves this task's group, write
// <bundle>/address, and return the address (the only thing printed on stdout).

import { spawn } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Code, HakoError } from '../errors/index.js';
import { groupId, socketAddress, socketPath } from './address.js';
import { readBundleSpec } from './bundle-spec.js';
import { serveArgs, type ShimFlags } from './flags.js';
import { canConnect, EXIT_ALREADY_SERVED } from './socket.js';
import { OWNER_NODE_FLAGS } from '../sandbox/index.js';

/** START_TIMEOUT_MS bounds how long a new shim server may take to accept connections. */
const START_TIMEOUT_MS = 10_000;

/** StartOptions locate the bundle and the script of the serving process. */
export interface StartOptions {
  bundle: string;
  /** mainScript is the shim's entry module, run again (with no action) to serve. */
  mainScript: string;
  socketDir?: string;
}

/** start returns the address of the shim serving f.id's group, launching one when needed. */
export async function start(f: ShimFlags, o: StartOptions): Promise<string> {
  const spec = await readBundleSpec(o.bundle);
  const group = groupId(f.id, spec.annotations);
  const address = socketAddress(f.address, f.namespace, group, o.socketDir);
  const path = socketPath(address);
  if (await canConnect(path)) {
    writeAddress(o.bundle, address);
    return address;
  }
  const child = spawn(process.execPath, [...OWNER_NODE_FLAGS, o.mainScript, ...serveArgs(f, path)], {
    cwd: o.bundle,
    detached: true,
    stdio: 'ignore',
    env: process.env,
  });
  let exited: { code: number | null; signal: string | null } | null = null;
  let spawnError: Error | null = null;
  child.once('exit', (code, signal) => { exited = { code, signal }; });
  child.once('error', (err) => { spawnError = err; });
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (await canConnect(path)) break;
    if (spawnError) throw HakoError.wrap(spawnError, 'launching the shim server');
    const e = exited as { code: number | null; signal: string | null } | null;
    if (e && e.code !== EXIT_ALREADY_SERVED) {
      throw new HakoError(Code.INTERNAL, `shim server exited early (code ${e.code}, signal ${e.signal}); see the shim log`);
    }
    if (Date.now() > deadline) {
      if (!e) child.kill('SIGKILL');
      throw new HakoError(Code.DEADLINE_EXCEEDED, `shim server did not listen on ${path} within ${START_TIMEOUT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  writeAddress(o.bundle, address);
  return address;
}

/** writeAddress writes <bundle>/address atomically, as containerd reads it on restart. */
export function writeAddress(bundle: string, address: string): void {
  const tmp = join(bundle, '.address');
  writeFileSync(tmp, address, { mode: 0o644 });
  renameSync(tmp, join(bundle, 'address'));
}
