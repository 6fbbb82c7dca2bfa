// Boot-path timing marks: milliseconds since a sandbox's creation started, each logged as a
// structured `timing` line ({msg: "timing", mark, ms, ...}) that the benchmarks parse.

import type { Fields, Logger } from '../log/index.js';

/** TimingMark names a point on the boot and run path. */
export type TimingMark =
  | 'assets-ready'
  | 'template-ready'
  | 'qemu-spawn'
  | 'qmp-ready'
  | 'state-loaded'
  | 'vm-adopted'
  | 'agent-ready'
  | 'cni-added'
  | 'network-ready'
  | 'network-attached'
  | 'sandbox-ready'
  | 'container-created'
  | 'container-started'
  | 'container-exited'
  | 'cleaned-up';

/** Timings records marks relative to its creation. */
export class Timings {
  private readonly t0 = performance.now();
  /** startedAt is the wall-clock time of mark 0. */
  readonly startedAt = new Date();
  private readonly marks = new Map<string, number>();

  constructor(private readonly log: Logger) {}

  /** mark records name (the first time only) and logs it with extra fields; returns the ms. */
  mark(name: TimingMark, fields?: Fields): number {
    return this.markAt(name, this.now(), fields);
  }

  /** now returns the ms since mark 0, to record a mark later with markAt. */
  now(): number {
    return Math.round((performance.now() - this.t0) * 10) / 10;
  }

  /** markAt records name at an earlier time ms (from now()), logging it now with fields. */
  markAt(name: TimingMark, ms: number, fields?: Fields): number {
    if (!this.marks.has(name)) this.marks.set(name, ms);
    this.log.info('timing', { mark: name, ms, ...fields });
    return ms;
  }

  /** get returns the ms of a mark, if recorded. */
  get(name: TimingMark): number | undefined {
    return this.marks.get(name);
  }

  /** toJSON returns every mark as {name: ms}. */
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.marks);
  }
}
