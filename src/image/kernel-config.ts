// Kernel config checks: parse hako's fragment and verify that `make olddefconfig`
// kept every option it asks for (a missing dependency silently drops an option).

/** ConfigValues maps CONFIG_ names to values ("y", "m", "n", a number or a quoted string). */
export type ConfigValues = Map<string, string>;

const SET = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const UNSET = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;

/** parseKconfig reads .config-style text; "# CONFIG_X is not set" becomes "n". */
export function parseKconfig(text: string): ConfigValues {
  const values: ConfigValues = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    let m = SET.exec(line);
    if (m) {
      values.set(m[1]!, m[2]!);
      continue;
    }
    m = UNSET.exec(line);
    if (m) values.set(m[1]!, 'n');
  }
  return values;
}

/** ConfigProblem is one option of the fragment that the final config does not honour. */
export interface ConfigProblem {
  option: string;
  wanted: string;
  got: string;
}

/**
 * checkKconfig compares the fragment with the final .config. An option the
 * fragment sets to "n" may also be absent (its dependencies are off). Modules
 * ("m") are refused outright: the guest has no module loading.
 */
export function checkKconfig(fragment: ConfigValues, final: ConfigValues): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [option, wanted] of fragment) {
    const got = final.get(option) ?? 'n';
    if (wanted === 'm' || got === 'm') {
      problems.push({ option, wanted, got });
      continue;
    }
    if (got !== wanted) problems.push({ option, wanted, got: final.has(option) ? got : 'absent' });
  }
  return problems;
}

/** describeProblems renders problems as one line per dropped option. */
export function describeProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `${p.option}: wanted ${p.wanted}, final .config has ${p.got}`).join('\n');
}
