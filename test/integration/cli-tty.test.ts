// `hako run -it` and `hako exec -it` on a real pseudo-terminal (driven by a small python3 pty
// script): the container gets a tty of the right size, window resizes reach it, Ctrl-C
// interrupts the foreground process in the container, and the exit status comes back.

import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BOOT_MS, HAKO, assertClean, hako, prefix, sweep } from './cli-harness.js';

afterEach(async () => {
  await sweep();
  assertClean('after test');
});

// Runs argv on a pty of rows x cols. steps: wait for `expect` in the output (regex source), then
// optionally resize the pty, then write `send`. Prints {"out": ..., "status": ...} as JSON.
const DRIVER = String.raw`
import json, os, pty, re, select, signal, struct, sys, fcntl, termios, time
spec = json.loads(sys.argv[1])
def setsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
pid, fd = pty.fork()
if pid == 0:
    setsize(0, spec['rows'], spec['cols'])
    os.execvp(spec['argv'][0], spec['argv'])
out = b''
steps = spec['steps']
deadline = time.time() + spec['timeout']
status = None
while time.time() < deadline:
    if steps and re.search(steps[0]['expect'].encode(), out):
        step = steps.pop(0)
        if 'resize' in step:
            setsize(fd, step['resize'][0], step['resize'][1])
            os.kill(pid, signal.SIGWINCH)
            time.sleep(1.5)
        if 'send' in step:
            os.write(fd, step['send'].encode())
        out += ('<<step %d>>' % (len(spec['steps']) - len(steps))).encode()
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if not data:
            break
        out += data
if time.time() >= deadline:
    os.kill(pid, signal.SIGKILL)
_, st = os.waitpid(pid, 0)
print(json.dumps({'out': out.decode('utf8', 'replace'), 'status': os.waitstatus_to_exitcode(st), 'left': len(steps)}))
`;

interface PtyResult {
  out: string;
  status: number;
  left: number;
}

function onPty(argv: string[], rows: number, cols: number, steps: Array<{ expect: string; send?: string; resize?: [number, number] }>): Promise<PtyResult> {
  return new Promise((resolve, reject) => {
    const spec = JSON.stringify({ argv, rows, cols, steps, timeout: BOOT_MS / 1000 });
    const child = spawn('python3', ['-c', DRIVER, spec], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(JSON.parse(text) as PtyResult);
      } catch {
        reject(new Error(`pty driver printed: ${text}`));
      }
    });
  });
}

test('run -it: a real tty of the right size, resize, Ctrl-C, exit status', { timeout: BOOT_MS * 2 }, async () => {
  const r = await onPty([process.execPath, HAKO, 'run', '-it', '--rm', '--name', `${prefix}-tty`, 'busybox', '--', 'sh'], 33, 111, [
    { expect: '# ', send: 'tty; stty size\n' },
    { expect: '33 111\\r*\\n', resize: [40, 100], send: 'stty size\n' },
    { expect: '40 100\\r*\\n', send: 'sleep 100\n' },
    { expect: 'sleep 100\\r*\\n', send: '\x03' },
    { expect: '\\^C[\\s\\S]*# ', send: 'echo "after $?"; exit 4\n' },
  ]);
  assert.equal(r.left, 0, `every step was reached; output:\n${r.out}`);
  assert.match(r.out, /\/dev\/pts\/\d+/, 'stdin is a terminal in the container');
  assert.match(r.out, /after 130/, 'Ctrl-C interrupted sleep with SIGINT (status 130)');
  assert.equal(r.status, 4);
});

test('exec -it into a detached container gets its own tty', { timeout: BOOT_MS * 2 }, async () => {
  const id = `${prefix}-ttyexec`;
  const run = await hako(['run', '-d', '--name', id, 'busybox', '--', 'sleep', '1000']);
  assert.equal(run.code, 0, run.stderr);
  const r = await onPty([process.execPath, HAKO, 'exec', '-it', id, 'sh'], 20, 70, [
    { expect: '# ', send: 'tty; stty size; exit 6\n' },
  ]);
  assert.equal(r.left, 0, `every step was reached; output:\n${r.out}`);
  assert.match(r.out, /\/dev\/pts\/\d+/);
  assert.match(r.out, /20 70/);
  assert.equal(r.status, 6);
  assert.equal((await hako(['rm', '-f', id])).code, 0);
});
