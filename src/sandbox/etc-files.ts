// /etc/hostname, /etc/hosts and /etc/resolv.conf for containers whose spec does not bring its
// own (CRI and podman mount theirs; ctr and hako run do not): hako writes them once per sandbox
// and bind-mounts them into each container, as Docker does.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { Code, errorf } from '../errors/index.js';
import type { OciMount, OciSpec } from './spec.js';

/** EtcOptions are the names and servers a sandbox's files carry. */
export interface EtcOptions {
  hostname: string;
  /** dns servers; empty means the host's own (loopback resolvers left out, which a VM cannot reach). */
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** extraHosts are `--add-host NAME:IP` entries. */
  extraHosts?: Array<{ name: string; ip: string }>;
}

const FILES = ['hostname', 'hosts', 'resolv.conf'] as const;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** hostnameOf makes a host name of a sandbox id (ids may hold `_` and be long). Pure. */
export function hostnameOf(id: string): string {
  const h = id.replace(/[^A-Za-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63).replace(/-+$/, '');
  return h === '' ? 'hako' : h;
}

/** parseAddHost reads `NAME:IP` (the IP may be IPv6, so the split is at the first colon). */
export function parseAddHost(spec: string): { name: string; ip: string } {
  const i = spec.indexOf(':');
  const name = i > 0 ? spec.slice(0, i) : '';
  const ip = i > 0 ? spec.slice(i + 1).replace(/^\[(.*)\]$/, '$1') : '';
  if (!HOSTNAME.test(name) || isIP(ip) === 0) throw errorf(Code.INVALID_ARGUMENT, `--add-host ${JSON.stringify(spec)}: want NAME:IP, e.g. db:10.0.0.5`);
  return { name, ip };
}

/** hostsFile renders /etc/hosts. Pure. */
export function hostsFile(hostname: string, podIps: readonly string[], extra: ReadonlyArray<{ name: string; ip: string }> = []): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const ip of podIps) lines.push(`${ip}\t${hostname}`);
  if (podIps.length === 0) lines.push(`127.0.1.1\t${hostname}`);
  for (const h of extra) lines.push(`${h.ip}\t${h.name}`);
  return `${lines.join('\n')}\n`;
}

/** resolvConf renders /etc/resolv.conf from the asked servers, else the host's non-loopback ones. Pure. */
export function resolvConf(hostResolv: string, o: Pick<EtcOptions, 'dns' | 'dnsSearch' | 'dnsOptions'>): string {
  const host = hostResolv.split('\n').map((l) => l.trim().split(/\s+/));
  const servers = o.dns && o.dns.length > 0
    ? o.dns
    : host.filter((w) => w[0] === 'nameserver' && w[1] !== undefined && !/^(127\.|::1$)/.test(w[1])).map((w) => w[1]!);
  const search = o.dnsSearch && o.dnsSearch.length > 0 ? o.dnsSearch : host.find((w) => w[0] === 'search')?.slice(1) ?? [];
  const options = o.dnsOptions && o.dnsOptions.length > 0 ? o.dnsOptions : host.find((w) => w[0] === 'options')?.slice(1) ?? [];
  for (const s of servers) if (isIP(s) === 0) throw errorf(Code.INVALID_ARGUMENT, `DNS server ${JSON.stringify(s)} is not an IP address`);
  for (const d of search) if (!HOSTNAME.test(d)) throw errorf(Code.INVALID_ARGUMENT, `DNS search domain ${JSON.stringify(d)} is not a domain name`);
  const lines = servers.map((s) => `nameserver ${s}`);
  if (search.length > 0) lines.push(`search ${search.join(' ')}`);
  if (options.length > 0) lines.push(`options ${options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** writeEtcFiles writes `<dir>/etc/{hostname,hosts,resolv.conf}` and returns their paths. */
export async function writeEtcFiles(dir: string, o: EtcOptions, podIps: readonly string[]): Promise<Record<(typeof FILES)[number], string>> {
  if (!HOSTNAME.test(o.hostname) || o.hostname.length > 253) throw errorf(Code.INVALID_ARGUMENT, `hostname ${JSON.stringify(o.hostname)} is not a valid host name`);
  const etc = join(dir, 'etc');
  await mkdir(etc, { recursive: true, mode: 0o755 });
  const hostResolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const paths = { hostname: join(etc, 'hostname'), hosts: join(etc, 'hosts'), 'resolv.conf': join(etc, 'resolv.conf') };
  await writeFile(paths.hostname, `${o.hostname}\n`, { mode: 0o644 });
  await writeFile(paths.hosts, hostsFile(o.hostname, podIps, o.extraHosts), { mode: 0o644 });
  await writeFile(paths['resolv.conf'], resolvConf(hostResolv, o), { mode: 0o644 });
  return paths;
}

/**
 * etcMounts are the bind mounts to add to spec for the files it does not mount itself. Pure.
 * A read-only rootfs still gets them: they are mounts, not writes into the image.
 */
export function etcMounts(spec: OciSpec, paths: Record<(typeof FILES)[number], string>): OciMount[] {
  const taken = new Set((spec.mounts ?? []).map((m) => m.destination.replace(/\/+$/, '')));
  return FILES.filter((f) => !taken.has(`/etc/${f}`)).map((f) => ({
    destination: `/etc/${f}`,
    type: 'bind',
    source: paths[f],
    options: ['rbind', 'rprivate', 'rw'],
  }));
}
