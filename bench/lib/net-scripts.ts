// The container's side of the network suite, as busybox shell scripts: a stream sender, a stream
// reader and an echo server, in two forms, since one runtime cannot hand a socket to another program.

import type { RuntimeName } from './runtimes.js';

/** BLOCK is dd's block size for the streams (64 KiB, a common socket write size). */
export const BLOCK = 64 * 1024;

/** READY is what an exec-form stream reader prints once the program that reads runs. */
export const READY = 'ready\n';

/** NetScripts is one form of the container's programs; every listener takes connections on its port. */
export interface NetScripts {
  form: 'exec' | 'copy';
  /** sender listens once on port, sends blocks × BLOCK zero bytes to whoever connects, then closes. */
  sender(port: number, blocks: number): string;
  /** reader listens once on port, reads to the end, then closes; with readyFirst it first sends READY. */
  reader(port: number): string;
  readyFirst: boolean;
  /** echo serves connections one after another (or at once) on port, echoing what each sends. */
  echo(port: number): string;
  /** how says in one line what the form runs, for the report. */
  how: string;
}

/**
 * EXEC_SCRIPTS have `nc` exec the program with the socket as its stdin and stdout, so dd moves
 * 64 KiB a call and nc is out of the data path. Its echo server forks and execs cat per connection.
 */
export const EXEC_SCRIPTS: NetScripts = {
  form: 'exec',
  sender: (port, blocks) => `exec nc -l -p ${port} -e dd if=/dev/zero bs=${BLOCK} count=${blocks} 2>/dev/null`,
  reader: (port) => `exec nc -l -p ${port} -e sh -c 'printf "${READY.trim()}\\n"; exec dd of=/dev/null bs=${BLOCK} 2>/dev/null'`,
  readyFirst: true,
  echo: (port) => `exec nc -ll -p ${port} -e cat`,
  how: '`nc -l -p P -e dd …` (dd reads or writes the socket itself, 64 KiB a call); echo `nc -ll -p P -e cat`',
};

/**
 * COPY_SCRIPTS keep `nc` in the data path, copying between the socket and a pipe with its own
 * poll loop (a few KiB a call). Needed for runsc --network=host: there a program that nc execs
 * gets a socket whose blocking reads and writes fail with EAGAIN (dd: "Resource temporarily
 * unavailable"), so only nc itself, which polls, can use it.
 */
export const COPY_SCRIPTS: NetScripts = {
  form: 'copy',
  // On stdin's end nc shuts its sending side down; the host then closes, and nc exits.
  sender: (port, blocks) => `dd if=/dev/zero bs=${BLOCK} count=${blocks} 2>/dev/null | nc -l -p ${port}`,
  reader: (port) => `nc -l -p ${port} </dev/null | dd of=/dev/null bs=${BLOCK} 2>/dev/null`,
  readyFirst: false,
  // One nc per connection, its output fed back to its input through a fifo and cat.
  echo: (port) => `f=/tmp/hb-echo-${port}; rm -f $f; mkfifo $f; while :; do cat $f | nc -l -p ${port} > $f; done`,
  how: '`dd … | nc -l -p P` and `nc -l -p P | dd …` (nc copies with its own poll loop); echo `cat FIFO | nc -l -p P > FIFO` in a loop',
};

/** netScripts returns the form a runtime's container uses: copy for runsc (see COPY_SCRIPTS), exec otherwise. */
export function netScripts(name: RuntimeName): NetScripts {
  return name === 'runsc' ? COPY_SCRIPTS : EXEC_SCRIPTS;
}
