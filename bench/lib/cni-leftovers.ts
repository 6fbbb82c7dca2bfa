// What `ctr run --cni` leaves on the host after a benchmark container: ctr 1.6 removes a container
// from its network with an empty netns path, so the bridge plugin releases the address but never
// removes its masquerade rule; a ctr that was killed before it returned leaves the address leased too.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cniDel, parseConflist, DEFAULT_PLUGIN_DIRS, type CniConflist } from '../../src/network/index.js';
import { runCmd } from './proc.js';

/** CNI_CONF_DIR is where ctr (go-cni) loads its network from: the first configuration file by name. */
export const CNI_CONF_DIR = '/etc/cni/net.d';

/** CTR_CNI_PREFIX starts the CNI container id ctr gives a benchmark container ("<namespace>-<id>"). */
export const CTR_CNI_PREFIX = 'default-hb-';

/** ctrNetwork returns the conflist `ctr run --cni` uses (the first file in CNI_CONF_DIR), if any. */
export async function ctrNetwork(): Promise<CniConflist | undefined> {
  const files = (await readdir(CNI_CONF_DIR).catch(() => [] as string[])).filter((f) => /\.(conflist|conf|json)$/.test(f)).sort();
  if (files[0] === undefined) return undefined;
  try {
    return parseConflist(await readFile(join(CNI_CONF_DIR, files[0]), 'utf8'), join(CNI_CONF_DIR, files[0]));
  } catch {
    return undefined;
  }
}

/** MasqRule is one bridge-plugin masquerade rule in nat POSTROUTING and the chain it jumps to. */
export interface MasqRule {
  source: string;
  comment: string;
  chain: string;
  cniId: string;
}

/** parseMasqRules reads `iptables -t nat -S POSTROUTING` for the bridge plugin's rules of network net. */
export function parseMasqRules(text: string, net: string): MasqRule[] {
  const out: MasqRule[] = [];
  const re = /^-A POSTROUTING -s (\S+) -m comment --comment "(name: \\"([^"\\]+)\\" id: \\"([^"\\]+)\\")" -j (CNI-[0-9a-f]+)$/;
  for (const line of text.split('\n')) {
    const m = re.exec(line.trim());
    if (m && m[3] === net) out.push({ source: m[1]!, comment: m[2]!.replace(/\\"/g, '"'), cniId: m[4]!, chain: m[5]! });
  }
  return out;
}

/**
 * sweepCniLeftovers removes what ctr's CNI left for benchmark containers that no longer exist
 * (every id for which gone(id) is true): leased addresses (through a CNI DEL, whose namespace is
 * gone) and masquerade rules with their chains. Returns what it removed; never throws.
 */
export async function sweepCniLeftovers(gone: (ctrId: string) => boolean): Promise<string[]> {
  const conf = await ctrNetwork();
  if (conf === undefined) return [];
  const stale = (cniId: string): boolean => cniId.startsWith(CTR_CNI_PREFIX) && gone(cniId.slice('default-'.length));
  const out: string[] = [];
  const leases = join('/var/lib/cni/networks', conf.name);
  for (const f of await readdir(leases).catch(() => [] as string[])) {
    if (!/^[0-9.]+$/.test(f)) continue;
    const [cniId, ifname] = (await readFile(join(leases, f), 'utf8').catch(() => '')).split(/\r?\n/);
    if (cniId === undefined || !stale(cniId)) continue;
    try {
      // The namespace is gone: the plugins then release what they hold outside it.
      await cniDel({ conflist: conf, pluginDirs: DEFAULT_PLUGIN_DIRS, containerId: cniId, netns: `/run/netns/${cniId}-gone`, ifname: ifname || 'eth0', timeoutMs: 30_000 });
      out.push(`CNI lease ${f} (${cniId})`);
    } catch (err) {
      out.push(`CNI lease ${f} (${cniId}): DEL failed: ${(err as Error).message}`);
    }
  }
  const rules = await runCmd(['iptables', '-t', 'nat', '-S', 'POSTROUTING'], { timeoutMs: 30_000 }).catch(() => undefined);
  for (const r of parseMasqRules(rules?.stdout ?? '', conf.name).filter((x) => stale(x.cniId))) {
    const ipt = (...args: string[]): Promise<unknown> => runCmd(['iptables', '-t', 'nat', ...args], { timeoutMs: 30_000 }).catch(() => undefined);
    await ipt('-D', 'POSTROUTING', '-s', r.source, '-m', 'comment', '--comment', r.comment, '-j', r.chain);
    await ipt('-F', r.chain);
    await ipt('-X', r.chain);
    out.push(`masquerade rule ${r.source} → ${r.chain} (${r.cniId})`);
  }
  return out;
}
