// Tests of host-side stdio with real FIFOs, a logging binary and a file: data flows both
// ways, a stdin FIFO opened before its writer does not hit early EOF, writers close at the end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync, constants as fsc } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger, memorySink } from '../log/index.js';
import { HostIO } from './stdio.js';
import { FakeProcess } from './testing/fake-sandbox.js';

const log = new Logger(memorySink(), 'debug');

function readAll(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    createReadStream(path).on('data', (c) => chunks.push(c as Buffer)).on('end', () => resolve(Buffer.concat(chunks).toString())).on('error', reject);
  });
}

test('FIFOs: stdout and stderr reach the client with EOF; stdin passes through and closes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hako-stdio-'));
  try {
    for (const n of ['in', 'out', 'err']) execFileSync('mkfifo', [join(dir, n)]);
    const io = await HostIO.open({ stdin: join(dir, 'in'), stdout: join(dir, 'out'), stderr: join(dir, 'err'), terminal: false }, { id: 'c1', namespace: 'default', log });
    const proc = new FakeProcess('', false, true);
    io.attach(proc);
    const outP = readAll(join(dir, 'out'));
    const errP = readAll(join(dir, 'err'));
    // The client's stdin writer shows up only later; the shim must not have seen EOF meanwhile.
    await new Promise((r) => setTimeout(r, 100));
    const stdinEnded = new Promise((r) => proc.stdin!.on('end', r));
    const w = openSync(join(dir, 'in'), fsc.O_WRONLY);
    writeSync(w, 'abc\n');
    closeSync(w);
    await stdinEnded;
    assert.equal(Buffer.concat(proc.stdinData).toString(), 'abc\n');
    proc.stdout.write('hello ');
    proc.stdout.write('world\n');
    proc.stderr!.write('oops\n');
    proc.exit(0);
    await io.drained(2_000);
    assert.equal(await outP, 'hello world\n');
    assert.equal(await errP, 'oops\n');
    await io.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('binary://: the logging binary gets fds 3 and 4 and CONTAINER_ID/NAMESPACE', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hako-stdio-bin-'));
  try {
    const script = join(dir, 'logger.sh');
    writeFileSync(script, '#!/bin/sh\ntrap "" TERM\nout="$1"\necho "$CONTAINER_ID $CONTAINER_NAMESPACE $#" > "$out.env"\nexec 5>&-\ncat <&3 > "$out"\ncat <&4 > "$out.err"\n');
    chmodSync(script, 0o755);
    const out = join(dir, 'log');
    const uri = `binary://${script}?${encodeURIComponent(out)}`;
    const io = await HostIO.open({ stdin: '', stdout: uri, stderr: uri, terminal: false }, { id: 'c9', namespace: 'ns1', log });
    const proc = new FakeProcess('', false, false);
    io.attach(proc);
    proc.stdout.write('to stdout\n');
    proc.stderr!.write('to stderr\n');
    proc.exit(0);
    await io.drained(2_000);
    await io.close();
    assert.equal(readFileSync(`${out}.env`, 'utf8'), 'c9 ns1 2\n');
    assert.equal(readFileSync(out, 'utf8'), 'to stdout\n');
    assert.equal(readFileSync(`${out}.err`, 'utf8'), 'to stderr\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('file://: output is appended to the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hako-stdio-file-'));
  try {
    const path = join(dir, 'sub', 'c.log');
    const io = await HostIO.open({ stdin: '', stdout: `file://${path}`, stderr: `file://${path}`, terminal: false }, { id: 'c1', namespace: 'default', log });
    const proc = new FakeProcess('', false, false);
    io.attach(proc);
    proc.stdout.write('one\n');
    proc.exit(0);
    await io.drained(2_000);
    await io.close();
    const io2 = await HostIO.open({ stdin: '', stdout: `file://${path}`, stderr: '', terminal: false }, { id: 'c1', namespace: 'default', log });
    const p2 = new FakeProcess('', false, false);
    io2.attach(p2);
    p2.stdout.write('two\n');
    p2.exit(0);
    await io2.drained(2_000);
    await io2.close();
    assert.equal(readFileSync(path, 'utf8'), 'one\ntwo\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
