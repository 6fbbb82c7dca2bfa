// Finding a command in a container's rootfs the way execvp would in the container, so a
// missing command fails fast on the host (exit 127) instead of after a VM boot.

import { stat } from 'node:fs/promises';
import { secureJoin } from './secure-path.js';

/** findCommand returns the in-container path of cmd (searched on PATH when it has no `/`), or null. */
export async function findCommand(rootfs: string, cmd: string, pathEnv: string, cwd = '/'): Promise<string | null> {
  const candidates = cmd.includes('/')
    ? [cmd.startsWith('/') ? cmd : `${cwd.replace(/\/$/, '')}/${cmd}`]
    : pathEnv.split(':').filter((d) => d !== '').map((d) => `${d.replace(/\/$/, '')}/${cmd}`);
  for (const c of candidates) {
    try {
      const st = await stat(await secureJoin(rootfs, c));
      if (st.isFile() && (st.mode & 0o111) !== 0) return c;
    } catch {
      // not there: try the next PATH entry
    }
  }
  return null;
}
