// Publishes task events to containerd over Events/Forward on TTRPC_ADDRESS: one ordered,
// bounded queue, one call at a time, reconnecting with backoff while containerd is away.

import { timestampNow } from '@bufbuild/protobuf/wkt';
import { Code, HakoError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { Client, createClient, dialUnix, NAMESPACE_KEY, type ServiceClient } from '../ttrpc/index.js';
import { Events } from '../protocols/generated/containerd/events-service_pb.js';
import type { EventSink, TaskEvent } from './events.js';

/** PublisherOptions configure a Publisher. */
export interface PublisherOptions {
  /** address is containerd's ttRPC socket (TTRPC_ADDRESS). */
  address: string;
  namespace: string;
  log: Logger;
  /** maxQueue bounds queued events; beyond it new events are dropped (and logged). */
  maxQueue?: number;
  /** callTimeoutMs bounds each dial and each Forward call. */
  callTimeoutMs?: number;
  /** maxAgeMs is how long an event is retried before it is given up. */
  maxAgeMs?: number;
}

interface Item {
  e: TaskEvent;
  queuedAt: number;
  timestamp: ReturnType<typeof timestampNow>;
}

/** Publisher is the shim's EventSink towards containerd. */
export class Publisher implements EventSink {
  private readonly queue: Item[] = [];
  private client: { conn: Client; events: ServiceClient<typeof Events> } | null = null;
  private running = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private readonly maxQueue: number;
  private readonly callTimeoutMs: number;
  private readonly maxAgeMs: number;

  constructor(private readonly opts: PublisherOptions) {
    this.maxQueue = opts.maxQueue ?? 4096;
    this.callTimeoutMs = opts.callTimeoutMs ?? 5_000;
    this.maxAgeMs = opts.maxAgeMs ?? 120_000;
  }

  /** publish queues an event; the timestamp is taken now, so order and time agree. */
  publish(e: TaskEvent): void {
    if (this.closed) return;
    if (this.queue.length >= this.maxQueue) {
      this.opts.log.error('events: queue full, dropping event', { topic: e.topic, queued: this.queue.length });
      return;
    }
    this.queue.push({ e, queuedAt: Date.now(), timestamp: timestampNow() });
    if (!this.running) void this.drain();
  }

  /** pending is the number of events not yet delivered. */
  get pending(): number {
    return this.queue.length;
  }

  /** flush resolves when the queue is empty or timeoutMs passed. */
  flush(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** close drops the connection and whatever is still queued. */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.client?.conn.close();
    this.client = null;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async drain(): Promise<void> {
    this.running = true;
    let backoff = 50;
    while (this.queue.length > 0 && !this.closed) {
      const item = this.queue[0]!;
      try {
        await this.forward(item);
        this.queue.shift();
        backoff = 50;
      } catch (err) {
        const e = HakoError.from(err);
        const retriable = e.code === Code.UNAVAILABLE || e.code === Code.DEADLINE_EXCEEDED || e.code === Code.CANCELLED || e.code === Code.UNKNOWN;
        const tooOld = Date.now() - item.queuedAt > this.maxAgeMs;
        if (!retriable || tooOld) {
          this.opts.log.error('events: giving up on event', { topic: item.e.topic, err: e, tooOld });
          this.queue.shift();
          continue;
        }
        this.opts.log.warn('events: forward failed, retrying', { topic: item.e.topic, err: e, backoffMs: backoff });
        this.client?.conn.close();
        this.client = null;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 2_000);
      }
    }
    this.running = false;
    if (this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private async forward(item: Item): Promise<void> {
    if (!this.client || this.client.conn.closed) {
      const sock = await dialUnix(this.opts.address, { timeoutMs: this.callTimeoutMs });
      const conn = new Client(sock, { log: this.opts.log });
      this.client = { conn, events: createClient(Events, conn) };
    }
    await this.client.events.forward(
      { envelope: { timestamp: item.timestamp, namespace: this.opts.namespace, topic: item.e.topic, event: item.e.event } },
      { timeoutMs: this.callTimeoutMs, metadata: { [NAMESPACE_KEY]: this.opts.namespace } },
    );
  }
}
