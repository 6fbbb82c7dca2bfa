// Loading hako's TOML configuration: parse with smol-toml, reject unknown keys by name,
// validate every value against SCHEMA, fill in defaults, then apply the config.d drop-ins.

import { readdir, readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { Code, HakoError, errorf } from '../errors/index.js';
import { SCHEMA, defaultConfig, type HakoConfig, type KeySpec } from './schema.js';

/** DEFAULT_CONFIG_PATH is read when HAKO_CONFIG is not set; a missing file means all defaults. */
export const DEFAULT_CONFIG_PATH = '/etc/hako/config.toml';

/** LoadedConfig is a validated configuration and the file it came from (null: defaults only). */
export interface LoadedConfig {
  config: HakoConfig;
  source: string | null;
  /** dropIns are the config.d/*.toml files applied after it, in order. */
  dropIns: string[];
}

/** parseConfig parses TOML text into a validated HakoConfig; source names the file in errors. */
export function parseConfig(text: string, source = 'config'): HakoConfig {
  return applyConfig(defaultConfig(), text, source);
}

/** applyConfig parses TOML text and sets the keys it names in config (which it returns). */
export function applyConfig(config: HakoConfig, text: string, source = 'config'): HakoConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    const where = err instanceof TomlError ? ` (line ${err.line}, column ${err.column})` : '';
    const first = (err as Error).message.split('\n', 1)[0];
    throw errorf(Code.INVALID_ARGUMENT, `${source}: invalid TOML${where}: ${first}`, err);
  }
  const sections = new Set(SCHEMA.map((s) => s.section as string));
  for (const [section, body] of Object.entries(doc)) {
    if (!sections.has(section)) {
      throw errorf(Code.INVALID_ARGUMENT, `${source}: unknown section [${section}] (known: ${[...sections].join(', ')})`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Date) {
      throw errorf(Code.INVALID_ARGUMENT, `${source}: ${section} must be a table`);
    }
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
      const spec = SCHEMA.find((s) => s.section === section && s.key === key);
      if (!spec) {
        const known = SCHEMA.filter((s) => s.section === section).map((s) => s.key);
        throw errorf(Code.INVALID_ARGUMENT, `${source}: unknown key ${section}.${key} (known in [${section}]: ${known.join(', ')})`);
      }
      (config[spec.section] as Record<string, unknown>)[spec.prop] = validateValue(spec, value, source);
    }
  }
  return config;
}

function validateValue(spec: KeySpec, value: unknown, source: string): unknown {
  const name = `${source}: ${spec.section}.${spec.key}`;
  const bad = (want: string): HakoError =>
    errorf(Code.INVALID_ARGUMENT, `${name} must be ${want}, not ${describe(value)}`);
  const t = spec.type;
  switch (t.kind) {
    case 'string':
      if (typeof value !== 'string' || value === '') throw bad('a non-empty string');
      if (t.absolutePath && !isAbsolute(value)) throw bad('an absolute path');
      return value;
    case 'enum':
      if (typeof value !== 'string' || !t.values.includes(value)) throw bad(`one of ${t.values.join(', ')}`);
      return value;
    case 'integer': {
      const n = typeof value === 'bigint' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw bad('an integer');
      if (n < t.min || n > t.max) throw bad(`between ${t.min} and ${t.max}`);
      return n;
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw bad('true or false');
      return value;
    case 'words': {
      // A string is split on whitespace; an array must hold words without whitespace.
      const words = typeof value === 'string' ? value.split(/\s+/).filter((w) => w !== '') : value;
      if (!Array.isArray(words) || !words.every((w) => typeof w === 'string' && w !== '' && !/\s/.test(w))) {
        throw bad(t.absolutePaths ? 'a string or an array of absolute paths without whitespace' : 'a string or an array of words without whitespace');
      }
      if (t.absolutePaths) {
        const relative = words.find((w) => !isAbsolute(w));
        if (relative !== undefined) throw errorf(Code.INVALID_ARGUMENT, `${name} must hold absolute paths, not ${JSON.stringify(relative)}`);
      }
      return words;
    }
    case 'ipv4-network': {
      const want = `an IPv4 network in CIDR form like 10.213.0.0/16 (prefix /${t.minPrefix} to /${t.maxPrefix})`;
      const m = typeof value === 'string' ? /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(value) : null;
      const octets = m === null ? [] : m.slice(1, 5).map(Number);
      const prefix = m === null ? NaN : Number(m[5]);
      if (m === null || !isIPv4(octets.join('.')) || !(prefix >= t.minPrefix && prefix <= t.maxPrefix)) throw bad(want);
      const addr = octets.reduce((acc, o) => acc * 256 + o, 0);
      const size = 2 ** (32 - prefix);
      if (addr % size !== 0) {
        const base = addr - (addr % size);
        const net = [24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256).join('.');
        throw errorf(Code.INVALID_ARGUMENT, `${name} has host bits set: the network is ${net}/${prefix}, not ${value as string}`);
      }
      return value;
    }
    case 'ifname':
      // IFNAMSIZ is 16 bytes with the terminating NUL; the kernel refuses '/', ':' and whitespace.
      if (typeof value !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(value) || value === '.' || value === '..') {
        throw bad('an interface name of 1-15 letters, digits, \'_\', \'.\' or \'-\'');
      }
      return value;
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return typeof value;
}

/** dropInDir is where the drop-ins of the configuration file at path live: `<dir>/config.d`. */
export function dropInDir(path: string): string {
  return join(dirname(path), 'config.d');
}

/**
 * loadConfig reads the configuration: the file HAKO_CONFIG names (which must exist), else
 * /etc/hako/config.toml if it exists, else the defaults; then every `config.d/*.toml` next to
 * that file, in name order, each overriding the keys it sets.
 */
export async function loadConfig(opts: { path?: string; env?: NodeJS.ProcessEnv } = {}): Promise<LoadedConfig> {
  const env = opts.env ?? process.env;
  const explicit = opts.path ?? (env.HAKO_CONFIG !== undefined && env.HAKO_CONFIG !== '' ? env.HAKO_CONFIG : undefined);
  const path = explicit ?? DEFAULT_CONFIG_PATH;
  let config = defaultConfig();
  let source: string | null = path;
  try {
    config = parseConfig(await readFile(path, 'utf8'), path);
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno !== 'ENOENT' || explicit !== undefined) {
      if (err instanceof HakoError) throw err;
      const via = opts.path === undefined && explicit !== undefined ? ' (named by HAKO_CONFIG)' : '';
      throw HakoError.wrap(err, `reading configuration ${path}${via}`);
    }
    source = null;
  }
  const dir = dropInDir(path);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.toml')).sort();
  const dropIns: string[] = [];
  for (const name of names) {
    const file = join(dir, name);
    config = applyConfig(config, await readFile(file, 'utf8').catch((err: unknown) => {
      throw HakoError.wrap(err, `reading configuration drop-in ${file}`);
    }), file);
    dropIns.push(file);
  }
  return { config, source, dropIns };
}

/** renderSchema prints every key with type, default and description as commented TOML. */
export function renderSchema(): string {
  const out: string[] = [];
  let section = '';
  for (const spec of SCHEMA) {
    if (spec.section !== section) {
      section = spec.section;
      out.push(`${out.length > 0 ? '\n' : ''}[${section}]`);
    }
    const t = spec.type;
    const type =
      t.kind === 'enum' ? t.values.join('|')
        : t.kind === 'integer' ? `integer ${t.min}..${t.max}`
          : t.kind === 'words' ? (t.absolutePaths ? 'array of absolute paths' : 'string or array of words')
            : t.kind === 'boolean' ? 'true|false'
              : t.kind === 'ipv4-network' ? `IPv4 CIDR /${t.minPrefix}../${t.maxPrefix}`
                : t.kind === 'ifname' ? 'interface name'
                  : 'string';
    out.push(`# ${spec.description} (${type})`);
    out.push(`${spec.key} = ${JSON.stringify(spec.default)}`);
  }
  return out.join('\n') + '\n';
}
