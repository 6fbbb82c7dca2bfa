// The three ways hako can get a VM that the benchmark compares side by side (cold boot, clone
// of the VM template, warm pool), and the result-row keys and labels that name them.

/** HakoMode is how hako's sandbox VMs are provisioned during one part of a run. */
export type HakoMode = 'cold' | 'template' | 'pool';

/** HAKO_MODES is every mode, in the order of every table. */
export const HAKO_MODES: readonly HakoMode[] = ['cold', 'template', 'pool'];

/** HakoRow is the result key of hako through containerd in one mode. */
export type HakoRow = `hako-${HakoMode}`;

/** HakoRunRow is the result key of the standalone `hako run` in one mode. */
export type HakoRunRow = `hako-run-${HakoMode}`;

/** RowKey is a row of the containerd suites: a baseline runtime or hako in one mode. */
export type RowKey = 'runc' | 'runsc' | HakoRow;

/** hakoRow returns the containerd row key of mode. */
export function hakoRow(mode: HakoMode): HakoRow {
  return `hako-${mode}`;
}

/** hakoRunRow returns the `hako run` row key of mode. */
export function hakoRunRow(mode: HakoMode): HakoRunRow {
  return `hako-run-${mode}`;
}

/** ROW_KEYS is every containerd row in table order: runc, runsc, then hako per mode. */
export const ROW_KEYS: readonly RowKey[] = ['runc', 'runsc', ...HAKO_MODES.map(hakoRow)];

/** rowLabel is how a report names a row key: "hako template", "hako run pool", "runc". */
export function rowLabel(key: string): string {
  const run = /^hako-run-(\w+)$/.exec(key);
  if (run) return `hako run ${run[1]}`;
  const hako = /^hako-(\w+)$/.exec(key);
  return hako ? `hako ${hako[1]}` : key;
}

/** MODE_DESCRIPTIONS says in one line what each mode is. */
export const MODE_DESCRIPTIONS: Record<HakoMode, string> = {
  cold: 'factory off (`[factory] template = false`): every VM boots its kernel and agent',
  template: 'every VM is a copy-on-write clone of the saved, warmed-up VM template',
  pool: '`hako factory serve` keeps warm VMs (restored and used once) and hands one to each new sandbox',
};

/** parseHakoModes reads `--hako-modes=cold,template,pool` (any subset, kept in table order). */
export function parseHakoModes(value: string): HakoMode[] {
  const want = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const m of want) {
    if (!(HAKO_MODES as readonly string[]).includes(m)) throw new Error(`--hako-modes: unknown mode ${m} (known: ${HAKO_MODES.join(', ')})`);
  }
  if (want.length === 0) throw new Error(`--hako-modes: name at least one of ${HAKO_MODES.join(', ')}`);
  return HAKO_MODES.filter((m) => want.includes(m));
}
