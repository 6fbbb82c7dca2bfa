// Connecting this terminal to a container process: stdout/stderr out, stdin in (-i), and with
// -t raw mode plus window-size forwarding. Used by `hako run` and by `hako exec`.

import type { Process } from '../sandbox/index.js';
import type { Logger } from '../log/index.js';

/** Attached undoes an attach (restores the terminal) and waits for output to be written. */
export interface Attached {
  /** started sends the initial window size; call it once the process runs. */
  started(): void;
  /** flushed resolves once stdout and stderr have been written out here. */
  flushed(): Promise<void>;
  restore(): void;
}

function ended(s: NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean }): Promise<void> {
  if (s.readableEnded || s.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    s.once('end', resolve);
    s.once('close', resolve);
  });
}

/** attach wires p to this process's stdio. Call it before p.start(), and restore() when done. */
export function attach(p: Process, opts: { interactive: boolean; tty: boolean; log: Logger }): Attached {
  // EPIPE on our own stdout (piped into `head`) must not crash us; the container keeps running.
  const quiet = (err: Error): void => opts.log.debug('local stdio error', { err });
  process.stdout.on('error', quiet);
  process.stderr.on('error', quiet);
  p.stdout.pipe(process.stdout, { end: false });
  p.stderr?.pipe(process.stderr, { end: false });
  let raw = false;
  if (opts.tty && process.stdin.isTTY) {
    process.stdin.setRawMode(true);
    raw = true;
  }
  if (opts.interactive && p.stdin) process.stdin.pipe(p.stdin);
  const resize = (): void => {
    const tty = process.stdout.isTTY ? process.stdout : process.stderr.isTTY ? process.stderr : null;
    if (tty && tty.rows > 0 && tty.columns > 0) p.resize(tty.rows, tty.columns).catch((err: unknown) => opts.log.debug('resize failed', { err }));
  };
  if (opts.tty) process.stdout.on('resize', resize);
  return {
    started: () => {
      if (opts.tty) resize();
    },
    flushed: async () => {
      await Promise.all([ended(p.stdout), p.stderr ? ended(p.stderr) : undefined]);
    },
    restore: () => {
      process.stdout.off('resize', resize);
      if (opts.interactive && p.stdin) process.stdin.unpipe(p.stdin);
      if (raw) process.stdin.setRawMode(false);
      process.stdin.pause();
    },
  };
}

/** terminalSize returns this terminal's size, if stdout or stderr is one. */
export function terminalSize(): { height: number; width: number } | undefined {
  const tty = process.stdout.isTTY ? process.stdout : process.stderr.isTTY ? process.stderr : null;
  return tty && tty.rows > 0 ? { height: tty.rows, width: tty.columns } : undefined;
}
