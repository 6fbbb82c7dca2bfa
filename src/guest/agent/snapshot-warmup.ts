// Runs the agent's hot paths once while `node --build-snapshot` builds the snapshot: functions
// compiled then keep their bytecode in it, so the guest does not compile them at the first RPC.

import { Duplex } from 'node:stream';
import { create, fromBinary, ScalarType, toBinary, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { Logger, nullLogger } from '../../log/index.js';
import { Agent, CheckRequestSchema, CheckResponseSchema } from '../../protocols/generated/hako/agent_pb.js';
import { RequestSchema, ResponseSchema } from '../../protocols/generated/ttrpc_pb.js';
import { encodeFrame, FrameReader, FrameType, registerService, Server, type Frame } from '../../ttrpc/index.js';
import { agentService } from './agent-service.js';
import { ContainerManager } from './containers.js';
import { AGENT_VERSION, GuestInfo } from './guest-info.js';
import { OomWatcher } from './oom-watch.js';
import { SandboxSetup } from './sandbox-setup.js';
import { NetCtl } from './net-ctl.js';
import { GuestNetwork } from './network.js';
import { GUESTCTL_PATH, GuestCtl } from './guestctl.js';

/** WARMUP_TIMEOUT_MS bounds the in-memory Check call (it takes milliseconds on the host). */
export const WARMUP_TIMEOUT_MS = 30_000;

/**
 * warmUp round-trips a sample of every Agent request and response through protobuf, and serves
 * one Check through the agent service on a ttRPC Server over an in-memory stream, built as
 * runAgent builds it. It leaves no handle, timer or module state behind: everything it made
 * is garbage once it resolves (the constructors only store their options).
 */
export async function warmUp(): Promise<void> {
  for (const m of Agent.methods) {
    roundTrip(m.input);
    roundTrip(m.output);
  }
  roundTrip(RequestSchema);
  roundTrip(ResponseSchema);
  new Logger({ write: () => {} }, 'info').child({ subsystem: 'warmup' }).info('warm', { n: 1, big: 1n, err: new Error('x') });
  const answer = await serveOneCheck();
  const response = fromBinary(ResponseSchema, answer.data);
  if (response.status !== undefined && response.status.code !== 0) throw new Error(`warm-up Check failed: ${response.status.message}`);
  if (fromBinary(CheckResponseSchema, response.payload).agentVersion !== AGENT_VERSION) throw new Error('warm-up Check answered the wrong version');
}

/** roundTrip encodes and decodes a message of schema with every field set. */
function roundTrip(schema: DescMessage): void {
  fromBinary(schema, toBinary(schema, sample(schema, 0)));
}

/** sample makes a message with each field (the first of each oneof) set to a non-default value. */
function sample(schema: DescMessage, depth: number): ReturnType<typeof create<DescMessage>> {
  const init: Record<string, unknown> = {};
  if (depth < 4) {
    for (const f of schema.fields) {
      const v = fieldValue(f, depth);
      if (f.oneof !== undefined) {
        if (init[f.oneof.localName] === undefined) init[f.oneof.localName] = { case: f.localName, value: v };
      } else {
        init[f.localName] = v;
      }
    }
  }
  return create(schema, init as never);
}

function fieldValue(f: DescField, depth: number): unknown {
  switch (f.fieldKind) {
    case 'scalar':
      return scalarValue(f.scalar, f.longAsString);
    case 'enum':
      return f.enum.values[f.enum.values.length - 1]!.number;
    case 'message':
      return sample(f.message, depth + 1);
    case 'list':
      return [f.listKind === 'scalar' ? scalarValue(f.scalar, f.longAsString) : f.listKind === 'enum' ? f.enum.values[0]!.number : sample(f.message, depth + 1)];
    case 'map': {
      const key = f.mapKey === ScalarType.BOOL ? 'true' : f.mapKey === ScalarType.STRING ? 'k' : '1';
      return { [key]: f.mapKind === 'scalar' ? scalarValue(f.scalar, false) : f.mapKind === 'enum' ? f.enum.values[0]!.number : sample(f.message, depth + 1) };
    }
  }
}

function scalarValue(t: ScalarType, longAsString: boolean): unknown {
  switch (t) {
    case ScalarType.STRING:
      return 'warm';
    case ScalarType.BYTES:
      return Uint8Array.of(1, 2, 3);
    case ScalarType.BOOL:
      return true;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return 1.5;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return longAsString ? '300' : 300n;
    default:
      return 300;
  }
}

/** serveOneCheck sends one Check request frame to a Server over an in-memory stream and returns the answer frame. */
function serveOneCheck(): Promise<Frame> {
  const log = nullLogger;
  const oom = new OomWatcher(log);
  // Never started here: a Check needs no helper, and no process may be spawned into a snapshot.
  const ctl = new GuestCtl(GUESTCTL_PATH, log);
  const sandbox = new SandboxSetup(log, ctl);
  const containers = new ContainerManager({ log, oom, shareReady: () => sandbox.shareReady(), ptyHelper: undefined });
  const server = new Server({ log });
  registerService(server, Agent, agentService({ log, info: new GuestInfo(0), sandbox, containers, oom, ctl, network: new GuestNetwork(new NetCtl(ctl), log) }));
  return new Promise<Frame>((resolve, reject) => {
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, cb) {
        reader.push(chunk);
        cb();
      },
    });
    const finish = (err: Error | undefined, frame?: Frame): void => {
      clearTimeout(timer);
      stream.destroy();
      if (err !== undefined) reject(err);
      else resolve(frame!);
    };
    const reader = new FrameReader({
      frame: (f) => finish(undefined, f),
      oversized: () => finish(new Error('warm-up Check answer is oversized')),
      corrupt: (reason) => finish(new Error(`warm-up Check answer is corrupt: ${reason}`)),
    });
    const timer = setTimeout(() => finish(new Error(`warm-up Check not answered within ${WARMUP_TIMEOUT_MS} ms`)), WARMUP_TIMEOUT_MS);
    server.serve(stream);
    const request = create(RequestSchema, { service: Agent.typeName, method: 'Check', payload: toBinary(CheckRequestSchema, create(CheckRequestSchema)) });
    stream.push(encodeFrame(1, FrameType.Request, 0, toBinary(RequestSchema, request)));
  });
}
