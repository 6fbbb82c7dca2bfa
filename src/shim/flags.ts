// Command-line parsing for containerd-shim-hako-v2, accepting exactly what containerd
// passes (Go `flag` syntax): `-namespace NS -address A -publish-binary P -id ID [-debug] start`.

import { Code, HakoError } from '../errors/index.js';

/** ShimAction is what the binary was asked to do; "serve" when no subcommand is given. */
export type ShimAction = 'start' | 'delete' | 'serve' | 'version';

/** ShimFlags are the parsed flags. */
export interface ShimFlags {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  socket: string;
  debug: boolean;
  action: ShimAction;
}

const STRING_FLAGS: Record<string, keyof ShimFlags> = {
  namespace: 'namespace',
  address: 'address',
  'publish-binary': 'publishBinary',
  id: 'id',
  bundle: 'bundle',
  socket: 'socket',
};

/** parseFlags parses argv (without node and script) the way Go's flag package does. */
export function parseFlags(argv: string[]): ShimFlags {
  const out: ShimFlags = {
    namespace: '', address: '', publishBinary: 'containerd', id: '', bundle: '', socket: '', debug: false, action: 'serve',
  };
  let i = 0;
  let version = false;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') { i++; break; }
    if (!arg.startsWith('-') || arg === '-') break;
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const inline = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (name === 'debug' || name === 'v') {
      const on = inline === undefined ? true : parseBool(name, inline);
      if (name === 'debug') out.debug = on;
      else version = on;
      continue;
    }
    const key = STRING_FLAGS[name];
    if (!key) throw new HakoError(Code.INVALID_ARGUMENT, `flag provided but not defined: -${name}`);
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new HakoError(Code.INVALID_ARGUMENT, `flag needs an argument: -${name}`);
      value = argv[++i]!;
    }
    (out as unknown as Record<string, string>)[key] = value;
  }
  const rest = argv.slice(i);
  if (version) out.action = 'version';
  else if (rest.length > 0) {
    const a = rest[0];
    if (a !== 'start' && a !== 'delete') throw new HakoError(Code.INVALID_ARGUMENT, `unknown action "${a}" (want start, delete, or none to serve)`);
    out.action = a;
  }
  if (out.action !== 'version') {
    if (out.namespace === '') throw new HakoError(Code.INVALID_ARGUMENT, 'shim namespace cannot be empty (-namespace)');
    if (out.id === '') throw new HakoError(Code.INVALID_ARGUMENT, 'shim id cannot be empty (-id)');
  }
  return out;
}

function parseBool(name: string, v: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new HakoError(Code.INVALID_ARGUMENT, `invalid boolean value "${v}" for -${name}`);
}

/** serveArgs are the flags the start action passes to the serving process it spawns. */
export function serveArgs(f: ShimFlags, socketPath: string): string[] {
  const args = ['-namespace', f.namespace, '-id', f.id, '-address', f.address, '-publish-binary', f.publishBinary, '-socket', socketPath];
  if (f.debug) args.push('-debug');
  return args;
}
