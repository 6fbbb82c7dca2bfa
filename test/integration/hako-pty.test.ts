// hako-pty, the guest's static C pty helper, compiled with the host's gcc and run on the
// host: exit statuses, stdin relay and EOF, and window sizes through the fd 3 control pipe.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestFilesDir } from '../../src/image/paths.js';

let dir = '';
let bin = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hako-pty-'));
  bin = join(dir, 'hako-pty');
  execFileSync('gcc', ['-static', '-Os', '-Wall', '-Werror', '-o', bin, join(guestFilesDir(), 'hako-pty.c')]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Result { code: number | null; out: string }

function runPty(args: string[], opts: { input?: string; control?: string[]; controlAfter?: RegExp; keepStdinOpenMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
    let out = '';
    const ctl = child.stdio[3] as NodeJS.WritableStream;
    let controlSent = false;
    const sendControl = () => {
      if (controlSent) return;
      controlSent = true;
      for (const line of opts.control ?? []) ctl.write(line);
    };
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (opts.controlAfter?.test(out)) sendControl();
    });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`hako-pty ${args.join(' ')} did not finish; output so far: ${out}`)); }, 10_000);
    child.on('exit', (code) => { clearTimeout(timer); setTimeout(() => resolve({ code, out }), 20); });
    if (!opts.controlAfter) sendControl();
    if (opts.input !== undefined) child.stdin!.write(opts.input);
    setTimeout(() => child.stdin!.end(), opts.keepStdinOpenMs ?? 0);
  });
}

test('the command runs on a terminal and its exit status passes through', async () => {
  const r = await runPty(['--', 'sh', '-c', 'test -t 0 && test -t 1 && echo on-a-tty; exit 3']);
  assert.equal(r.code, 3);
  assert.match(r.out, /on-a-tty\r\n/);
});

test('a command killed by a signal gives 128+N', async () => {
  const r = await runPty(['--', 'sh', '-c', 'kill -9 $$']);
  assert.equal(r.code, 137);
});

test('a missing command gives 127 with a message naming it', async () => {
  const r = await runPty(['--', '/nonexistent/cmd']);
  assert.equal(r.code, 127);
  assert.match(r.out, /\/nonexistent\/cmd/);
});

test('stdin is relayed and its end is delivered as the terminal EOF', async () => {
  const r = await runPty(['--', 'sh', '-c', 'read x; echo "got:$x"; cat; echo after-eof'], { input: 'abc\n' });
  assert.equal(r.code, 0);
  assert.match(r.out, /got:abc/);
  assert.match(r.out, /after-eof/);
});

test('initial size from flags, later sizes from fd 3 with SIGWINCH', async () => {
  const r = await runPty(
    ['--rows', '40', '--cols', '100', '--', 'sh', '-c', 'trap "stty size; exit 0" WINCH; stty size; i=0; while [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; exit 9'],
    { control: ['garbage line\n', '50 132\n'], controlAfter: /40 100/, keepStdinOpenMs: 3000 },
  );
  assert.match(r.out, /40 100/);
  assert.match(r.out, /50 132/);
  assert.equal(r.code, 0);
});

test('--raw gives the command a raw terminal that does not echo input', async () => {
  const r = await runPty(['--raw', '--', 'sh', '-c', 'stty -a; head -c 4 | od -An -c'], { input: 'abc\n', keepStdinOpenMs: 1000 });
  assert.equal(r.code, 0);
  assert.match(r.out, /-icanon/);
  assert.match(r.out, /-echo\b/);
  assert.doesNotMatch(r.out, /^abc/m, 'input must not be echoed');
  assert.match(r.out, /a\s+b\s+c\s+\\n/);
});

test('input a command does not read yet never stalls the relay of its output', async () => {
  // 80 KB of input against a pty that buffers 4 KB, while the command first writes 200 KB.
  const r = await runPty(['--', 'sh', '-c', 'yes out | head -n 50000 >/dev/tty; wc -l'], { input: 'x\n'.repeat(40_000) });
  assert.equal(r.code, 0);
  assert.match(r.out, /^\s*40000\r?$/m);
});

test('usage errors exit 125', async () => {
  const r = await runPty(['--rows', 'x']);
  assert.equal(r.code, 125);
});
