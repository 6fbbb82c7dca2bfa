// Unit tests for the agent's small parsers: cgroup files, crun's JSON log, ids and names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFlatKeyed, parseIoStat, parseSingle, U64_MAX } from './cgroup-stats.js';
import { classifyCrunError, parseCrunLog, signalNumber } from './crun.js';
import { Code } from '../../errors/index.js';
import { parseMemTotalKib } from './guest-info.js';
import { validateContainerId, validateExecId, validateHostname, validateNameserver, validateShareTag } from './ids.js';

test('cgroup v2 file parsers', () => {
  const cpu = parseFlatKeyed('usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n');
  assert.equal(cpu.get('usage_usec'), 1500n);
  assert.equal(cpu.get('system_usec'), 500n);
  assert.equal(parseSingle('max\n'), U64_MAX);
  assert.equal(parseSingle('4096\n'), 4096n);
  assert.equal(parseSingle('garbage'), undefined);
  const io = parseIoStat('254:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:0 rbytes=1 wbytes=2 rios=3 wios=4\n');
  assert.deepEqual(io, { rbytes: 101n, wbytes: 202n, rios: 4n, wios: 6n });
  assert.equal(parseMemTotalKib('MemTotal:         492340 kB\nMemFree: 1 kB\n'), 492340n);
});

test('parseCrunLog classifies a missing or unexecutable command like a shell', () => {
  const notFound = '{"msg":"executable file `nonexist` not found in $PATH: No such file or directory","level":"error","time":"x"}\n';
  assert.deepEqual(parseCrunLog(notFound)?.execStatus, 127);
  const perm = '{"msg":"open executable: Permission denied","level":"error"}\n';
  assert.equal(parseCrunLog(perm)?.execStatus, 126);
  const fmt = '{"msg":"exec container process `/bin/bad`: Exec format error","level":"error"}\n';
  assert.equal(parseCrunLog(fmt)?.execStatus, 126);
  const other = '{"msg":"warning only","level":"warning"}\n{"msg":"mount `/x` to `/y`: Invalid argument","level":"error"}\n';
  assert.deepEqual(parseCrunLog(other), { message: 'mount `/x` to `/y`: Invalid argument', execStatus: undefined });
  assert.equal(parseCrunLog(''), null);
  assert.equal(parseCrunLog('{"msg":"just a warning","level":"warning"}'), null);
});

test('crun errors about unknown containers are NOT_FOUND', () => {
  assert.equal(classifyCrunError('error opening file `/run/crun/c9/status`: No such file or directory'), Code.NOT_FOUND);
  assert.equal(classifyCrunError('mount: Invalid argument'), Code.UNKNOWN);
});

test('signal names map to Linux numbers', () => {
  assert.equal(signalNumber('SIGKILL'), 9);
  assert.equal(signalNumber('SIGTERM'), 15);
  assert.equal(signalNumber(null), 0);
});

test('ids, share tags, hostnames and nameservers are validated', () => {
  assert.equal(validateContainerId('c1_a.b-c'), 'c1_a.b-c');
  for (const bad of ['', '.x', '-x', 'a/b', 'a b', '..', 'x'.repeat(129)]) assert.throws(() => validateContainerId(bad), `id ${bad}`);
  assert.equal(validateExecId(''), '');
  assert.throws(() => validateExecId('../e'));
  assert.equal(validateShareTag('hakoshare'), 'hakoshare');
  assert.throws(() => validateShareTag('x'.repeat(32)));
  assert.throws(() => validateShareTag('a,b'));
  assert.equal(validateHostname('pod-1.example'), 'pod-1.example');
  assert.throws(() => validateHostname('-bad'));
  assert.throws(() => validateHostname('a;b'));
  assert.equal(validateNameserver('10.0.0.1'), '10.0.0.1');
  assert.equal(validateNameserver('fd00::1'), 'fd00::1');
  assert.throws(() => validateNameserver('1.2.3.400'));
  assert.throws(() => validateNameserver('example.com'));
});
