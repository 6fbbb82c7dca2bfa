// Reading a child's output pipe in batches: after each chunk the pipe rests unread for a moment, so
// the writer fills it instead of waking the agent every few KiB (each wake-up is costly under TCG).

import type { Readable } from 'node:stream';

/**
 * PIPE_PACE_MS is how long a pipe rests after each chunk. The agent outranks containers for the
 * CPU (container-cgroup.ts), so without it a writer's every few KiB woke the agent at once and
 * stdout moved at ~1 MB/s (measured: 0.97 MB/s unpaced, 1.2-1.3 MB/s paced by 2 ms).
 */
export const PIPE_PACE_MS = 2;

/** StreamHandle is the libuv stream handle under a net.Socket (a child's stdio pipe). */
interface StreamHandle {
  reading?: boolean;
  readStop?: () => number;
  readStart?: () => number;
}

/**
 * PipeGate pauses a child's pipe for two reasons at once: backpressure (hold/release, from the
 * output buffer) and pacing (after each chunk). Readable.pause() alone lets libuv read on until
 * 16 KiB are queued, so pacing also stops the handle's reads, as Node itself does when push()
 * returns false; resume() starts them again.
 */
export class PipeGate {
  private held = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly stream: Readable, private readonly paceMs = PIPE_PACE_MS) {}

  /** chunk is called after each chunk read: the pipe rests paceMs before it is read again. */
  chunk(): void {
    if (this.paceMs <= 0 || this.timer || this.stream.destroyed) return;
    this.stopReading();
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.held) this.restart();
    }, this.paceMs);
  }

  /** hold pauses the pipe until release (the buffer is full). */
  hold(): void {
    this.held = true;
    this.stream.pause();
  }

  /** release resumes the pipe unless it is resting. */
  release(): void {
    this.held = false;
    if (!this.timer) this.restart();
  }

  /** close drops a pending rest (the stream ended). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private handle(): StreamHandle | undefined {
    const h = (this.stream as unknown as { _handle?: StreamHandle })._handle;
    return h && typeof h.readStop === 'function' && typeof h.readStart === 'function' ? h : undefined;
  }

  private stopReading(): void {
    this.stream.pause();
    const h = this.handle();
    if (h?.reading) {
      h.reading = false;
      h.readStop!();
      this.stopped = true;
    }
  }

  /**
   * restart undoes stopReading. The handle is started here, not left to resume(): Readable may
   * still count a read as pending (it asked just before the chunk came), and would not ask again.
   */
  private restart(): void {
    if (this.stream.destroyed) return;
    if (this.stopped) {
      this.stopped = false;
      const h = this.handle();
      if (h && !h.reading) {
        h.reading = true;
        h.readStart!();
      }
    }
    this.stream.resume();
  }
}
