// Entry point of containerd-shim-hako-v2: parse containerd's flags and run start,
// delete, or (no action) the serving process. Each action loads only what it needs.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HakoError } from '../errors/index.js';
import { Logger, streamSink } from '../log/index.js';
import { parseFlags } from './flags.js';

/** SHIM_VERSION is reported by Connect and `-v`. */
export const SHIM_VERSION = readVersion();

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv);
  switch (f.action) {
    case 'version':
      process.stdout.write(`containerd-shim-hako-v2:\n  Version: ${SHIM_VERSION}\n`);
      return 0;
    case 'start': {
      const { start } = await import('./start.js');
      await drainStdin();
      const address = await start(f, { bundle: process.cwd(), mainScript: fileURLToPath(import.meta.url) });
      process.stdout.write(address);
      return 0;
    }
    case 'delete': {
      const { deleteTask } = await import('./delete.js');
      const log = new Logger(streamSink(process.stderr), f.debug ? 'debug' : 'warn');
      // The sandbox code loads only when the shim is dead and a VM may need cleaning up.
      const backend = async () => (await import('./sandbox-backend.js')).sandboxBackend();
      const out = await deleteTask(f, { bundle: f.bundle || process.cwd(), backend, log });
      await new Promise<void>((r) => process.stdout.write(out, () => r()));
      return 0;
    }
    case 'serve': {
      const { serve } = await import('./serve.js');
      const { sandboxBackend } = await import('./sandbox-backend.js');
      return serve(f, { backend: sandboxBackend(), version: SHIM_VERSION, ttrpcAddress: process.env.TTRPC_ADDRESS ?? `${f.address}.ttrpc`, bundle: process.cwd() });
    }
  }
}

/**
 * drainStdin reads (and ignores) the runtime options containerd may write on stdin, so
 * its writer never blocks; hako takes its options from /etc/hako/config.toml.
 */
async function drainStdin(): Promise<void> {
  if (process.stdin.isTTY) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(done, 2_000);
    let n = 0;
    function done() {
      clearTimeout(t);
      process.stdin.removeAllListeners();
      process.stdin.on('error', () => {});
      process.stdin.destroy();
      resolve();
    }
    process.stdin.on('data', (c: Buffer) => { n += c.length; if (n > 1 << 20) done(); });
    process.stdin.on('end', done);
    process.stdin.on('error', done);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    const e = HakoError.from(err);
    process.stderr.write(`containerd-shim-hako-v2: ${e.message}\n`);
    process.exit(1);
  },
);
