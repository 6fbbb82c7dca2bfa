// `hako image build [--force]`: build the guest kernel, root image and busybox image with
// progress lines on stderr, the paths of the results on stdout; `hako image prune` removes stale ones.

import { Code, errorf } from '../errors/index.js';
import { ensureAssets, formatElapsed, pruneAssets } from '../image/index.js';
import { flagBool, parseArgs } from './args.js';
import type { CliContext } from './context.js';
import { withStartSignals } from './run.js';

/** imageCommand implements `hako image build` and `hako image prune`. */
export async function imageCommand(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'prune') return pruneCommand(rest, ctx);
  if (sub !== 'build') throw errorf(Code.INVALID_ARGUMENT, `hako image: unknown subcommand ${sub === undefined ? '(none)' : JSON.stringify(sub)}; try hako image build [--force] or hako image prune [--dry-run]`);
  const p = parseArgs(rest, [{ name: 'force' }], { command: 'hako image build' });
  if (p.positionals.length > 0) throw errorf(Code.INVALID_ARGUMENT, `hako image build: unexpected argument ${p.positionals[0]}`);
  const started = Date.now();
  const assets = await withStartSignals((signal) =>
    ensureAssets({
      log: ctx.log,
      cacheDir: ctx.config.runtime.cacheDir,
      accel: ctx.config.hypervisor.accel, qemuBinary: ctx.config.hypervisor.path,
      force: flagBool(p, 'force'),
      signal,
      onProgress: (e) => process.stderr.write(`[${formatElapsed(e.elapsedMs).padStart(6)}] ${e.asset}: ${e.message}\n`),
    }),
  );
  process.stdout.write(`kernel   ${assets.kernel}\nroot     ${assets.rootImage}\nbusybox  ${assets.busyboxLayout}\narchive  ${assets.busyboxArchive}\n`);
  process.stderr.write(`hako: guest assets ready in ${formatElapsed(Date.now() - started)}\n`);
  return 0;
}

/**
 * pruneCommand removes kernels and root images that no longer match the current inputs
 * (each agent change makes a new ~100 MiB root image), and leftovers of crashed builds.
 */
async function pruneCommand(argv: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(argv, [{ name: 'dry-run' }], { command: 'hako image prune' });
  if (p.positionals.length > 0) throw errorf(Code.INVALID_ARGUMENT, `hako image prune: unexpected argument ${p.positionals[0]}`);
  const dryRun = flagBool(p, 'dry-run');
  const removed = await pruneAssets({ log: ctx.log, cacheDir: ctx.config.runtime.cacheDir, accel: ctx.config.hypervisor.accel, qemuBinary: ctx.config.hypervisor.path, dryRun });
  for (const path of removed) process.stdout.write(`${dryRun ? 'would remove' : 'removed'} ${path}\n`);
  if (removed.length === 0) process.stdout.write('nothing to prune\n');
  return 0;
}
