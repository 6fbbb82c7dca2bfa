// hako-agent's V8 startup snapshot entry: `node --build-snapshot` runs this at image build time
// (loading every module and warming the RPC path once), and the guest's node resumes it with runAgent().

import { startupSnapshot } from 'node:v8';
import { runAgent } from './agent-main.js';
import { snapshotSelfCheck, SNAPSHOT_CHECK_ENV } from './snapshot-check.js';
import { warmUp } from './snapshot-warmup.js';

// The snapshot is taken once the event loop is empty, so the warm-up finishes first. A failed
// warm-up fails the build, and the image then starts the plain bundle.
warmUp().catch((err: unknown) => {
  process.stderr.write(`hako-agent snapshot warm-up failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});

startupSnapshot.setDeserializeMainFunction(() => {
  // The image builder starts the fresh snapshot once, in its builder VM, to prove that it loads.
  if (process.env[SNAPSHOT_CHECK_ENV] === '1') {
    process.stdout.write(`${JSON.stringify(snapshotSelfCheck())}\n`);
    return;
  }
  runAgent({ startedFrom: 'snapshot' });
});
