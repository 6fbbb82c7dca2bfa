// Status codes shared by hako's errors and the ttRPC wire (gRPC numbering).
// containerd maps these numbers back to its errdefs, so they must stay exact.

/** Code is a gRPC/ttRPC status code. */
export enum Code {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** codeName returns the upper-case name of a status code, or `CODE_<n>`. */
export function codeName(code: number): string {
  return Code[code] ?? `CODE_${code}`;
}
