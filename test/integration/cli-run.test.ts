// `hako run` against real QEMU: the guest kernel, exit statuses, stdin, process isolation,
// volumes (read-only enforced), environment, and images made by other tools (umoci, skopeo).

import { test, afterEach, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, symlinkSync, copyFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOOT_MS, assertClean, hako, prefix, sweep } from './cli-harness.js';

let work = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'hako-cli-run-'));
});
after(() => rmSync(work, { recursive: true, force: true }));
afterEach(async () => {
  await sweep();
  assertClean('after test');
});

test('runs in a VM: guest kernel, exit status, pid namespace, hostname, cwd', { timeout: BOOT_MS * 2 }, async () => {
  const name = `${prefix}-basic`;
  const r = await hako(['run', '--rm', '--name', name, 'busybox', '--', 'sh', '-c',
    'uname -r; echo "pid=$$"; echo "procs=$(ls -d /proc/[0-9]* | wc -l)"; hostname; pwd; exit 7']);
  assert.equal(r.code, 7, `exit status (stderr: ${r.stderr})`);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /^\d+\.\d+\.\d+/, 'a kernel release');
  assert.notEqual(lines[0], release(), 'the guest kernel, not the host kernel');
  assert.equal(lines[1], 'pid=1', 'the command is pid 1 of its own pid namespace');
  const procs = Number(/^procs=(\d+)$/.exec(lines[2]!)?.[1]);
  assert.ok(procs >= 1 && procs <= 5, `the container sees only its own processes (saw ${procs})`);
  assert.equal(lines[3], name, 'hostname is the container name');
  assert.equal(lines[4], '/');
});

test('stdin is forwarded with -i and closed at EOF', { timeout: BOOT_MS * 2 }, async () => {
  const r = await hako(['run', '-i', '--rm', '--name', `${prefix}-stdin`, 'busybox', '--', 'cat'], { input: 'abc\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'abc\n');
});

test('volumes (read-only enforced), -e environment, stderr kept apart', { timeout: BOOT_MS * 2 }, async () => {
  const ro = join(work, 'ro');
  const rw = join(work, 'rw');
  mkdirSync(ro);
  mkdirSync(rw);
  writeFileSync(join(ro, 'in.txt'), 'from the host\n');
  const r = await hako([
    'run', '--rm', '--name', `${prefix}-vol`, '-v', `${ro}:/in:ro`, '-v', `${rw}:/out`, '-e', 'GREETING=hi there',
    'busybox', '--', 'sh', '-c',
    'cat /in/in.txt; echo "$GREETING"; if touch /in/x 2>/dev/null; then echo RO-BROKEN; else echo ro-enforced; fi; echo written > /out/result; echo oops >&2',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'from the host\nhi there\nro-enforced\n');
  assert.match(r.stderr, /oops/);
  assert.equal(readFileSync(join(rw, 'result'), 'utf8'), 'written\n');
  assert.ok(!existsSync(join(ro, 'x')));
});

test('an OCI archive made by umoci and skopeo: env, workdir and cmd from its config', { timeout: BOOT_MS * 2 }, async () => {
  const layout = join(work, 'layout');
  const bundle = join(work, 'bundle');
  execFileSync('umoci', ['init', '--layout', layout]);
  execFileSync('umoci', ['new', '--image', `${layout}:v1`]);
  execFileSync('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(join(rootfs, 'work'), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  execFileSync('chmod', ['755', join(rootfs, 'bin', 'busybox')]);
  for (const applet of ['sh', 'cat', 'pwd', 'env']) symlinkSync('busybox', join(rootfs, 'bin', applet));
  writeFileSync(join(rootfs, 'work', 'data'), 'layer data\n');
  execFileSync('umoci', ['repack', '--image', `${layout}:v1`, bundle]);
  execFileSync('umoci', ['config', '--image', `${layout}:v1`, '--config.env', 'GREETING=from-config', '--config.workingdir', '/work',
    '--config.cmd', 'sh', '--config.cmd=-c', '--config.cmd=echo "$GREETING"; pwd; cat data']);
  const archive = join(work, 'img.tar');
  execFileSync('skopeo', ['copy', `oci:${layout}:v1`, `oci-archive:${archive}:v1`], { stdio: 'ignore' });
  const r = await hako(['run', '--rm', '--name', `${prefix}-oci`, archive]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'from-config\n/work\nlayer data\n');
});

test('bad input fails fast with a message naming the problem, and leaves nothing', { timeout: 60_000 }, async () => {
  const missing = await hako(['run', '--rm', '--name', `${prefix}-bad1`, join(work, 'no-such-image')]);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /no-such-image.*no such file or directory/);

  const notLayout = join(work, 'empty-dir');
  mkdirSync(notLayout);
  const nl = await hako(['run', '--rm', '--name', `${prefix}-bad2`, notLayout]);
  assert.equal(nl.code, 125);
  assert.match(nl.stderr, /not an OCI image layout/);

  const nocmd = await hako(['run', '--rm', '--name', `${prefix}-bad3`, 'busybox', '--', 'no-such-command']);
  assert.equal(nocmd.code, 127);
  assert.match(nocmd.stderr, /"no-such-command": executable file not found/);
  assert.ok(nocmd.ms < 30_000, 'found before any VM boots');

  const flag = await hako(['run', '--bogus', 'busybox']);
  assert.equal(flag.code, 125);
  assert.match(flag.stderr, /unknown flag --bogus/);

  const vol = await hako(['run', '--rm', '-v', `${join(work, 'nope')}:/x`, 'busybox', '--', 'true']);
  assert.equal(vol.code, 125);
  assert.match(vol.stderr, /volume source .*nope does not exist/);

  const mem = await hako(['run', '--rm', '--memory', '12', 'busybox', '--', 'true']);
  assert.equal(mem.code, 125);
  assert.match(mem.stderr, /less than the minimum/);

  const cfg = join(work, 'bad.toml');
  writeFileSync(cfg, '[hypervisor]\nmemory = 512\n');
  const badConfig = await hako(['run', '--rm', 'busybox', '--', 'true'], { env: { HAKO_CONFIG: cfg } });
  assert.equal(badConfig.code, 125);
  assert.match(badConfig.stderr, /unknown key hypervisor\.memory/);
});
