// Parsing the values users type: memory sizes (512m, 1g), vCPU counts, signals (KILL, SIGTERM, 9),
// -e KEY=VALUE and -v HOST:CONTAINER[:ro]; each failure names the bad input.

import { constants } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { Code, errorf } from '../errors/index.js';

/** parseMemoryMiB parses a size with an optional b/k/m/g suffix (bare numbers are bytes, as in docker) into MiB. */
export function parseMemoryMiB(text: string, min = 128, max = 1024 * 1024): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw errorf(Code.INVALID_ARGUMENT, `invalid memory size ${JSON.stringify(text)} (use e.g. 512m or 1g)`);
  const n = Number(m[1]);
  const unit = (m[2] ?? '').toLowerCase();
  const bytes = n * ({ '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[unit]!;
  const mib = Math.floor(bytes / 1024 ** 2);
  if (mib < min) throw errorf(Code.INVALID_ARGUMENT, `memory ${JSON.stringify(text)} is less than the minimum of ${min} MiB (use e.g. 512m)`);
  if (mib > max) throw errorf(Code.INVALID_ARGUMENT, `memory ${JSON.stringify(text)} is more than ${max} MiB`);
  return mib;
}

/** parseCpus parses a whole number of vCPUs (1..64). */
export function parseCpus(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw errorf(Code.INVALID_ARGUMENT, `invalid --cpus ${JSON.stringify(text)}: give a whole number of vCPUs`);
  const n = Number(text);
  if (n < 1 || n > 64) throw errorf(Code.INVALID_ARGUMENT, `--cpus ${n} must be between 1 and 64`);
  return n;
}

/** parseSignal turns KILL, SIGKILL, kill or 9 into a signal number. */
export function parseSignal(text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    if (n < 1 || n > 64) throw errorf(Code.INVALID_ARGUMENT, `signal ${t} is out of range (1-64)`);
    return n;
  }
  const name = t.toUpperCase().startsWith('SIG') ? t.toUpperCase() : `SIG${t.toUpperCase()}`;
  const n = (constants.signals as Record<string, number>)[name];
  if (n === undefined) throw errorf(Code.INVALID_ARGUMENT, `unknown signal ${JSON.stringify(text)}`);
  return n;
}

/** parseEnv checks -e KEY=VALUE; a bare KEY takes the value from env (and is dropped if unset there). */
export function parseEnv(list: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const item of list) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (!/^[^=\0\s]+$/.test(key)) throw errorf(Code.INVALID_ARGUMENT, `invalid environment variable ${JSON.stringify(item)} (want KEY=VALUE)`);
    if (item.includes('\0')) throw errorf(Code.INVALID_ARGUMENT, `environment variable ${key} contains a NUL byte`);
    if (eq >= 0) out.push(item);
    else if (env[key] !== undefined) out.push(`${key}=${env[key]}`);
  }
  return out;
}

/** VolumeArg is a parsed -v HOST:CONTAINER[:ro|rw]. */
export interface VolumeArg {
  source: string;
  destination: string;
  readonly: boolean;
}

/** parseVolume parses -v HOST:CONTAINER[:ro|rw]; the host path is made absolute, the container path must be. */
export function parseVolume(text: string, cwd = process.cwd()): VolumeArg {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw errorf(Code.INVALID_ARGUMENT, `invalid volume ${JSON.stringify(text)} (want HOST:CONTAINER or HOST:CONTAINER:ro)`);
  }
  const [source, destination, mode] = parts as [string, string, string | undefined];
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') {
    throw errorf(Code.INVALID_ARGUMENT, `invalid volume mode ${JSON.stringify(mode)} in ${JSON.stringify(text)} (want ro or rw)`);
  }
  if (!isAbsolute(destination)) throw errorf(Code.INVALID_ARGUMENT, `volume ${JSON.stringify(text)}: the container path must be absolute`);
  if (destination.split('/').includes('..')) throw errorf(Code.INVALID_ARGUMENT, `volume ${JSON.stringify(text)}: the container path must not contain ..`);
  return { source: resolve(cwd, source), destination, readonly: mode === 'ro' };
}

/** NAME_RE is what --name accepts (it becomes the sandbox id). */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** parseName checks a --name. */
export function parseName(text: string): string {
  if (!NAME_RE.test(text)) throw errorf(Code.INVALID_ARGUMENT, `invalid name ${JSON.stringify(text)}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  return text;
}
