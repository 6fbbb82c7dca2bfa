// Small helpers for waits that end on a timeout or an AbortSignal, whichever comes first.
// Used by the hypervisor drivers; each wait cleans up its timer and listener when it settles.

import { Code, HakoError, errorf } from '../errors/index.js';

/** abortError turns an aborted signal into a HakoError: CANCELLED, or the reason's own code if it is a HakoError. */
export function abortError(signal: AbortSignal, what: string): HakoError {
  const reason: unknown = signal.reason;
  if (reason instanceof HakoError) return new HakoError(reason.code, `${what}: ${reason.message}`, { cause: reason });
  if (reason instanceof Error && reason.name === 'TimeoutError') return errorf(Code.DEADLINE_EXCEEDED, `${what}: timed out`, reason);
  return errorf(Code.CANCELLED, `${what}: cancelled`, reason);
}

/**
 * raceDeadline settles like promise, unless timeoutMs passes first (DEADLINE_EXCEEDED, "<what>: timed out after N ms")
 * or signal aborts first. onGiveUp runs when the wait is abandoned, to drop whatever promise was waiting for.
 */
export function raceDeadline<T>(
  promise: Promise<T>,
  what: string,
  opts: { signal?: AbortSignal; timeoutMs?: number; onGiveUp?: () => void },
): Promise<T> {
  const { signal, timeoutMs, onGiveUp } = opts;
  if (signal?.aborted) {
    onGiveUp?.();
    promise.catch(() => {});
    return Promise.reject(abortError(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const giveUp = (err: HakoError): void => {
      done();
      onGiveUp?.();
      promise.catch(() => {});
      reject(err);
    };
    const onAbort = (): void => giveUp(abortError(signal!, what));
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      timer = setTimeout(() => giveUp(errorf(Code.DEADLINE_EXCEEDED, `${what}: timed out after ${timeoutMs} ms`)), Math.max(0, timeoutMs));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        done();
        resolve(v);
      },
      (e: unknown) => {
        done();
        reject(e);
      },
    );
  });
}

/** sleep waits ms milliseconds; an aborted signal rejects it early. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const p = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return raceDeadline(p, 'sleep', { signal, onGiveUp: () => clearTimeout(timer) });
}

/** waitSettled resolves true when promise settles within ms, false otherwise; it never rejects. */
export async function waitSettled(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const, () => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
