// Summary statistics for repeated measurements: median and min–max, never a mean
// alone, because a shared 2-core machine produces long-tailed samples.

/** Summary describes repeated samples of one quantity. */
export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  samples: number[];
}

/** summarize returns the median, min and max of samples (which must not be empty). */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, median, min: s[0]!, max: s[s.length - 1]!, samples: samples.map((x) => round(x, 2)) };
}

/** round rounds x to digits decimals. */
export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** ratio returns a/b rounded, or undefined when either side is missing. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || b === 0) return undefined;
  return round(a / b, 2);
}

/** percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of samples (which must not be empty). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('percentile: no samples');
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
