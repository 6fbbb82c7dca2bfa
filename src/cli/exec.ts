// `hako exec [-i] [-t] [-e K=V] [-w DIR] ID [--] CMD...`: run a process in a running container
// through its owner's control socket, attached to this terminal; exits with its status.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { Code, HakoError, errorf } from '../errors/index.js';
import { Process, sandboxPaths, type OciProcess } from '../sandbox/index.js';
import { flagBool, flagList, flagString, parseArgs } from './args.js';
import { attach, terminalSize } from './attach.js';
import type { CliContext } from './context.js';
import { connectControl } from './control.js';
import { resolveId, summarize } from './lookup.js';
import { parseEnv } from './values.js';

/** EXEC_USAGE is the help text of `hako exec`. */
export const EXEC_USAGE = `Usage: hako exec [OPTIONS] CONTAINER [--] COMMAND [ARG...]

Run a command in a running container.

Options:
  -i, --interactive    keep stdin open and forward it
  -t, --tty            give the process a terminal
  -e, --env KEY=VALUE  set an environment variable
  -w, --workdir DIR    working directory inside the container
`;

/** execCommand implements `hako exec`. */
export async function execCommand(argv: string[], ctx: CliContext): Promise<number> {
  const p = parseArgs(
    argv,
    [
      { name: 'interactive', short: 'i' }, { name: 'tty', short: 't' }, { name: 'help', short: 'h' },
      { name: 'env', short: 'e', value: true, repeat: true }, { name: 'workdir', short: 'w', value: true },
    ],
    { command: 'hako exec', stopAfter: 1 },
  );
  if (flagBool(p, 'help')) {
    process.stdout.write(EXEC_USAGE);
    return 0;
  }
  const target = p.positionals[0];
  if (target === undefined || p.rest.length === 0) throw errorf(Code.INVALID_ARGUMENT, 'hako exec: a CONTAINER and a COMMAND are required; see hako exec --help');
  const id = await resolveId(ctx.config.runtime.stateDir, target);
  const interactive = flagBool(p, 'interactive');
  const tty = flagBool(p, 'tty');
  const workdir = flagString(p, 'workdir');
  if (workdir !== undefined && !workdir.startsWith('/')) throw errorf(Code.INVALID_ARGUMENT, `hako exec: --workdir ${workdir} must be absolute`);
  const conn = await connectControl(sandboxPaths(ctx.config.runtime.stateDir, id).control, ctx.log, ctx.config.agent.timeoutMs).catch(async (err: unknown) => {
    const s = await summarize(ctx.config.runtime.stateDir, id);
    throw errorf(Code.FAILED_PRECONDITION, `container ${id} is not running (${s.status})`, err);
  });
  let gone: HakoError | undefined;
  const execId = `exec-${randomBytes(4).toString('hex')}`;
  const spec: Partial<OciProcess> = { args: p.rest, env: parseEnv(flagList(p, 'env')), ...(workdir ? { cwd: workdir } : {}) };
  const size = tty ? terminalSize() : undefined;
  if (size) spec.consoleSize = size;
  const proc = new Process(
    { api: conn, containerId: id, log: ctx.log, failure: () => gone, onExit: () => {} },
    {
      execId, stdin: interactive, terminal: tty,
      starter: () => conn.execProcess({ containerId: id, execId, process: spec, stdin: interactive, terminal: tty }),
    },
  );
  conn.onClose((err) => {
    gone = errorf(Code.UNAVAILABLE, `lost the container's owner: ${err.message}`);
    proc.fail(gone);
  });
  const io = attach(proc, { interactive, tty, log: ctx.log });
  // Signals to `hako exec` go to the exec'd process; the third one kills it.
  let forwarded = 0;
  const forward = (sig: NodeJS.Signals): void => {
    const n = ++forwarded >= 3 ? 9 : constants.signals[sig];
    conn.signalProcess({ containerId: id, execId, signal: n }).catch((err: unknown) => ctx.log.debug('forwarding a signal failed', { sig, err }));
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const s of signals) process.on(s, forward);
  try {
    await proc.start();
    io.started();
    const exit = await proc.wait();
    await Promise.race([io.flushed(), new Promise((r) => setTimeout(r, 2000))]);
    return exit.exitStatus;
  } finally {
    for (const s of signals) process.off(s, forward);
    io.restore();
    conn.close();
  }
}
