// Compares protobuf definitions by compiling them with protoc into FileDescriptorSets:
// used to prove that hako's copies of containerd's messages match containerd's own.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorSet,
  type ServiceDescriptorProto,
} from '@bufbuild/protobuf/wkt';

/** compileProtos runs `protoc --descriptor_set_out` over files (relative to an include path). */
export function compileProtos(files: string[], includes: string[]): FileDescriptorSet {
  const dir = mkdtempSync(join(tmpdir(), 'hako-protoc-'));
  try {
    const out = join(dir, 'set.pb');
    execFileSync('protoc', [...includes.map((i) => `-I${i}`), `--descriptor_set_out=${out}`, ...files], { stdio: ['ignore', 'ignore', 'pipe'] });
    return fromBinary(FileDescriptorSetSchema, readFileSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Definitions are the messages, enums and services of a set, by full name (".pkg.Name"). */
export interface Definitions {
  messages: Map<string, DescriptorProto>;
  enums: Map<string, EnumDescriptorProto>;
  services: Map<string, ServiceDescriptorProto>;
}

/** collectDefinitions indexes every message (nested too), enum and service of set. */
export function collectDefinitions(set: FileDescriptorSet): Definitions {
  const defs: Definitions = { messages: new Map(), enums: new Map(), services: new Map() };
  const addMessage = (prefix: string, m: DescriptorProto) => {
    const name = `${prefix}.${m.name}`;
    defs.messages.set(name, m);
    for (const n of m.nestedType) addMessage(name, n);
    for (const e of m.enumType) defs.enums.set(`${name}.${e.name}`, e);
  };
  for (const f of set.file) {
    const prefix = f.package ? `.${f.package}` : '';
    for (const m of f.messageType) addMessage(prefix, m);
    for (const e of f.enumType) defs.enums.set(`${prefix}.${e.name}`, e);
    for (const s of f.service) defs.services.set(`${prefix}.${s.name}`, s);
  }
  return defs;
}

function describeField(f: FieldDescriptorProto): string {
  const label = f.label === FieldDescriptorProto_Label.REPEATED ? 'repeated ' : '';
  const type = f.typeName !== '' ? f.typeName : FieldDescriptorProto_Type[f.type]!.toLowerCase();
  return `${label}${type} ${f.name} = ${f.number}`;
}

/** DiffOptions relax the comparison where hako deliberately declares less. */
export interface DiffOptions {
  /** subset names messages that may omit fields containerd has (declared fields must still match). */
  subset?: (messageName: string) => boolean;
}

/**
 * diffDefinitions lists every difference between ours and theirs for the definitions that
 * ours declares: missing definitions, and fields (name, number, type, label, type name),
 * enum values and service methods that differ or exist on one side only. Map fields
 * are covered because their entry messages are compared like any nested message.
 */
export function diffDefinitions(ours: Definitions, theirs: Definitions, opts: DiffOptions = {}): string[] {
  const out: string[] = [];
  for (const [name, m] of ours.messages) {
    const t = theirs.messages.get(name);
    if (!t) {
      out.push(`message ${name}: not defined by containerd`);
      continue;
    }
    if ((m.options?.mapEntry ?? false) !== (t.options?.mapEntry ?? false)) out.push(`message ${name}: map entry on one side only`);
    const theirsByNumber = new Map(t.field.map((f) => [f.number, f]));
    const oursByNumber = new Map(m.field.map((f) => [f.number, f]));
    for (const f of m.field) {
      const g = theirsByNumber.get(f.number);
      if (!g) {
        const byName = t.field.find((x) => x.name === f.name);
        out.push(`${name}.${f.name}: hako has ${describeField(f)}, containerd ${byName ? `has ${describeField(byName)}` : 'has no such field'}`);
        continue;
      }
      if (f.name !== g.name || f.type !== g.type || f.label !== g.label || f.typeName !== g.typeName) {
        out.push(`${name} field ${f.number}: hako has ${describeField(f)}, containerd has ${describeField(g)}`);
      }
    }
    if (opts.subset?.(name)) continue;
    for (const g of t.field) {
      if (!oursByNumber.has(g.number) && !m.field.some((f) => f.name === g.name)) {
        out.push(`${name}.${g.name}: missing in hako (containerd has ${describeField(g)})`);
      }
    }
  }
  for (const [name, e] of ours.enums) {
    const t = theirs.enums.get(name);
    if (!t) {
      out.push(`enum ${name}: not defined by containerd`);
      continue;
    }
    const a = e.value.map((v) => `${v.name}=${v.number}`).sort();
    const b = t.value.map((v) => `${v.name}=${v.number}`).sort();
    if (a.join(',') !== b.join(',')) out.push(`enum ${name}: hako has {${a.join(', ')}}, containerd has {${b.join(', ')}}`);
  }
  for (const [name, s] of ours.services) {
    const t = theirs.services.get(name);
    if (!t) {
      out.push(`service ${name}: not defined by containerd`);
      continue;
    }
    const sig = (m: ServiceDescriptorProto['method'][number]) => `${m.name}(${m.inputType}) returns (${m.outputType})${m.clientStreaming || m.serverStreaming ? ' streaming' : ''}`;
    const a = new Set(s.method.map(sig));
    const b = new Set(t.method.map(sig));
    for (const x of a) if (!b.has(x)) out.push(`service ${name}: hako has rpc ${x}, containerd does not`);
    for (const x of b) if (!a.has(x)) out.push(`service ${name}: containerd has rpc ${x}, hako does not`);
  }
  return out;
}
