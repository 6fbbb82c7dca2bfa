// TCP over ctr's CNI bridge between the host and one container: throughput both ways (one and two
// streams side by side), sequential echo round trips, and fresh connections; the host's clock times all.

import type { NetworkConfig } from '../config.js';
import { containerdWentAway, ID_PREFIX, waitForContainerd } from '../lib/ctr.js';
import { hakoRow, type HakoMode } from '../lib/hako-modes.js';
import { NetContainer, netRuntime, type Exec } from '../lib/net-container.js';
import { describeFailure } from '../lib/proc.js';
import type { RuntimeName } from '../lib/runtimes.js';
import { percentile, summarize, type Summary } from '../lib/stats.js';
import { BLOCK, netScripts, READY } from '../lib/net-scripts.js';
import { connectTimes, echoRoundTrips, mibPerSecond, receiveStream, sendStream } from '../lib/tcp-probe.js';
import { notMeasured, type Measured, type Network } from '../lib/types.js';
import { countSources, sandboxVmSource } from '../lib/vm-source.js';

/** NetworkOptions sizes one runtime's (or hako mode's) network measurements. */
export interface NetworkOptions extends NetworkConfig {
  progress: (line: string) => void;
  mode?: HakoMode;
  /** waitReady runs before the container starts and again before timing (pool mode: until the pool is full). */
  waitReady?: () => Promise<void>;
}

/** SEND_PORT and SINK_PORT are the first ports the container listens on for container → host and host → container streams; ECHO_PORT its echo server's. */
const SEND_PORT = 5101;
const SINK_PORT = 5001;
const ECHO_PORT = 7000;

/** streamTimeoutMs bounds one stream: generous, for a stream as slow as 0.5 MiB/s. */
function streamTimeoutMs(mib: number): number {
  return 30_000 + mib * 2_000;
}

/**
 * measureNetwork starts one container on the CNI network and measures TCP between it and the
 * host. When containerd itself went away meanwhile (other users restart it on this shared
 * machine, and the foreground `ctr run` then returns and removes the container), it waits for
 * containerd and measures once more.
 */
export async function measureNetwork(name: RuntimeName, opts: NetworkOptions): Promise<Measured<Network>> {
  const first = await measureOnce(name, opts);
  if (first.ok || !containerdWentAway(first.notMeasured)) return first;
  opts.progress(`  ${name} network: containerd went away meanwhile (${first.notMeasured.slice(0, 120)}); measuring again`);
  await waitForContainerd();
  const again = await measureOnce(name, opts);
  return again.ok ? { ...again, notes: [...again.notes, `measured a second time: containerd went away during the first attempt (${first.notMeasured.slice(0, 200)})`] } : again;
}

async function measureOnce(name: RuntimeName, opts: NetworkOptions): Promise<Measured<Network>> {
  const rt = netRuntime(name);
  const sh = netScripts(name);
  const row = name === 'hako' && opts.mode !== undefined ? hakoRow(opts.mode) : name;
  const id = `${ID_PREFIX}${row}-net-${process.pid}`;
  const mib = opts.streamMiB[name];
  const blocks = Math.round((mib * 1048576) / BLOCK);
  const tmo = streamTimeoutMs(mib * Math.max(...opts.streams));
  await opts.waitReady?.();
  let c: NetContainer;
  try {
    c = await NetContainer.start(rt, id, 60 * 60_000);
  } catch (err) {
    return notMeasured(`starting ${id} on the CNI network: ${(err as Error).message}`);
  }
  try {
    const source = name === 'hako' ? await sandboxVmSource(id) : undefined;
    opts.progress(`  ${row} network: ${c.address} (host ${c.gateway}; eth0 address after ${c.addressWaitMs} ms)`);
    await opts.waitReady?.();
    const toHost: Record<string, number[]> = {};
    const fromHost: Record<string, number[]> = {};
    for (let i = 0; i < opts.reps; i++) {
      for (const k of opts.streams) {
        const senders = Array.from({ length: k }, (_, j) => c.exec(sh.sender(SEND_PORT + j, blocks), tmo));
        try {
          const t = await Promise.all(senders.map((_, j) => receiveStream(c.address, SEND_PORT + j, tmo)));
          await checkExecs(senders);
          (toHost[k] ??= []).push(mibPerSecond(t));
        } finally {
          for (const e of senders) e.kill();
        }
        const readers = Array.from({ length: k }, (_, j) => c.exec(sh.reader(SINK_PORT + j), tmo));
        try {
          const t = await Promise.all(readers.map((_, j) => sendStream(c.address, SINK_PORT + j, blocks * BLOCK, tmo, sh.readyFirst ? READY : undefined)));
          await checkExecs(readers);
          (fromHost[k] ??= []).push(mibPerSecond(t));
        } finally {
          for (const e of readers) e.kill();
        }
        opts.progress(`  ${row} network #${i}, ${k} stream${k > 1 ? 's' : ''} of ${mib} MiB: container → host ${toHost[k]!.at(-1)!.toFixed(1)} MiB/s, host → container ${fromHost[k]!.at(-1)!.toFixed(1)} MiB/s`);
      }
    }
    const echo = c.exec(sh.echo(ECHO_PORT), 60 * 60_000);
    try {
      const fresh = await connectTimes(c.address, ECHO_PORT, { n: opts.connects, size: opts.echoBytes, timeoutMs: 120_000 });
      const trips = await echoRoundTrips(c.address, ECHO_PORT, { size: opts.echoBytes, warmup: opts.echoWarmup, messages: opts.echoMessages, timeoutMs: 300_000 });
      const rtt = summarize(trips.rttMs);
      opts.progress(`  ${row} network: echo round trip median ${rtt.median.toFixed(2)} ms, p90 ${percentile(trips.rttMs, 90).toFixed(2)} ms; connect ${summarize(fresh.connectMs).median.toFixed(2)} ms`);
      return {
        ok: true, address: c.address, addressWaitMs: c.addressWaitMs, streamMiB: mib,
        toHostMiBps: summaries(toHost), fromHostMiBps: summaries(fromHost),
        echoBytes: opts.echoBytes, rttMs: rtt, rttP90Ms: percentile(trips.rttMs, 90),
        connectMs: summarize(fresh.connectMs), firstEchoMs: summarize(fresh.firstEchoMs),
        ...(name === 'hako' ? { vmSources: countSources([source]) } : {}),
        scripts: sh.form,
        notes: name === 'runsc' ? ['runsc runs with --network=host (bench/runsc-net-host): its own network stack refuses every namespace on this kernel'] : [],
      };
    } finally {
      echo.kill();
    }
  } catch (err) {
    return notMeasured(`${row} network: ${(err as Error).message}`);
  } finally {
    await c.stop();
  }
}

function summaries(by: Record<string, number[]>): Record<string, Summary> {
  return Object.fromEntries(Object.entries(by).map(([k, v]) => [k, summarize(v)]));
}

/** checkExecs waits for the container's side of a test and throws when one of them failed. */
async function checkExecs(execs: readonly Exec[]): Promise<void> {
  for (const [e, r] of (await Promise.all(execs.map((x) => x.done))).map((r, i) => [execs[i]!, r] as const)) {
    if (r.code !== 0) throw new Error(describeFailure(['ctr', 'task', 'exec', '…', 'sh', '-c', e.script], r));
  }
}
