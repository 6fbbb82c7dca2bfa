// `hako _serve`: the detached owner of a `hako run -d` container. It reads the RunPlan on stdin,
// reports readiness on fd 3, then holds the Sandbox and its control socket until the container ends.

import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { HakoError } from '../errors/index.js';
import { Logger, type Level, type Sink } from '../log/index.js';
import type { CliContext } from './context.js';
import { CliExit, EXIT_ERROR } from './exit.js';
import { startOwned } from './owner.js';
import type { RunPlan } from './plan.js';
import { withStartSignals, type ServeMessage } from './run.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/** serveCommand runs the detached owner; it resolves with its own exit status (0 unless it failed). */
export async function serveCommand(ctx: CliContext): Promise<number> {
  const status = createWriteStream('', { fd: 3 });
  status.on('error', () => {});
  const send = (m: ServeMessage): void => void status.write(JSON.stringify(m) + '\n');
  // Before readiness, log lines go to the parent's stderr; afterwards to owner.log in the sandbox dir.
  let file: WriteStream | undefined;
  let started = false;
  const order: Level[] = ['debug', 'info', 'warn', 'error'];
  const shown = (line: string): boolean => {
    const m = /"level":"(\w+)"/.exec(line);
    return order.indexOf((m?.[1] ?? 'error') as Level) >= order.indexOf(ctx.stderrLevel);
  };
  const sink: Sink = {
    write: (line) => {
      if (file) file.write(line);
      else if (!started && shown(line)) send({ type: 'log', line });
    },
  };
  const finest = order[Math.min(order.indexOf(ctx.level), order.indexOf(ctx.stderrLevel))]!;
  const log = new Logger(sink, finest);
  const plan = JSON.parse(await readAll(process.stdin)) as RunPlan;
  let owned;
  try {
    owned = await withStartSignals((signal) => startOwned(plan, { config: ctx.config, log, signal }));
    const { sandbox, container } = owned;
    file = createWriteStream(join(sandbox.dir, 'owner.log'), { flags: 'a', mode: 0o600 });
    const out = createWriteStream(join(sandbox.dir, 'container.log'), { flags: 'a', mode: 0o600 });
    container.init.stdout.pipe(out, { end: false });
    container.init.stderr?.pipe(out, { end: false });
    await container.start();
    send({ type: 'ready', id: plan.id });
  } catch (err) {
    const e = err instanceof CliExit ? err : HakoError.from(err);
    send({ type: 'error', message: e.message, status: e instanceof CliExit ? e.status : EXIT_ERROR });
    status.end();
    file?.end();
    if (owned) await owned.finish(undefined, HakoError.from(err)).catch(() => {});
    return 1;
  }
  started = true;
  status.end();
  const { container, sandbox } = owned;
  // The owner has no terminal: SIGTERM/SIGINT mean "shut down", as `hako rm -f` does.
  const shutdown = (): void => {
    container.kill(9, { all: true }).catch(() => void sandbox.stop().catch(() => {}));
  };
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, shutdown);
  process.on('SIGHUP', () => {});
  let exit;
  let failure: HakoError | undefined;
  try {
    exit = await new Promise<Awaited<ReturnType<typeof container.init.wait>>>((resolve, reject) => {
      container.init.wait().then(resolve, reject);
      sandbox.onExit(reject);
    });
    log.info('container exited', { exitStatus: exit.exitStatus });
  } catch (err) {
    failure = HakoError.from(err);
    log.error('container failed', { err: failure });
  }
  await owned.finish(exit, failure);
  file?.end();
  file = undefined;
  return 0;
}
