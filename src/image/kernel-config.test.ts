// Unit tests for the kernel config fragment parser and the dropped-option check.
// They also check that hako's real fragment parses and asks for no modules.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { checkKconfig, describeProblems, parseKconfig } from './kernel-config.js';
import { kernelFragmentPath } from './paths.js';

test('parseKconfig reads set, unset and comment lines', () => {
  const v = parseKconfig('# a comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=250\n');
  assert.equal(v.get('CONFIG_A'), 'y');
  assert.equal(v.get('CONFIG_B'), 'n');
  assert.equal(v.get('CONFIG_C'), '"x y"');
  assert.equal(v.get('CONFIG_D'), '250');
  assert.equal(v.size, 4);
});

test('checkKconfig names dropped options and refuses modules', () => {
  const fragment = parseKconfig('CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\n# CONFIG_D is not set\nCONFIG_E=y\n');
  const final = parseKconfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_E=m\n');
  const problems = checkKconfig(fragment, final);
  assert.deepEqual(problems.map((p) => p.option), ['CONFIG_B', 'CONFIG_C', 'CONFIG_E']);
  assert.equal(problems[1]!.got, 'absent');
  assert.match(describeProblems(problems), /CONFIG_B: wanted y, final \.config has n/);
});

test('checkKconfig accepts an unset option that is absent', () => {
  assert.deepEqual(checkKconfig(parseKconfig('# CONFIG_X is not set\n'), new Map()), []);
});

test("hako's fragment parses, asks for node's syscalls and no modules", () => {
  const fragment = parseKconfig(readFileSync(kernelFragmentPath(), 'utf8'));
  for (const opt of ['ADVISE_SYSCALLS', 'MEMBARRIER', 'RSEQ', 'MEMFD_CREATE', 'IO_URING', 'NET_9P_VIRTIO', 'EXT4_FS', 'SECCOMP_FILTER']) {
    assert.equal(fragment.get(`CONFIG_${opt}`), 'y', opt);
  }
  assert.ok(![...fragment.values()].includes('m'));
  assert.ok(fragment.size > 80);
});
