// Task event topics and packing: each event travels in an Any whose type URL is the
// bare full message name (containerd's typeurl), e.g. "containerd.events.TaskExit".

import { create, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import { AnySchema, type Any } from '@bufbuild/protobuf/wkt';
import {
  TaskCreateSchema, TaskDeleteSchema, TaskExecAddedSchema, TaskExecStartedSchema, TaskExitSchema,
  TaskOOMSchema, TaskPausedSchema, TaskResumedSchema, TaskStartSchema,
} from '../protocols/generated/containerd/events_pb.js';

/** TOPICS maps each task event to its containerd topic. */
export const TOPICS = {
  create: '/tasks/create',
  start: '/tasks/start',
  exit: '/tasks/exit',
  delete: '/tasks/delete',
  execAdded: '/tasks/exec-added',
  execStarted: '/tasks/exec-started',
  oom: '/tasks/oom',
  paused: '/tasks/paused',
  resumed: '/tasks/resumed',
} as const;

/** TaskEvent is a packed event ready for an Envelope. */
export interface TaskEvent {
  topic: string;
  event: Any;
}

/** packAny packs msg into an Any with the bare type URL containerd expects. */
export function packAny<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Any {
  return create(AnySchema, { typeUrl: schema.typeName, value: toBinary(schema, create(schema, init)) });
}

function ev<D extends DescMessage>(topic: string, schema: D) {
  return (init: MessageInitShape<D>): TaskEvent => ({ topic, event: packAny(schema, init) });
}

/** taskEvents builds each task event from its fields. */
export const taskEvents = {
  create: ev(TOPICS.create, TaskCreateSchema),
  start: ev(TOPICS.start, TaskStartSchema),
  exit: ev(TOPICS.exit, TaskExitSchema),
  delete: ev(TOPICS.delete, TaskDeleteSchema),
  execAdded: ev(TOPICS.execAdded, TaskExecAddedSchema),
  execStarted: ev(TOPICS.execStarted, TaskExecStartedSchema),
  oom: ev(TOPICS.oom, TaskOOMSchema),
  paused: ev(TOPICS.paused, TaskPausedSchema),
  resumed: ev(TOPICS.resumed, TaskResumedSchema),
};

/** EventSink accepts events in order; publish never blocks and never throws. */
export interface EventSink {
  publish(e: TaskEvent): void;
}
