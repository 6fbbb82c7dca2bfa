// One server-side call in flight: its deadline and cancellation. The AbortSignal (and its timer)
// is made only when a handler asks for it, since most calls never look (each cost ~0.1-0.35 ms in a TCG guest).

import { Code, HakoError } from '../errors/index.js';

/** CallState is the cancellation state of one call; abort() may come before or after signal is read. */
export class CallState {
  private ac: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reason: unknown;
  private ended = false;

  /**
   * constructor takes the deadline as a Date.now() value (null for none), the timeout it came from
   * and the method name, for the DEADLINE_EXCEEDED message.
   */
  constructor(private readonly deadline: number | null, private readonly timeoutMs: number, private readonly method: string) {}

  /** signal aborts at the deadline or on abort(); made on first use. */
  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController();
      const early = this.currentReason();
      if (early !== undefined) this.ac.abort(early);
      else if (this.deadline !== null && !this.ended) {
        const left = Math.max(1, Math.min(this.deadline - Date.now(), 2 ** 31 - 1));
        this.timer = setTimeout(() => this.ac!.abort(this.deadlineError()), left);
      }
    }
    return this.ac.signal;
  }

  /** aborted reports whether the call was aborted or its deadline has passed. */
  get aborted(): boolean {
    return this.ac ? this.ac.signal.aborted : this.currentReason() !== undefined;
  }

  /** abortReason is why the call was aborted (the deadline error once it has passed). */
  get abortReason(): unknown {
    return this.ac ? (this.ac.signal.reason as unknown) : this.currentReason();
  }

  /** abort cancels the call (its connection closed). */
  abort(reason: unknown): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.ac) this.ac.abort(reason);
    else this.reason ??= reason;
  }

  /** end stops the deadline timer once the handler has settled. */
  end(): void {
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private currentReason(): unknown {
    if (this.reason !== undefined) return this.reason;
    if (this.deadline !== null && Date.now() >= this.deadline) this.reason = this.deadlineError();
    return this.reason;
  }

  private deadlineError(): HakoError {
    return new HakoError(Code.DEADLINE_EXCEEDED, `${this.method}: deadline of ${this.timeoutMs} ms exceeded`);
  }
}
