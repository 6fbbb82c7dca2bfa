// HakoError: the one error class of hako. Its code maps one-to-one to a ttRPC status,
// so an error raised deep in the sandbox reaches containerd with the right meaning.

import { Code, codeName } from './codes.js';

/** HakoError carries a status code, a message and an optional cause. */
export class HakoError extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HakoError';
    this.code = code;
  }

  /** from converts anything thrown into a HakoError, keeping an existing code. */
  static from(err: unknown, fallback: Code = Code.UNKNOWN): HakoError {
    if (err instanceof HakoError) return err;
    if (err instanceof Error) {
      if (err.name === 'AbortError') {
        const reason = (err as { cause?: unknown }).cause;
        if (reason instanceof HakoError) return reason;
        return new HakoError(Code.CANCELLED, err.message, { cause: err });
      }
      if (err.name === 'TimeoutError') return new HakoError(Code.DEADLINE_EXCEEDED, err.message, { cause: err });
      const errno = (err as NodeJS.ErrnoException).code;
      if (errno === 'ENOENT') return new HakoError(Code.NOT_FOUND, err.message, { cause: err });
      if (errno === 'EEXIST') return new HakoError(Code.ALREADY_EXISTS, err.message, { cause: err });
      if (errno === 'EACCES' || errno === 'EPERM') return new HakoError(Code.PERMISSION_DENIED, err.message, { cause: err });
      return new HakoError(fallback, err.message, { cause: err });
    }
    return new HakoError(fallback, String(err));
  }

  /** wrap adds context in front of the message and keeps the code: "context: message". */
  static wrap(err: unknown, context: string): HakoError {
    const e = HakoError.from(err);
    return new HakoError(e.code, `${context}: ${e.message}`, { cause: e });
  }

  override toString(): string {
    return `${codeName(this.code)}: ${this.message}`;
  }
}

function hasCode(err: unknown, code: Code): boolean {
  return err instanceof HakoError && err.code === code;
}

/** isNotFound reports whether err is a NOT_FOUND HakoError. */
export const isNotFound = (err: unknown): boolean => hasCode(err, Code.NOT_FOUND);
/** isAlreadyExists reports whether err is an ALREADY_EXISTS HakoError. */
export const isAlreadyExists = (err: unknown): boolean => hasCode(err, Code.ALREADY_EXISTS);
/** isUnavailable reports whether err is an UNAVAILABLE HakoError. */
export const isUnavailable = (err: unknown): boolean => hasCode(err, Code.UNAVAILABLE);
/** isDeadlineExceeded reports whether err is a DEADLINE_EXCEEDED HakoError. */
export const isDeadlineExceeded = (err: unknown): boolean => hasCode(err, Code.DEADLINE_EXCEEDED);

/** errorf is shorthand for new HakoError(code, message). */
export function errorf(code: Code, message: string, cause?: unknown): HakoError {
  return new HakoError(code, message, cause === undefined ? undefined : { cause });
}
