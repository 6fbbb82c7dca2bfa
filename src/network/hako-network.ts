// hako's own CNI network "hako", used by `hako run` and written for `ctr run --cni` by
// setup: a bridge with host-local addresses, NAT to the outside, published ports, firewall
// rules and the container's loopback. Also the check that its subnet is free on this host.

import { execFile } from 'node:child_process';
import { Code, HakoError, errorf } from '../errors/index.js';
import { parseConflist, validateIfname, type CniConflist } from './cni-config.js';
import { formatIpv4Cidr, ipv4NetsOverlap, parseIpv4, parseIpv4Cidr, type Ipv4Net } from './ipv4.js';

/** HAKO_NETWORK_NAME names the network; host-local keeps its leases in /var/lib/cni/networks/hako. */
export const HAKO_NETWORK_NAME = 'hako';

/**
 * DEFAULT_SUBNET is the network's default IPv4 range: inside 10/8 but away from the ranges
 * other tools default to (docker 172.17/16, podman 10.88/16, k3s and flannel 10.42/16 and
 * 10.244/16, libvirt 192.168.122/24), so that it rarely meets a LAN or VPN.
 */
export const DEFAULT_SUBNET = '10.213.0.0/16';

/** DEFAULT_BRIDGE is the host bridge the containers' veths join. */
export const DEFAULT_BRIDGE = 'hako0';

/** DEFAULT_PLUGIN_DIRS: where ctr and most runtimes look first, then Debian's package. */
export const DEFAULT_PLUGIN_DIRS: readonly string[] = ['/opt/cni/bin', '/usr/lib/cni'];

/** HakoNetworkOptions configures the network ([network] in the configuration). */
export interface HakoNetworkOptions {
  subnet: string;
  bridge: string;
  /** name defaults to HAKO_NETWORK_NAME; tests give their own to keep their leases apart. */
  name?: string;
}

// host-local takes the first address after the network address as the gateway, so a /30
// already leaves a single container address; smaller networks cannot hold one.
const MAX_PREFIX = 30;

/** parseSubnet validates the network's subnet: an IPv4 network (host bits zero) of /8 to /30. */
export function parseSubnet(subnet: string): Ipv4Net {
  const net = parseIpv4Cidr(subnet, { strict: true });
  if (net.prefix < 8 || net.prefix > MAX_PREFIX) {
    throw errorf(Code.INVALID_ARGUMENT, `subnet ${subnet} must have a prefix length from /8 to /${MAX_PREFIX}`);
  }
  return net;
}

/**
 * hakoConflist returns the conflist of the hako network. The order matters: bridge first
 * (it makes the interface and, through host-local, the address); portmap and firewall
 * need its result as prevResult; loopback last, because it passes a prevResult through
 * unchanged (and sets "lo" up whatever CNI_IFNAME says), while placed first its own result
 * would be dropped by bridge, which does not read a prevResult.
 */
export function hakoConflist(opts: HakoNetworkOptions): CniConflist {
  const net = parseSubnet(opts.subnet);
  validateIfname(opts.bridge);
  return parseConflist({
    cniVersion: '1.0.0',
    name: opts.name ?? HAKO_NETWORK_NAME,
    plugins: [
      {
        type: 'bridge',
        bridge: opts.bridge,
        // isGateway gives the bridge the gateway address and turns on net.ipv4.ip_forward.
        isGateway: true,
        ipMasq: true,
        // hairpinMode lets a container reach itself through a published port.
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: formatIpv4Cidr(net) }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      // snat masquerades connections to a published port from localhost and hairpin ones,
      // so that 127.0.0.1:HOSTPORT works (portmap also sets route_localnet on the bridge).
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'firewall' },
      { type: 'loopback' },
    ],
  }, `${opts.name ?? HAKO_NETWORK_NAME} network`);
}

/** HostAddress is one IPv4 address of a host interface, as `ip -j addr show` reports it. */
export interface HostAddress {
  ifname: string;
  address: string;
  prefixLength: number;
}

/** parseIpAddrJson reads the IPv4 addresses out of `ip -j addr show` output. */
export function parseIpAddrJson(text: string): HostAddress[] {
  let links: unknown;
  try {
    links = JSON.parse(text);
  } catch (err) {
    throw errorf(Code.INTERNAL, `ip -j addr show printed no JSON: ${(err as Error).message}`, err);
  }
  if (!Array.isArray(links)) throw errorf(Code.INTERNAL, 'ip -j addr show printed no list of interfaces');
  const out: HostAddress[] = [];
  for (const link of links as Array<Record<string, unknown>>) {
    const ifname = typeof link?.ifname === 'string' ? link.ifname : '?';
    const infos = Array.isArray(link?.addr_info) ? (link.addr_info as Array<Record<string, unknown>>) : [];
    for (const a of infos) {
      if (a?.family !== 'inet' || typeof a.local !== 'string' || typeof a.prefixlen !== 'number') continue;
      out.push({ ifname, address: a.local, prefixLength: a.prefixlen });
    }
  }
  return out;
}

/**
 * findSubnetConflicts returns the host addresses whose network overlaps subnet, except those
 * on the network's own bridge (which holds the gateway address once a container ran).
 */
export function findSubnetConflicts(subnet: Ipv4Net, bridge: string, addresses: readonly HostAddress[]): HostAddress[] {
  return addresses.filter((a) => {
    if (a.ifname === bridge) return false;
    const addr = parseIpv4(a.address);
    if (addr === undefined || a.prefixLength < 0 || a.prefixLength > 32) return false;
    return ipv4NetsOverlap(subnet, parseIpv4Cidr(`${a.address}/${a.prefixLength}`));
  });
}

function ipAddrShow(opts: { signal?: AbortSignal; timeoutMs?: number }): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    execFile('ip', ['-j', 'addr', 'show'], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, signal: opts.signal },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve(stdout);
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        if (e.name === 'AbortError') reject(errorf(Code.CANCELLED, 'ip -j addr show: cancelled', err));
        else if (e.killed === true) reject(errorf(Code.DEADLINE_EXCEEDED, `ip -j addr show: no answer within ${timeoutMs} ms`, err));
        else if (e.code === 'ENOENT') reject(errorf(Code.FAILED_PRECONDITION, 'ip (iproute2) is not installed', err));
        else reject(errorf(Code.INTERNAL, `ip -j addr show: ${stderr.trim() || e.message}`, err));
      });
  });
}

/**
 * checkSubnetFree fails with FAILED_PRECONDITION when an interface other than bridge holds an
 * address overlapping subnet: containers would get addresses the host already routes
 * elsewhere, and traffic to that LAN or VPN would go to the bridge instead.
 */
export async function checkSubnetFree(subnet: string, bridge: string, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
  const net = parseSubnet(subnet);
  let addresses: HostAddress[];
  try {
    addresses = parseIpAddrJson(await ipAddrShow(opts));
  } catch (err) {
    throw HakoError.wrap(err, `checking that subnet ${subnet} is free`);
  }
  const conflicts = findSubnetConflicts(net, bridge, addresses);
  if (conflicts.length > 0) {
    const held = conflicts.map((c) => `${c.address}/${c.prefixLength} on ${c.ifname}`).join(', ');
    throw errorf(Code.FAILED_PRECONDITION, `the hako network's subnet ${subnet} overlaps an address of this host (${held}): set another [network] subnet in the configuration`);
  }
}
