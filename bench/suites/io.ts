// Sequential I/O through the container's root filesystem: dd a file with
// conv=fsync, drop caches, read it back (buffered, and with O_DIRECT where allowed).

import { writeFile } from 'node:fs/promises';
import { ctr, ctrRun, IMAGE, ID_PREFIX, removeContainer } from '../lib/ctr.js';
import { describeFailure, runCmd } from '../lib/proc.js';
import { runtime, type RuntimeName } from '../lib/runtimes.js';
import { summarize } from '../lib/stats.js';
import { notMeasured, type Io, type Measured } from '../lib/types.js';

/** IoOptions sets the file size, repetitions and whether host caches may be dropped. */
export interface IoOptions {
  sizeMiB: number;
  reps: number;
  dropHostCaches: boolean;
  progress: (line: string) => void;
}

const FILE = '/hb-io.dat';

/** parseElapsed reads the seconds `busybox time -f %e` printed (its last numeric line). */
export function parseElapsed(text: string): number | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => /^\d+(\.\d+)?$/.test(l));
  const last = lines[lines.length - 1];
  return last === undefined ? undefined : Number(last);
}

/** measureIo writes and reads a sizeMiB file in the rootfs of one idle container per runtime. */
export async function measureIo(name: RuntimeName, opts: IoOptions): Promise<Measured<Io>> {
  const rt = runtime(name);
  const id = `${ID_PREFIX}${name}-io-${process.pid}`;
  const runArgs = ['run', '-d', ...rt.ctrArgs, IMAGE, id, 'sleep', '3600'];
  const notes: string[] = [];
  let execN = 0;
  // Runs sh -c script in the container and returns the seconds `time -f %e` reported, floored to 10 ms.
  const timed = async (script: string): Promise<number | string> => {
    const args = ['task', 'exec', '--exec-id', `io${execN++}`, id, 'sh', '-c', script];
    const r = await ctr(args, 10 * 60_000);
    if (r.code !== 0) return describeFailure(['ctr', 'task', 'exec', '…', script], r);
    const s = parseElapsed(r.stderr) ?? parseElapsed(r.stdout);
    return s === undefined ? `no elapsed time in output of ${script}` : Math.max(s, 0.01);
  };
  try {
    const started = await ctrRun(runArgs, id, rt.timeoutMs);
    if (started.code !== 0) return notMeasured(describeFailure(['ctr', ...runArgs], started));
    const write: number[] = [];
    const read: number[] = [];
    const direct: number[] = [];
    let directProblem: string | undefined;
    for (let i = 0; i < opts.reps; i++) {
      const w = await timed(`rm -f ${FILE}; time -f %e dd if=/dev/zero of=${FILE} bs=1M count=${opts.sizeMiB} conv=fsync`);
      if (typeof w === 'string') return notMeasured(`write: ${w}`);
      write.push(opts.sizeMiB / w);
      await dropCaches(opts.dropHostCaches, notes);
      // In-container drop works only where /proc/sys is writable (it is not, unprivileged); harmless otherwise.
      const r = await timed(`echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; time -f %e dd if=${FILE} of=/dev/null bs=1M`);
      if (typeof r === 'string') return notMeasured(`read: ${r}`);
      read.push(opts.sizeMiB / r);
      if (directProblem === undefined) {
        await dropCaches(opts.dropHostCaches, notes);
        const d = await timed(`time -f %e dd if=${FILE} of=/dev/null bs=1M iflag=direct`);
        if (typeof d === 'string') directProblem = d;
        else direct.push(opts.sizeMiB / d);
      }
      opts.progress(`  ${name} io #${i}: write ${write[i]!.toFixed(0)} MiB/s, read ${read[i]!.toFixed(0)} MiB/s${direct[i] ? `, O_DIRECT read ${direct[i]!.toFixed(0)} MiB/s` : ''}`);
    }
    await timed(`rm -f ${FILE}; time -f %e true`);
    if (directProblem !== undefined) notes.push(`O_DIRECT read not measured: ${directProblem}`);
    return {
      ok: true,
      sizeMiB: opts.sizeMiB,
      writeMiBps: summarize(write),
      readMiBps: summarize(read),
      ...(direct.length > 0 ? { readDirectMiBps: summarize(direct) } : {}),
      notes: [...new Set(notes)],
    };
  } finally {
    await removeContainer(id);
  }
}

async function dropCaches(host: boolean, notes: string[]): Promise<void> {
  if (!host) {
    notes.push('host page cache not dropped (--no-drop-caches): reads may come from cache');
    return;
  }
  await runCmd(['sync'], { timeoutMs: 120_000 });
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
    notes.push('host page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before each read; a guest/sandbox page cache is not dropped');
  } catch (err) {
    notes.push(`could not drop the host page cache: ${(err as Error).message}`);
  }
}
