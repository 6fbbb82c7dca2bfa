// Accelerator probe: KVM where it works for ordinary guests, TCG (software emulation) otherwise.
// chooseAccel is pure logic over AccelFacts; readAccelFacts gathers those facts from /dev, /sys and /proc.

import { constants as fsc } from 'node:fs';
import { access, readFile, readdir, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Code, errorf } from '../errors/index.js';
import type { Accel, AccelPreference } from './types.js';

/** AccelFacts is what the probe needs to know about the host. */
export interface AccelFacts {
  /** devKvm: whether /dev/kvm is absent, present but not openable read-write by us, or usable. */
  devKvm: 'absent' | 'no-access' | 'present';
  /** modules lists the loaded or built-in kernel modules whose names start with `kvm`. */
  modules: string[];
  /** cpuVirt is the CPU's hardware virtualization flag from /proc/cpuinfo. */
  cpuVirt: 'vmx' | 'svm' | 'none' | 'unknown';
  /** hostCpus is how many CPUs this process may run on. */
  hostCpus: number;
}

/** AccelChoice is the accelerator to use and a sentence saying why (shown by `hako check`). */
export interface AccelChoice {
  accel: Accel;
  reason: string;
}

/**
 * DEFAULT_TCG_TB_SIZE_MIB bounds TCG's translation cache. QEMU's default reserves 1 GiB and fills it
 * as guest code runs; a full cache is flushed and everything is translated again. A cold boot up to
 * the agent alone generates ~118 MiB of host code (measured with `info jit`, 2026-12-02), so 32 MiB
 * flushed ~30 times in one boot plus a few container starts: boot 7.5-9.5 s, later starts 0.65-1.0 s,
 * execs 0.4-0.5 s. 64 MiB (4 flushes): boot 6.6 s, starts 0.24-0.33 s, execs 0.12-0.14 s, for
 * ~37 MiB more RSS (250 vs 212 MiB); 128 MiB bought little more for another ~70 MiB.
 */
export const DEFAULT_TCG_TB_SIZE_MIB = 64;

const PVM_REASON =
  '/dev/kvm is provided by kvm_pvm, which needs a PVM-patched guest kernel ' +
  '(an ordinary kernel aborts QEMU or crawls under it), and no hardware KVM module (kvm_intel, kvm_amd) is loaded';

/** chooseAccel picks the accelerator for a preference and the host's facts. Throws FAILED_PRECONDITION when `kvm` is forced but unusable. */
export function chooseAccel(preference: AccelPreference, facts: AccelFacts): AccelChoice {
  const tcg = (why: string): AccelChoice => ({
    // One host CPU gains nothing from a thread per vCPU; otherwise the builder decides per VM.
    accel:
      facts.hostCpus <= 1
        ? { kind: 'tcg', thread: 'single', tbSizeMiB: DEFAULT_TCG_TB_SIZE_MIB }
        : { kind: 'tcg', tbSizeMiB: DEFAULT_TCG_TB_SIZE_MIB },
    reason: `using TCG (software emulation): ${why}`,
  });
  const mods = new Set(facts.modules);
  const pvm = mods.has('kvm_pvm');
  const vendor = ['kvm_intel', 'kvm_amd'].find((m) => mods.has(m));

  if (preference === 'tcg') return tcg('configured accel=tcg');
  if (preference === 'kvm') {
    if (facts.devKvm !== 'present') {
      throw errorf(Code.FAILED_PRECONDITION, `accel=kvm is configured but ${devKvmProblem(facts.devKvm)}`);
    }
    const warning = pvm && vendor === undefined ? ` (warning: ${PVM_REASON})` : '';
    return { accel: { kind: 'kvm' }, reason: `using KVM: configured accel=kvm${warning}` };
  }
  if (preference !== 'auto') throw errorf(Code.INVALID_ARGUMENT, `accel preference ${JSON.stringify(preference)} must be auto, kvm or tcg`);

  if (facts.devKvm !== 'present') return tcg(devKvmProblem(facts.devKvm));
  if (vendor !== undefined) {
    if (facts.cpuVirt === 'none') return tcg(`${vendor} is loaded but the CPU reports no vmx/svm flag`);
    return { accel: { kind: 'kvm' }, reason: `using KVM: /dev/kvm is served by ${vendor} (hardware virtualization)` };
  }
  if (pvm) return tcg(PVM_REASON);
  // No vendor module visible: KVM may be built into the kernel, which only hardware flags can tell.
  if (facts.cpuVirt === 'vmx' || facts.cpuVirt === 'svm') {
    return { accel: { kind: 'kvm' }, reason: `using KVM: /dev/kvm is present and the CPU has ${facts.cpuVirt} (KVM built into the kernel)` };
  }
  return tcg('/dev/kvm is present but no kvm_intel/kvm_amd module is loaded and the CPU reports no vmx/svm flag');
}

function devKvmProblem(devKvm: AccelFacts['devKvm']): string {
  return devKvm === 'absent'
    ? '/dev/kvm does not exist (no KVM module or no hardware virtualization)'
    : '/dev/kvm exists but this process cannot open it read-write (run as root or join its group)';
}

/** parseProcModules returns the module names of /proc/modules text. */
export function parseProcModules(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.split(' ', 1)[0] ?? '')
    .filter((name) => name.length > 0);
}

/** parseCpuVirt finds vmx or svm in the first `flags` line of /proc/cpuinfo text. */
export function parseCpuVirt(text: string): AccelFacts['cpuVirt'] {
  const line = text.split('\n').find((l) => /^flags\s*:/.test(l));
  if (line === undefined) return 'unknown';
  const flags = new Set(line.slice(line.indexOf(':') + 1).trim().split(/\s+/));
  if (flags.has('vmx')) return 'vmx';
  if (flags.has('svm')) return 'svm';
  return 'none';
}

/** AccelPaths names the files readAccelFacts reads; tests point them elsewhere. */
export interface AccelPaths {
  devKvm: string;
  sysModule: string;
  procModules: string;
  cpuinfo: string;
}

/** DEFAULT_ACCEL_PATHS are the real host locations. */
export const DEFAULT_ACCEL_PATHS: AccelPaths = {
  devKvm: '/dev/kvm',
  sysModule: '/sys/module',
  procModules: '/proc/modules',
  cpuinfo: '/proc/cpuinfo',
};

/** readAccelFacts gathers AccelFacts from the host. Missing files count as "not there", never as errors. */
export async function readAccelFacts(paths: AccelPaths = DEFAULT_ACCEL_PATHS): Promise<AccelFacts> {
  const [devKvm, sysModules, procModules, cpuinfo] = await Promise.all([
    probeDevKvm(paths.devKvm),
    readdir(paths.sysModule).catch(() => [] as string[]),
    readFile(paths.procModules, 'utf8').then(parseProcModules, () => [] as string[]),
    readFile(paths.cpuinfo, 'utf8').then(parseCpuVirt, () => 'unknown' as const),
  ]);
  const modules = [...new Set([...sysModules, ...procModules])].filter((m) => m.startsWith('kvm')).sort();
  return { devKvm, modules, cpuVirt: cpuinfo, hostCpus: availableParallelism() };
}

async function probeDevKvm(path: string): Promise<AccelFacts['devKvm']> {
  try {
    const st = await stat(path);
    if (!st.isCharacterDevice()) return 'absent';
  } catch {
    return 'absent';
  }
  try {
    await access(path, fsc.R_OK | fsc.W_OK);
    return 'present';
  } catch {
    return 'no-access';
  }
}

/** probeAccel reads the host's facts and chooses the accelerator for preference. */
export async function probeAccel(preference: AccelPreference, paths?: AccelPaths): Promise<AccelChoice & { facts: AccelFacts }> {
  const facts = await readAccelFacts(paths);
  return { ...chooseAccel(preference, facts), facts };
}
