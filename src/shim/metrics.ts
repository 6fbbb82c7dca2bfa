// Turning the agent's cgroup v2 figures of a container into containerd's
// io.containerd.cgroups.v2.Metrics, packed for Task/Stats.

import type { Any } from '@bufbuild/protobuf/wkt';
import { MetricsSchema } from '../protocols/generated/containerd/cgroups-metrics_pb.js';
import { packAny } from './events.js';

/** METRICS_TYPE_URL is the bare type URL ctr and CRI decode Stats with. */
export const METRICS_TYPE_URL = 'io.containerd.cgroups.v2.Metrics';

type Num = number | bigint;

/** ContainerStats are the agent's figures (hako.agent.v1.StatsContainerResponse); all optional. */
export interface ContainerStats {
  cpuUsageUsec?: Num; cpuUserUsec?: Num; cpuSystemUsec?: Num;
  cpuNrPeriods?: Num; cpuNrThrottled?: Num; cpuThrottledUsec?: Num;
  memoryUsage?: Num; memoryUsageLimit?: Num; memorySwapUsage?: Num; memorySwapLimit?: Num;
  memoryAnon?: Num; memoryFile?: Num; memoryOomEvents?: Num; memoryOomKill?: Num;
  pidsCurrent?: Num; pidsLimit?: Num;
  ioRbytes?: Num; ioWbytes?: Num; ioRios?: Num; ioWios?: Num;
}

/** u64 converts a figure from an untrusted source into a uint64, clamping junk to 0. */
function u64(v: unknown): bigint {
  if (typeof v === 'bigint') return v >= 0n && v < 1n << 64n ? v : 0n;
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return BigInt(Math.floor(v));
  return 0n;
}

/** metricsAny builds the Stats payload from a container's figures. */
export function metricsAny(s: ContainerStats): Any {
  const io = [s.ioRbytes, s.ioWbytes, s.ioRios, s.ioWios].some((v) => u64(v) > 0n)
    ? [{ major: 0n, minor: 0n, rbytes: u64(s.ioRbytes), wbytes: u64(s.ioWbytes), rios: u64(s.ioRios), wios: u64(s.ioWios) }]
    : [];
  return packAny(MetricsSchema, {
    pids: { current: u64(s.pidsCurrent), limit: u64(s.pidsLimit) },
    cpu: {
      usageUsec: u64(s.cpuUsageUsec), userUsec: u64(s.cpuUserUsec), systemUsec: u64(s.cpuSystemUsec),
      nrPeriods: u64(s.cpuNrPeriods), nrThrottled: u64(s.cpuNrThrottled), throttledUsec: u64(s.cpuThrottledUsec),
    },
    memory: {
      anon: u64(s.memoryAnon), file: u64(s.memoryFile), usage: u64(s.memoryUsage),
      usageLimit: u64(s.memoryUsageLimit), swapUsage: u64(s.memorySwapUsage), swapLimit: u64(s.memorySwapLimit),
    },
    memoryEvents: { oom: u64(s.memoryOomEvents), oomKill: u64(s.memoryOomKill) },
    io: { usage: io },
  });
}
