// hako-agent's V8 startup-snapshot entry: `node --build-snapshot` runs this at image build time
// (loading and evaluating every module once), and the guest's node resumes it with runAgent().

import { startupSnapshot } from 'node:v8';
import { runAgent } from './agent-main.js';
import { snapshotSelfCheck, SNAPSHOT_CHECK_ENV } from './snapshot-check.js';

startupSnapshot.setDeserializeMainFunction(() => {
  // The image builder runs the fresh snapshot once on the host to prove that it loads.
  if (process.env[SNAPSHOT_CHECK_ENV] === '1') {
    process.stdout.write(`${JSON.stringify(snapshotSelfCheck())}\n`);
    return;
  }
  runAgent({ startedFrom: 'snapshot' });
});
