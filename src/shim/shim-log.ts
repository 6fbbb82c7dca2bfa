// The serving shim's log sink: JSON lines into the `log` FIFO containerd opened in the
// bundle. Never blocks and never throws; reopens the FIFO after containerd restarts.

import { closeSync, constants as fsc, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Sink } from '../log/index.js';

/** REOPEN_INTERVAL_MS limits reopen attempts while nobody reads the FIFO. */
const REOPEN_INTERVAL_MS = 1_000;
/** MAX_BUFFERED bounds what waits in memory for a slow reader; beyond it lines are dropped. */
const MAX_BUFFERED = 1 << 20;

/** fifoSink writes lines to the FIFO at path (a missing reader just drops lines). */
export function fifoSink(path: string): Sink & { close(): void } {
  let sock: Socket | null = null;
  let lastTry = 0;
  const open = () => {
    lastTry = Date.now();
    let fd: number;
    try {
      // Non-blocking write-only open fails with ENXIO when no reader is there, instead of hanging.
      fd = openSync(path, fsc.O_WRONLY | fsc.O_NONBLOCK);
    } catch {
      return;
    }
    try {
      const s = new Socket({ fd, readable: false, writable: true });
      s.on('error', () => { s.destroy(); if (sock === s) sock = null; });
      s.on('close', () => { if (sock === s) sock = null; });
      s.unref();
      sock = s;
    } catch {
      try { closeSync(fd); } catch { /* ignore */ }
    }
  };
  open();
  return {
    write(line: string) {
      if (!sock && Date.now() - lastTry > REOPEN_INTERVAL_MS) open();
      if (!sock || sock.writableLength > MAX_BUFFERED) return;
      sock.write(line);
    },
    close() {
      sock?.end();
      sock = null;
    },
  };
}
