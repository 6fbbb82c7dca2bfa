// Finds the shared libraries a host binary needs (node, crun) by asking ldd, so
// the guest root gets exactly those files and nothing else from the host.

import { Code, errorf } from '../errors/index.js';
import { run } from './run.js';

/**
 * parseLdd extracts absolute library paths from ldd output: "name => /path (addr)"
 * and the bare loader line "/lib64/ld-linux-x86-64.so.2 (addr)". The vDSO has no
 * file and is skipped; an unresolved library ("=> not found") is an error.
 */
export function parseLdd(output: string, binary: string): string[] {
  const libs: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('linux-vdso') || line.startsWith('linux-gate')) continue;
    if (/statically linked/.test(line)) continue;
    if (/=>\s*not found/.test(line)) {
      throw errorf(Code.FAILED_PRECONDITION, `${binary} needs a library the host lacks: ${line}`);
    }
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^(\/\S+)\s+\(0x[0-9a-f]+\)$/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path !== undefined && !libs.includes(path)) libs.push(path);
  }
  return libs;
}

/** sharedLibraries runs ldd on binary and returns the library paths it lists. */
export async function sharedLibraries(binary: string, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
  const { stdout } = await run(['ldd', binary], { timeoutMs: 30_000, signal: opts.signal });
  return parseLdd(stdout, binary);
}
