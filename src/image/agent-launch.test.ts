// Unit tests for how the guest starts the agent: agent.conf's rendering, and the agreement of
// the guest scripts with the builder on paths, the check variable, the share tag and the flags.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SNAPSHOT_CHECK_ENV } from '../guest/agent/snapshot-check.js';
import {
  AGENT_NODE_FLAGS, agentConf, GUEST_AGENT_CONF_PATH, GUEST_AGENT_PATH, GUEST_AGENT_SNAPSHOT_PATH, GUEST_SNAPSHOT_ENTRY_PATH, SNAPSHOT_BUILD_PARAM,
} from './agent-launch.js';
import { BUILDER_SHARE_TAG } from './agent-snapshot.js';
import { guestFilesDir } from './paths.js';
import { SNAPSHOT_FILE } from './snapshot-result.js';

test('agentConf sets the node flags as one quoted list of plain words', () => {
  assert.match(agentConf([]), /^HAKO_AGENT_NODE_FLAGS=''$/m);
  assert.match(agentConf(['--max-semi-space-size=1', '--no-opt']), /^HAKO_AGENT_NODE_FLAGS='--max-semi-space-size=1 --no-opt'$/m);
  assert.match(agentConf(), new RegExp(`^HAKO_AGENT_NODE_FLAGS='${AGENT_NODE_FLAGS.join(' ')}'$`, 'm'));
  for (const bad of ['--a b', "--x='y'", '--$(reboot)', '']) assert.throws(() => agentConf([bad]), /cannot pass unquoted/, bad);
});

test('the agent wrapper prefers the snapshot and falls back to the bundle on status 14', async () => {
  const wrapper = await readFile(join(guestFilesDir(), 'agent'), 'utf8');
  assert.ok(wrapper.includes(`snapshot=${GUEST_AGENT_SNAPSHOT_PATH}\n`));
  assert.ok(wrapper.includes(`bundle=${GUEST_AGENT_PATH}\n`));
  assert.ok(wrapper.includes(`. ${GUEST_AGENT_CONF_PATH}`));
  assert.ok(wrapper.includes(`*" ${SNAPSHOT_BUILD_PARAM} "*) exec /etc/hako/snapshot-build`));
  assert.match(wrapper, /--snapshot-blob "\$snapshot"[\s\S]*"\$status" -eq 14[\s\S]*\$HAKO_AGENT_NODE_FLAGS "\$bundle"/);
});

test('the snapshot-build script writes what the builder reads, under the same flags', async () => {
  const script = await readFile(join(guestFilesDir(), 'snapshot-build'), 'utf8');
  assert.ok(script.includes(`. ${GUEST_AGENT_CONF_PATH}`));
  assert.ok(script.includes(`mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ${BUILDER_SHARE_TAG} `));
  assert.ok(script.includes(`--build-snapshot ${GUEST_SNAPSHOT_ENTRY_PATH}`));
  assert.ok(script.includes(`"$out/${SNAPSHOT_FILE}"`));
  assert.ok(script.includes(`${SNAPSHOT_CHECK_ENV}=1 /usr/bin/node $HAKO_AGENT_NODE_FLAGS --snapshot-blob`));
  for (const f of ['build.status', 'check.status', 'check.json', 'build.log']) assert.ok(script.includes(`$out/${f}`), f);
});
