// The `delete` action, run by containerd whenever its connection to a shim closes: drop
// what is left of the task, unmount <bundle>/rootfs, and answer a DeleteResponse.

import { readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { Code, isNotFound } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { Client, createClient, dialUnix, NAMESPACE_KEY } from '../ttrpc/index.js';
import { DeleteResponseSchema, Task } from '../protocols/generated/containerd/shim_pb.js';
import { groupId, socketAddress, socketPath } from './address.js';
import { readBundleSpec } from './bundle-spec.js';
import type { ShimFlags } from './flags.js';
import { unmountAll } from './rootfs.js';
import type { SandboxBackend } from './sandbox-port.js';
import { canConnect } from './socket.js';

/** EXIT_STATUS_KILLED is what a task lost with its shim reports: 128 + SIGKILL, as runc's shim. */
const EXIT_STATUS_KILLED = 137;
const SIGKILL = 9;

/** DeleteOptions give the delete action its bundle, backend and logger. */
export interface DeleteOptions {
  bundle: string;
  backend: () => Promise<SandboxBackend>;
  log: Logger;
}

/** deleteTask cleans up after f.id and returns the serialized DeleteResponse. */
export async function deleteTask(f: ShimFlags, o: DeleteOptions): Promise<Uint8Array> {
  const log = o.log.child({ shim: f.id, action: 'delete' });
  let group = f.id;
  try {
    group = groupId(f.id, (await readBundleSpec(o.bundle)).annotations);
  } catch (err) {
    log.warn('cannot read the bundle spec; the group is the task id', { err });
  }
  const address = readText(join(o.bundle, 'address')) || socketAddress(f.address, f.namespace, group);
  const path = socketPath(address);
  if (await canConnect(path)) {
    // The shim lives (it may serve other containers of the pod): drop only this task.
    await dropFromLiveShim(path, f, log);
  } else {
    killHungShim(readText(join(o.bundle, 'shim.pid')), log);
    try { unlinkSync(path); } catch { /* no stale socket */ }
    try {
      await (await o.backend()).cleanup(group, log);
    } catch (err) {
      log.warn('sandbox cleanup failed', { err, sandbox: group });
    }
  }
  try {
    await unmountAll(join(o.bundle, 'rootfs'));
  } catch (err) {
    log.warn('rootfs unmount failed', { err });
  }
  const pid = Number.parseInt(readText(join(o.bundle, 'init.pid')), 10);
  return toBinary(DeleteResponseSchema, create(DeleteResponseSchema, {
    pid: Number.isInteger(pid) && pid > 0 && pid <= 0xffffffff ? pid : 0,
    exitStatus: EXIT_STATUS_KILLED,
    exitedAt: timestampNow(),
  }));
}

async function dropFromLiveShim(path: string, f: ShimFlags, log: Logger): Promise<void> {
  let conn: Client | null = null;
  try {
    conn = new Client(await dialUnix(path, { timeoutMs: 2_000 }));
    const task = createClient(Task, conn);
    const opts = { timeoutMs: 10_000, metadata: { [NAMESPACE_KEY]: f.namespace } };
    try {
      await task.kill({ id: f.id, signal: SIGKILL, all: true }, opts);
    } catch (err) {
      if (!isNotFound(err)) log.debug('kill in live shim', { err });
    }
    for (let i = 0; i < 20; i++) {
      try {
        await task.delete({ id: f.id }, opts);
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        if ((err as { code?: Code }).code !== Code.FAILED_PRECONDITION) throw err;
        await new Promise((r) => setTimeout(r, 100)); // still running: the kill lands shortly
      }
    }
  } catch (err) {
    log.warn('could not drop the task from the live shim', { err });
  } finally {
    conn?.close();
  }
}

/** killHungShim kills a shim process that no longer answers, if pid really is one of ours. */
function killHungShim(pidText: string, log: Logger): void {
  const pid = Number.parseInt(pidText, 10);
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return;
  const cmdline = readText(`/proc/${pid}/cmdline`);
  if (!cmdline.includes('containerd-shim-hako-v2') && !cmdline.includes('shim/main.js')) return;
  try {
    process.kill(pid, 'SIGKILL');
    log.warn('killed a shim that did not answer', { pid });
  } catch { /* gone meanwhile */ }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}
