// Entry point of the `hako` command: global flags, configuration, logging to stderr, dispatch
// to subcommands, and turning errors into `hako: message` with a non-zero exit status.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HakoError } from '../errors/index.js';
import { Logger, streamSink, type Level, type Sink } from '../log/index.js';
import { loadConfig } from '../config/index.js';
import { checkCommand } from './check.js';
import type { CliContext } from './context.js';
import { execCommand } from './exec.js';
import { factoryCommand } from './factory.js';
import { CliExit, EXIT_ERROR } from './exit.js';
import { imageCommand } from './image.js';
import { killCommand, psCommand, rmCommand } from './manage.js';
import { runCommand } from './run.js';
import { serveCommand } from './serve.js';

const USAGE = `Usage: hako [--log-level debug|info|warn|error] [--config FILE] COMMAND

A secure container runtime: every container runs in its own VM.

Commands:
  run       run a command in a new container (hako run --help)
  exec      run a command in a running container
  ps        list containers
  kill      send a signal to a container (default KILL)
  rm        remove containers (-f: also running ones)
  image     build the guest kernel and images (hako image build [--force]; hako image prune [--dry-run])
  factory   VM templates and the warm pool (hako factory init|status|destroy|serve)
  check     check that this host can run hako, and explain the accelerator
  version   print version information
`;

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

function version(): string {
  try {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** main runs the CLI with argv (without node and the script) and resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  let level: Level | undefined;
  let configPath: string | undefined;
  const globalArgs: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (flag === '--log-level' || flag === '--config') {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new CliExit(EXIT_ERROR, `${flag} needs a value`);
      if (flag === '--log-level') {
        if (!LEVELS.has(v)) throw new CliExit(EXIT_ERROR, `--log-level ${JSON.stringify(v)} must be debug, info, warn or error`);
        level = v as Level;
      } else configPath = v;
      globalArgs.push(flag, v);
    } else if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      return 0;
    } else break;
  }
  const [command, ...rest] = argv.slice(i);
  if (command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? EXIT_ERROR : 0;
  }
  if (command === 'version') {
    process.stdout.write(`hako ${version()}\nnode ${process.version}\n`);
    return 0;
  }
  const loaded = await loadConfig({ path: configPath });
  // Users see errors only, in words, unless they ask; with --log-level the lines are JSON (the
  // benchmarks read the info-level timing lines).
  const lvl: Level = level ?? 'error';
  const stderrSink = level ? streamSink(process.stderr) : humanSink(process.stderr);
  const ctx: CliContext = {
    config: loaded.config,
    log: new Logger(stderrSink, lvl),
    stderrSink,
    level: level ?? loaded.config.log.level,
    stderrLevel: lvl,
    mainPath: fileURLToPath(import.meta.url),
    globalArgs,
  };
  switch (command) {
    case 'run':
      return runCommand(rest, ctx);
    case 'exec':
      return execCommand(rest, ctx);
    case 'ps':
      return psCommand(rest, ctx);
    case 'kill':
      return killCommand(rest, ctx);
    case 'rm':
      return rmCommand(rest, ctx);
    case 'image':
      return imageCommand(rest, ctx);
    case 'factory':
      return factoryCommand(rest, ctx);
    case 'check':
      return checkCommand(rest, ctx, loaded.source, loaded.dropIns);
    case '_serve':
      return serveCommand(ctx);
    default:
      throw new CliExit(EXIT_ERROR, `unknown command ${JSON.stringify(command)}; see hako --help`);
  }
}

/** humanSink turns JSON log lines into `hako: level: message (error)` for people. */
function humanSink(stream: NodeJS.WritableStream): Sink {
  return {
    write: (line) => {
      try {
        const r = JSON.parse(line) as { level?: string; msg?: string; err?: { message?: string } };
        stream.write(`hako: ${r.level ?? 'log'}: ${r.msg ?? ''}${r.err?.message ? ` (${r.err.message})` : ''}\n`);
      } catch {
        stream.write(line);
      }
    },
  };
}

/** report prints an error as `hako: message` and returns the exit status for it. */
function report(err: unknown): number {
  if (err instanceof CliExit) {
    if (err.message) process.stderr.write(prefixed(err.message));
    return err.status;
  }
  const e = HakoError.from(err);
  process.stderr.write(prefixed(e.message));
  return EXIT_ERROR;
}

function prefixed(message: string): string {
  return `${message.startsWith('hako ') ? '' : 'hako: '}${message}\n`;
}

// Run when executed as a program (bin/hako imports this module).
main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (err: unknown) => process.exit(report(err)),
);
