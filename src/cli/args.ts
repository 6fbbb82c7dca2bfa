// A small command-line parser for hako's subcommands: long and short flags, bundled short
// booleans (-it), --flag=value, repeated flags, `--`, and stopping at the first positional.

import { Code, errorf } from '../errors/index.js';

/** FlagSpec declares one flag of a command. */
export interface FlagSpec {
  /** name is the long name without dashes (`name` for --name). */
  name: string;
  short?: string;
  /** value: the flag takes a value; otherwise it is a boolean switch. */
  value?: boolean;
  /** repeat: the flag may be given many times (values collect in an array). */
  repeat?: boolean;
}

/** Parsed is the result of parseArgs. */
export interface Parsed {
  flags: Map<string, string | boolean | string[]>;
  /** positionals are the arguments before the first positional stop (or all of them). */
  positionals: string[];
  /** rest is everything after the stop: after `--`, or after the first positional when stopAtPositional. */
  rest: string[];
  /** dashdash reports whether `--` was seen. */
  dashdash: boolean;
}

/** ParseOptions tunes parseArgs. */
export interface ParseOptions {
  /** command names the command in error messages (`hako run`). */
  command: string;
  /** stopAfter: after this many positionals, everything else is `rest` (a container's command). */
  stopAfter?: number;
}

/** parseArgs parses argv against flags; unknown flags and missing values are INVALID_ARGUMENT. */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], opts: ParseOptions): Parsed {
  const out: Parsed = { flags: new Map(), positionals: [], rest: [], dashdash: false };
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const set = (spec: FlagSpec, value: string | boolean): void => {
    if (spec.repeat) {
      const list = (out.flags.get(spec.name) as string[] | undefined) ?? [];
      list.push(String(value));
      out.flags.set(spec.name, list);
    } else out.flags.set(spec.name, value);
  };
  let i = 0;
  const takeValue = (spec: FlagSpec, shown: string): string => {
    const v = argv[++i];
    if (v === undefined) throw errorf(Code.INVALID_ARGUMENT, `${opts.command}: flag ${shown} needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.dashdash = true;
      out.rest = argv.slice(i + 1);
      return out;
    }
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) throw errorf(Code.INVALID_ARGUMENT, `${opts.command}: unknown flag --${name}`);
      if (spec.value) set(spec, eq < 0 ? takeValue(spec, `--${name}`) : arg.slice(eq + 1));
      else if (eq >= 0) throw errorf(Code.INVALID_ARGUMENT, `${opts.command}: flag --${name} takes no value`);
      else set(spec, true);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // Bundled short flags: -it, or -eK=V (a value flag takes the rest of the word).
      for (let j = 1; j < arg.length; j++) {
        const ch = arg[j]!;
        const spec = byShort.get(ch);
        if (!spec) throw errorf(Code.INVALID_ARGUMENT, `${opts.command}: unknown flag -${ch}${arg.length > 2 ? ` (in ${arg})` : ''}`);
        if (spec.value) {
          set(spec, j + 1 < arg.length ? arg.slice(j + 1) : takeValue(spec, `-${ch}`));
          break;
        }
        set(spec, true);
      }
      continue;
    }
    out.positionals.push(arg);
    if (opts.stopAfter !== undefined && out.positionals.length >= opts.stopAfter) {
      out.rest = argv.slice(i + 1);
      if (out.rest[0] === '--') {
        out.dashdash = true;
        out.rest = out.rest.slice(1);
      }
      return out;
    }
  }
  return out;
}

/** flagString returns a string flag's value. */
export function flagString(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** flagBool returns whether a boolean flag was given. */
export function flagBool(p: Parsed, name: string): boolean {
  return p.flags.get(name) === true;
}

/** flagList returns a repeated flag's values. */
export function flagList(p: Parsed, name: string): string[] {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
}
