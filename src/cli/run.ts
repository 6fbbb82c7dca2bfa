// `hako run`: plan, boot, attach, start, wait, clean up; signals during start cancel and clean up,
// signals after start go to the container. With -d a detached owner (`hako _serve`) takes over.

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import { Code, HakoError, errorf } from '../errors/index.js';
import { formatElapsed } from '../image/index.js';
import { attach, terminalSize } from './attach.js';
import type { CliContext } from './context.js';
import { CliExit, EXIT_ERROR, signalExitStatus } from './exit.js';
import { startOwned } from './owner.js';
import { RUN_USAGE, planRun, type RunPlan } from './plan.js';
import { OWNER_NODE_FLAGS } from '../sandbox/index.js';

const START_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const FORWARD_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** withStartSignals runs fn with an AbortSignal that the first SIGINT/SIGTERM/SIGHUP aborts. */
export async function withStartSignals<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let got: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals): void => {
    got ??= sig;
    ac.abort(errorf(Code.CANCELLED, `interrupted by ${sig}`));
  };
  for (const s of START_SIGNALS) process.on(s, handler);
  try {
    return await fn(ac.signal);
  } catch (err) {
    if (got !== undefined) throw new CliExit(signalExitStatus(constants.signals[got]), `interrupted by ${got}: nothing was left behind`);
    throw err;
  } finally {
    for (const s of START_SIGNALS) process.off(s, handler);
  }
}

/** runCommand implements `hako run`; it resolves with the exit status. */
export async function runCommand(argv: string[], ctx: CliContext): Promise<number> {
  const onProgress = (e: { asset: string; message: string; elapsedMs: number }): void => {
    process.stderr.write(`hako: building ${e.asset} (${formatElapsed(e.elapsedMs)}): ${e.message}\n`);
  };
  const started = await withStartSignals(async (signal) => {
    const plan = await planRun(argv, { config: ctx.config, log: ctx.log, onProgress, signal });
    if (plan === 'help') return { kind: 'help' as const };
    if (plan.detach) return { kind: 'detached' as const, status: await runDetached(plan, ctx, signal) };
    if (plan.tty) {
      const size = terminalSize();
      if (size) plan.spec.process.consoleSize = size;
    }
    return { kind: 'owned' as const, plan, owned: await startOwned(plan, { config: ctx.config, log: ctx.log, signal }) };
  });
  switch (started.kind) {
    case 'help':
      process.stdout.write(RUN_USAGE);
      return 0;
    case 'detached':
      return started.status;
    case 'owned':
      return foreground(started.plan, started.owned, ctx);
  }
}

async function foreground(plan: RunPlan, owned: Awaited<ReturnType<typeof startOwned>>, ctx: CliContext): Promise<number> {
  const { container } = owned;
  const init = container.init;
  const io = attach(init, { interactive: plan.interactive, tty: plan.tty, log: ctx.log });
  let forwarded = 0;
  const forward = (sig: NodeJS.Signals): void => {
    forwarded++;
    // pid 1 of a container ignores signals it has no handler for; the third one forces it.
    const n = forwarded >= 3 ? 9 : constants.signals[sig];
    if (forwarded === 2 && sig === 'SIGINT') process.stderr.write('hako: press Ctrl-C once more to kill the container\n');
    container.kill(n, { all: n === 9 }).catch((err: unknown) => ctx.log.debug('forwarding a signal failed', { sig, err }));
  };
  let exit;
  let failure: HakoError | undefined;
  const stopOnSandboxFailure = new Promise<never>((_, reject) => owned.sandbox.onExit(reject));
  stopOnSandboxFailure.catch(() => {});
  try {
    for (const s of FORWARD_SIGNALS) process.on(s, forward);
    await Promise.race([container.start(), stopOnSandboxFailure]);
    io.started();
    exit = await Promise.race([init.wait(), stopOnSandboxFailure]);
    await Promise.race([io.flushed(), new Promise((r) => setTimeout(r, 2000))]);
  } catch (err) {
    failure = HakoError.from(err);
  } finally {
    io.restore();
  }
  // Cleanup must finish even if the user presses Ctrl-C again: keep the handlers, ignore.
  for (const s of FORWARD_SIGNALS) process.off(s, forward);
  const ignore = (): void => {};
  for (const s of START_SIGNALS) process.on(s, ignore);
  try {
    await owned.finish(exit, failure);
  } finally {
    for (const s of START_SIGNALS) process.off(s, ignore);
  }
  if (failure) {
    if (owned.removeRequested) throw new CliExit(signalExitStatus(9), `container ${plan.id} was removed (hako rm -f)`);
    throw HakoError.wrap(failure, `container ${plan.id}`);
  }
  return exit!.exitStatus;
}

/** ServeMessage is one line the detached owner sends its parent over fd 3 during start. */
export type ServeMessage =
  | { type: 'log'; line: string }
  | { type: 'ready'; id: string }
  | { type: 'error'; message: string; status: number };

async function runDetached(plan: RunPlan, ctx: CliContext, signal: AbortSignal): Promise<number> {
  const child = spawn(process.execPath, [...OWNER_NODE_FLAGS, ctx.mainPath, ...ctx.globalArgs, '_serve'], {
    detached: true,
    // The owner must not hold our stdout/stderr: whoever runs `hako run -d` waits for their EOF.
    stdio: ['pipe', 'ignore', 'ignore', 'pipe'],
  });
  child.stdin!.end(JSON.stringify(plan));
  const onAbort = (): void => void child.kill('SIGTERM');
  signal.addEventListener('abort', onAbort, { once: true });
  let result: { status: number; message?: string; id?: string } | undefined;
  try {
    const lines = createInterface({ input: child.stdio[3] as NodeJS.ReadableStream });
    for await (const line of lines) {
      let msg: ServeMessage;
      try {
        msg = JSON.parse(line) as ServeMessage;
      } catch {
        continue;
      }
      if (msg.type === 'log') ctx.stderrSink.write(msg.line.endsWith('\n') ? msg.line : msg.line + '\n');
      else if (msg.type === 'ready') result ??= { status: 0, id: msg.id };
      else if (msg.type === 'error') result ??= { status: msg.status, message: msg.message };
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (signal.aborted) throw signal.reason;
  if (!result) throw errorf(Code.INTERNAL, 'the container owner process exited during start (run with --log-level debug for details)');
  if (result.status !== 0) throw new CliExit(result.status || EXIT_ERROR, result.message);
  child.unref();
  process.stdout.write(`${result.id}\n`);
  return 0;
}
