// The benchmark's command line: run size, suites, runtimes, hako modes, output directory and
// the switches that skip asset builds or cache drops.

import { join } from 'node:path';
import { HAKO_MODES, parseHakoModes, type HakoMode } from './hako-modes.js';
import { SUITES, type Mode, type SuiteName } from './results.js';
import { repoRoot } from './root.js';
import { RUNTIMES, type RuntimeName } from './runtimes.js';

/** Args is what `npm run bench -- …` asked for. */
export interface Args {
  mode: Mode;
  only: SuiteName[];
  runtimes: RuntimeName[];
  hakoModes: HakoMode[];
  out: string;
  dropCaches: boolean;
  buildAssets: boolean;
  buildKernel: boolean;
  reps?: number;
}

/** USAGE is printed by --help. */
export const USAGE = `usage: npm run bench -- [--quick|--full|--smoke] [--only=${SUITES.join(',')}] [--runtimes=${RUNTIMES.join(',')}]
  [--hako-modes=${HAKO_MODES.join(',')}] [--out=DIR] [--reps=N] [--no-drop-caches]
  [--no-build (do not build missing hako guest assets)] [--no-kernel-build (build only the cheap ones)]
`;

function list<T extends string>(flag: string, value: string, known: readonly T[]): T[] {
  return value.split(',').map((s) => s.trim()).filter((s): s is T => {
    if (!(known as readonly string[]).includes(s)) throw new Error(`${flag}: unknown ${s} (known: ${known.join(', ')})`);
    return true;
  });
}

/** parseArgs reads argv (without node and the script); --help prints USAGE and exits. */
export function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    mode: 'full', only: [...SUITES], runtimes: [...RUNTIMES], hakoModes: [...HAKO_MODES],
    out: join(repoRoot(), 'bench', 'results'), dropCaches: true, buildAssets: true, buildKernel: true,
  };
  for (const arg of argv) {
    const [k, v] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (k === '--quick' || k === '--full' || k === '--smoke') a.mode = k.slice(2) as Mode;
    else if (k === '--only' && v) a.only = list('--only', v, SUITES);
    else if (k === '--runtimes' && v) a.runtimes = list('--runtimes', v, RUNTIMES);
    else if (k === '--hako-modes' && v !== undefined) a.hakoModes = parseHakoModes(v);
    else if (k === '--out' && v) a.out = v;
    else if (k === '--reps' && v) {
      a.reps = Number(v);
      if (!Number.isInteger(a.reps) || a.reps < 1) throw new Error(`--reps: ${v} is not a positive integer`);
    } else if (k === '--no-drop-caches') a.dropCaches = false;
    else if (k === '--no-build') a.buildAssets = false;
    else if (k === '--no-kernel-build') a.buildKernel = false;
    else if (k === '--help' || k === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --help)`);
  }
  return a;
}
