// Reading a network namespace: its links with their addresses, and its main-table routes, from
// iproute2's JSON output (`ip -j`). The parsers are pure; inspectNetns runs them in the namespace.

import { isIP } from 'node:net';
import { Code, errorf } from '../errors/index.js';
import { nsExec } from './netns.js';

/** NetAddress is one address on a link. */
export interface NetAddress {
  address: string;
  prefixLen: number;
  family: 4 | 6;
}

/** NetLink is a link of the namespace as `ip -d addr` shows it. */
export interface NetLink {
  index: number;
  name: string;
  /** mac is lower-case `aa:bb:..`, or '' for links without one. */
  mac: string;
  mtu: number;
  /** linkType is `ether`, `loopback`, `none` (tun, ipip), ... */
  linkType: string;
  /** kind is the driver (`veth`, `tun`, `bridge`, ...), '' when ip does not say. */
  kind: string;
  up: boolean;
  /** addresses holds the global-scope addresses (link-local ones are the guest kernel's own business). */
  addresses: NetAddress[];
}

/** NetRoute is a main-table route. */
export interface NetRoute {
  /** dest is `default` or a CIDR. */
  dest: string;
  gateway: string;
  device: string;
  source: string;
  /** scope is the kernel's number: 0 universe, 253 link, 254 host. */
  scope: number;
  family: 4 | 6;
  /** kernel is true for the routes the kernel adds for an address (the guest adds its own). */
  kernel: boolean;
}

/** NetnsView is what inspectNetns saw. */
export interface NetnsView {
  links: NetLink[];
  routes: NetRoute[];
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const SCOPES: Record<string, number> = { global: 0, universe: 0, site: 200, link: 253, host: 254, nowhere: 255 };

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function parseJsonArray(text: string, what: string): unknown[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw errorf(Code.INTERNAL, `ip ${what}: output is not JSON: ${text.slice(0, 200)}`);
  }
  if (!Array.isArray(v)) throw errorf(Code.INTERNAL, `ip ${what}: expected a JSON array`);
  return v;
}

/** parseLinks reads `ip -j -d addr show`. */
export function parseLinks(text: string): NetLink[] {
  const links: NetLink[] = [];
  for (const raw of parseJsonArray(text, 'addr')) {
    const l = rec(raw);
    if (typeof l.ifname !== 'string' || typeof l.ifindex !== 'number') continue;
    const mac = typeof l.address === 'string' && MAC.test(l.address.toLowerCase()) ? l.address.toLowerCase() : '';
    const flags = Array.isArray(l.flags) ? l.flags : [];
    const addresses: NetAddress[] = [];
    for (const a of Array.isArray(l.addr_info) ? l.addr_info : []) {
      const ai = rec(a);
      if (typeof ai.local !== 'string' || typeof ai.prefixlen !== 'number') continue;
      const family = isIP(ai.local);
      if (family !== 4 && family !== 6) continue;
      if (ai.scope !== undefined && ai.scope !== 'global') continue;
      addresses.push({ address: ai.local, prefixLen: ai.prefixlen, family });
    }
    links.push({
      index: l.ifindex,
      name: l.ifname,
      mac,
      mtu: typeof l.mtu === 'number' ? l.mtu : 1500,
      linkType: typeof l.link_type === 'string' ? l.link_type : '',
      kind: typeof rec(l.linkinfo).info_kind === 'string' ? (rec(l.linkinfo).info_kind as string) : '',
      up: flags.includes('UP'),
      addresses,
    });
  }
  return links;
}

/** parseRoutes reads `ip -j route show table main` (one family). */
export function parseRoutes(text: string, family: 4 | 6): NetRoute[] {
  const routes: NetRoute[] = [];
  for (const raw of parseJsonArray(text, 'route')) {
    const r = rec(raw);
    if (typeof r.dst !== 'string' || typeof r.dev !== 'string') continue;
    if (r.type !== undefined && r.type !== 'unicast') continue;
    let dest = r.dst;
    if (dest !== 'default' && !dest.includes('/')) dest = `${dest}/${family === 4 ? 32 : 128}`;
    if (family === 6 && (dest.startsWith('fe80:') || dest.startsWith('ff00:'))) continue;
    routes.push({
      dest,
      gateway: typeof r.gateway === 'string' ? r.gateway : '',
      device: r.dev,
      source: typeof r.prefsrc === 'string' ? r.prefsrc : '',
      scope: typeof r.scope === 'string' ? (SCOPES[r.scope] ?? 0) : 0,
      family,
      kernel: r.protocol === 'kernel',
    });
  }
  return routes;
}

/** INSPECT_SCRIPT prints three JSON arrays, one per line (`ip -batch` takes no per-line options). */
const INSPECT_SCRIPT = 'ip -j -d addr show && echo && ip -j -4 route show table main && echo && ip -j -6 route show table main';

/** inspectNetns reads the links and routes of the namespace at nsPath (one nsenter). */
export async function inspectNetns(nsPath: string, opts: { signal?: AbortSignal } = {}): Promise<NetnsView> {
  const out = await nsExec(nsPath, ['sh', '-c', INSPECT_SCRIPT], { signal: opts.signal });
  const parts = out.split('\n').filter((l) => l.trim() !== '');
  if (parts.length !== 3) throw errorf(Code.INTERNAL, `inspecting ${nsPath}: expected 3 JSON answers from ip, got ${parts.length}`);
  return { links: parseLinks(parts[0]!), routes: [...parseRoutes(parts[1]!, 4), ...parseRoutes(parts[2]!, 6)] };
}
