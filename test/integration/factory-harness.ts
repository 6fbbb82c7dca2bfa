// Test support for the VM factory tests: a state directory of their own (with its own template
// tmpfs), and running one container to completion in a sandbox to read what it prints.

import type { Readable } from 'node:stream';
import { nullLogger } from '../../src/log/index.js';
import { defaultConfig } from '../../src/config/index.js';
import { ensureAssets } from '../../src/image/index.js';
import { unpackImage } from '../../src/storage/index.js';
import { defaultSpec, type Sandbox } from '../../src/sandbox/index.js';

/** factoryStateDir names a state directory for one test file: /run/hako-<name><pid>. */
export function factoryStateDir(name: string): string {
  return `/run/hako-${name}${process.pid}`;
}

/** runIn runs args as container cid in sb, waits for it, removes it, and returns its exit status and stdout. */
export async function runIn(sb: Sandbox, cid: string, args: string[]): Promise<{ status: number; stdout: string }> {
  const config = defaultConfig();
  const assets = await ensureAssets({ log: nullLogger, cacheDir: config.runtime.cacheDir });
  const image = await unpackImage({ ref: { path: assets.busyboxLayout, kind: 'dir' }, cacheDir: config.runtime.cacheDir, log: nullLogger });
  const spec = defaultSpec({ args, env: image.config.env, cwd: '/', user: { uid: 0, gid: 0 }, terminal: false, hostname: sb.id.slice(0, 63), volumes: [] });
  const c = await sb.createContainer({ id: cid, spec, rootfs: await sb.mountImageRootfs(cid, image.rootfs), stdin: false, terminal: false });
  let stdout = '';
  (c.init.stdout as Readable).on('data', (d: Buffer) => (stdout += d.toString()));
  await c.start();
  const exit = await c.init.wait();
  await c.delete();
  return { status: exit.exitStatus, stdout };
}
