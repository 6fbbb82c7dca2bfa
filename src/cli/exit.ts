// Exit statuses of the hako CLI, and CliExit, an error that carries its own status
// (127 for a missing command) through the command code to main().

/** EXIT_ERROR is hako's own failure (bad input, VM trouble), as docker uses 125. */
export const EXIT_ERROR = 125;
/** EXIT_NOT_EXECUTABLE is a command that exists but cannot run. */
export const EXIT_NOT_EXECUTABLE = 126;
/** EXIT_NOT_FOUND is a command that does not exist in the container. */
export const EXIT_NOT_FOUND = 127;

/** CliExit ends the CLI with status and prints message (if any) as `hako: message`. */
export class CliExit extends Error {
  constructor(readonly status: number, message = '') {
    super(message);
    this.name = 'CliExit';
  }
}

/** signalExitStatus is the shell's status for a process killed by signal number n. */
export function signalExitStatus(n: number): number {
  return 128 + n;
}
