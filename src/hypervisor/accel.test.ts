// Unit tests of the accelerator probe: the choice over fake host facts, and the fact readers.
// No real /dev/kvm is opened; file inputs come from a temporary directory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HakoError, Code } from '../errors/index.js';
import { chooseAccel, parseCpuVirt, parseProcModules, readAccelFacts, type AccelFacts } from './accel.js';

const facts = (over: Partial<AccelFacts>): AccelFacts => ({
  devKvm: 'present',
  modules: ['kvm', 'kvm_intel'],
  cpuVirt: 'vmx',
  hostCpus: 2,
  ...over,
});

test('auto picks KVM when kvm_intel serves /dev/kvm', () => {
  const c = chooseAccel('auto', facts({}));
  assert.deepEqual(c.accel, { kind: 'kvm' });
  assert.match(c.reason, /kvm_intel/);
});

test('auto picks TCG on a PVM host and says why', () => {
  const c = chooseAccel('auto', facts({ modules: ['kvm', 'kvm_pvm'], cpuVirt: 'none' }));
  assert.deepEqual(c.accel, { kind: 'tcg', tbSizeMiB: 64 });
  assert.match(c.reason, /TCG/);
  assert.match(c.reason, /\/dev\/kvm is provided by kvm_pvm, which needs a PVM-patched guest kernel/);
});

test('auto picks TCG when /dev/kvm is missing or not accessible', () => {
  assert.match(chooseAccel('auto', facts({ devKvm: 'absent' })).reason, /does not exist/);
  const c = chooseAccel('auto', facts({ devKvm: 'no-access' }));
  assert.equal(c.accel.kind, 'tcg');
  assert.match(c.reason, /cannot open it read-write/);
});

test('auto trusts hardware flags when KVM is built in', () => {
  assert.equal(chooseAccel('auto', facts({ modules: ['kvm'], cpuVirt: 'svm' })).accel.kind, 'kvm');
  assert.equal(chooseAccel('auto', facts({ modules: [], cpuVirt: 'none' })).accel.kind, 'tcg');
});

test('a single host CPU pins TCG to one thread', () => {
  assert.deepEqual(chooseAccel('auto', facts({ devKvm: 'absent', hostCpus: 1 })).accel, { kind: 'tcg', thread: 'single', tbSizeMiB: 64 });
});

test('configured tcg wins even where KVM works', () => {
  const c = chooseAccel('tcg', facts({}));
  assert.equal(c.accel.kind, 'tcg');
  assert.match(c.reason, /configured accel=tcg/);
});

test('configured kvm is honoured on PVM with a warning, refused without /dev/kvm', () => {
  const c = chooseAccel('kvm', facts({ modules: ['kvm', 'kvm_pvm'] }));
  assert.equal(c.accel.kind, 'kvm');
  assert.match(c.reason, /warning: .*kvm_pvm/);
  assert.throws(
    () => chooseAccel('kvm', facts({ devKvm: 'absent' })),
    (e: unknown) => e instanceof HakoError && e.code === Code.FAILED_PRECONDITION && /does not exist/.test(e.message),
  );
});

test('an unknown preference is rejected', () => {
  assert.throws(() => chooseAccel('xen' as never, facts({})), (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT);
});

test('parsers read /proc/modules and /proc/cpuinfo text', () => {
  assert.deepEqual(parseProcModules('kvm_intel 1 0 - Live 0x0\nkvm 2 1 kvm_intel, Live 0x0\n'), ['kvm_intel', 'kvm']);
  assert.equal(parseCpuVirt('processor\t: 0\nflags\t\t: fpu vme svm sse\n'), 'svm');
  assert.equal(parseCpuVirt('flags\t\t: fpu hypervisor\nflags : vmx\n'), 'none');
  assert.equal(parseCpuVirt('processor : 0\n'), 'unknown');
});

test('readAccelFacts combines /sys/module and /proc/modules and tolerates missing files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hako-accel-'));
  try {
    await mkdir(join(dir, 'module', 'kvm'), { recursive: true });
    await mkdir(join(dir, 'module', 'kvm_pvm'));
    await mkdir(join(dir, 'module', 'ext4'));
    await writeFile(join(dir, 'cpuinfo'), 'flags : fpu sse2\n');
    const f = await readAccelFacts({
      devKvm: '/dev/null', // a character device we can open read-write
      sysModule: join(dir, 'module'),
      procModules: join(dir, 'no-such-file'),
      cpuinfo: join(dir, 'cpuinfo'),
    });
    assert.deepEqual(f.modules, ['kvm', 'kvm_pvm']);
    assert.equal(f.cpuVirt, 'none');
    assert.equal(f.devKvm, 'present');
    assert.equal(chooseAccel('auto', f).accel.kind, 'tcg');
    const missing = await readAccelFacts({ devKvm: join(dir, 'kvm'), sysModule: join(dir, 'x'), procModules: join(dir, 'y'), cpuinfo: join(dir, 'z') });
    assert.deepEqual(missing, { devKvm: 'absent', modules: [], cpuVirt: 'unknown', hostCpus: missing.hostCpus });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
