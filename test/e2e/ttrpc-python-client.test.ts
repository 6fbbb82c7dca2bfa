// e2e: an independent ttRPC client written in Python (stdlib only, protobuf by hand,
// peers/ttrpc_client.py) drives hako's ttRPC Server over a unix socket.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Code } from '../../src/errors/index.js';
import { Server } from '../../src/ttrpc/index.js';
import { listenTemp, waitFor } from '../lib/ttrpc-harness.js';
import { PEER_SERVICE, registerPeerService } from './peers/test-service.js';

// dist/test/e2e/ -> repository root; the Python script is not compiled.
const script = fileURLToPath(new URL('../../../test/e2e/peers/ttrpc_client.py', import.meta.url));

interface Resp {
  stream_id: number;
  code: number;
  message: string;
  payload: string;
}

test('a Python ttRPC client talks to hako\'s server: calls, errors, concurrency, oversize, garbage', { timeout: 60_000 }, async () => {
  const server = new Server();
  registerPeerService(server);
  const l = await listenTemp(server);
  try {
    const out = await new Promise<string>((resolve, reject) =>
      execFile('python3', [script, l.path, PEER_SERVICE], { timeout: 45_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) =>
        err ? reject(new Error(`python client failed: ${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const r = JSON.parse(out) as Record<string, Resp> & {
      concurrent: { sent: number[]; order: number[]; payloads: Record<string, string>; codes: number[] };
      parallel_connections: string[];
      garbage_closed: boolean;
      garbage2_closed: boolean;
    };

    assert.deepEqual(r.echo, { stream_id: 1, code: 0, message: '', payload: 'hello from python' });
    assert.equal(r.namespace!.payload, 'py-ns', 'namespace key matched case-insensitively');
    assert.equal(r.unknown_method!.code, Code.UNIMPLEMENTED);
    assert.match(r.unknown_method!.message, /hako\.test\.v1\.Peer\/NoSuchMethod/);
    assert.equal(r.unknown_service!.code, Code.UNIMPLEMENTED);
    assert.equal(r.bad_protobuf!.code, Code.INVALID_ARGUMENT);
    assert.equal(r.timeout!.code, Code.DEADLINE_EXCEEDED, 'timeout_nano from a foreign client is honoured');

    const c = r.concurrent;
    assert.deepEqual(c.order, [...c.sent].reverse(), 'answers arrive as they complete, not in request order');
    assert.deepEqual(c.codes, [0]);
    c.sent.forEach((id, k) => assert.equal(c.payloads[String(id)], `slept ${(c.sent.length - k) * 40}`));

    assert.equal(r.oversized!.code, Code.RESOURCE_EXHAUSTED);
    assert.equal(r.oversized!.stream_id, 29);
    assert.deepEqual(r.after_oversized, { stream_id: 31, code: 0, message: '', payload: 'still here' });

    assert.equal(r.garbage_closed, true, 'unknown frame type closes the connection');
    assert.equal(r.garbage2_closed, true, 'random bytes close the connection');
    assert.deepEqual(r.parallel_connections, Array.from({ length: 16 }, (_, k) => `conn ${k}`));
    assert.equal(r.fresh_after_garbage!.payload, 'fresh');
    await waitFor(() => server.connectionCount === 0, 5000, 'all Python connections gone');
  } finally {
    await l.close();
  }
});
