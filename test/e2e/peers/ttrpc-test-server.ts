// Standalone ttRPC server process for e2e tests that need the server in its own process
// (the fuzzer checks that it never crashes): serves hako.test.v1.Peer on argv[2].

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Logger, streamSink } from '../../../src/log/index.js';
import { Server } from '../../../src/ttrpc/index.js';
import { registerPeerService } from './test-service.js';

const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: ttrpc-test-server.js SOCKET\n');
  process.exit(2);
}
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const server = new Server({ log: new Logger(streamSink(process.stderr), 'error') });
registerPeerService(server, gc);
await server.listen(path);
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
