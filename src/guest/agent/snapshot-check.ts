// The self-check a freshly built agent snapshot runs on the host before it goes into the
// image: a protobuf round trip through the descriptors that were deserialized, not rebuilt.

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Agent, CheckResponseSchema } from '../../protocols/generated/hako/agent_pb.js';
import { AGENT_VERSION } from './guest-info.js';

/** SNAPSHOT_CHECK_ENV, set to "1", makes the snapshot print snapshotSelfCheck() and exit. */
export const SNAPSHOT_CHECK_ENV = 'HAKO_AGENT_SNAPSHOT_CHECK';

/** SnapshotCheckResult is what the check prints, as one JSON line. */
export interface SnapshotCheckResult {
  ok: boolean;
  agentVersion: string;
  /** methods counts the Agent service's methods, as its descriptor lists them. */
  methods: number;
}

/** snapshotSelfCheck encodes and decodes a CheckResponse and counts the Agent's methods. */
export function snapshotSelfCheck(): SnapshotCheckResult {
  const bytes = toBinary(CheckResponseSchema, create(CheckResponseSchema, { agentVersion: AGENT_VERSION }));
  const back = fromBinary(CheckResponseSchema, bytes);
  const methods = Agent.methods.length;
  return { ok: back.agentVersion === AGENT_VERSION && methods > 0, agentVersion: back.agentVersion, methods };
}
