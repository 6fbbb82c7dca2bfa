// Parsing the stdout/stderr strings containerd hands a shim: a plain path (FIFO or file),
// `binary:///path?k=v` (a logging binary) or `file:///path` (append). Anything else is an error.

import { Code, HakoError } from '../errors/index.js';

/** StdioTarget is where a process's output goes. */
export type StdioTarget =
  | { kind: 'none' }
  | { kind: 'path'; path: string }
  | { kind: 'file'; path: string }
  | { kind: 'binary'; path: string; args: string[] };

/** parseStdioTarget interprets one stdout/stderr string. */
export function parseStdioTarget(s: string, field: string): StdioTarget {
  if (s === '') return { kind: 'none' };
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(s);
  if (!m) return { kind: 'path', path: s };
  const scheme = m[1]!.toLowerCase();
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new HakoError(Code.INVALID_ARGUMENT, `${field}: cannot parse "${s}"`);
  }
  const path = decodeURIComponent(url.pathname);
  if ((scheme === 'file' || scheme === 'binary') && url.host !== '') {
    throw new HakoError(Code.INVALID_ARGUMENT, `${field}: ${scheme} URI needs an absolute path and no host: "${s}"`);
  }
  switch (scheme) {
    case 'fifo':
      return { kind: 'path', path };
    case 'file':
      if (!path.startsWith('/')) throw new HakoError(Code.INVALID_ARGUMENT, `${field}: file URI needs an absolute path: "${s}"`);
      return { kind: 'file', path };
    case 'binary': {
      if (!path.startsWith('/')) throw new HakoError(Code.INVALID_ARGUMENT, `${field}: binary URI needs an absolute path: "${s}"`);
      // Like containerd's runc shim: each query key becomes an argument, followed by its first value (empty when none).
      const args: string[] = [];
      const seen = new Set<string>();
      for (const [k, v] of url.searchParams) {
        if (seen.has(k)) continue;
        seen.add(k);
        args.push(k, v);
      }
      return { kind: 'binary', path, args };
    }
    default:
      throw new HakoError(Code.INVALID_ARGUMENT, `${field}: unknown STDIO scheme ${scheme} in "${s}"`);
  }
}
