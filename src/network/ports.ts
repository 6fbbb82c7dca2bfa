// Published ports (`-p [HOSTIP:]HOSTPORT:CTRPORT[/tcp|/udp]`): parsing, conflicts between
// mappings, and probing whether a host port is free, before portmap's DNAT rules claim it.

import { createSocket } from 'node:dgram';
import { createServer, isIP, isIPv4, SocketAddress } from 'node:net';
import { Code, HakoError, errorf } from '../errors/index.js';

/** PortProtocol is a transport a port can be published for. */
export type PortProtocol = 'tcp' | 'udp';

/** PortMapping publishes containerPort of the container on hostIP:hostPort of the host. */
export interface PortMapping {
  /** hostIP is 0.0.0.0 (every IPv4 address of the host) unless the mapping named one. */
  hostIP: string;
  hostPort: number;
  containerPort: number;
  protocol: PortProtocol;
}

const USAGE = '[HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]';

function parsePort(text: string, what: string, spec: string): number {
  if (!/^\d{1,5}$/.test(text)) throw errorf(Code.INVALID_ARGUMENT, `port mapping ${JSON.stringify(spec)}: ${what} ${JSON.stringify(text)} is not a port number (want ${USAGE})`);
  const n = Number(text);
  if (n < 1 || n > 65535) throw errorf(Code.INVALID_ARGUMENT, `port mapping ${JSON.stringify(spec)}: ${what} ${n} is outside 1-65535`);
  return n;
}

/** normalizeIp returns an address in its canonical text form (IPv6 compressed, lower case). */
function normalizeIp(ip: string): string {
  return isIPv4(ip) ? ip : new SocketAddress({ address: ip, family: 'ipv6' }).address;
}

function parseHostIp(text: string, bracketed: boolean, spec: string): string {
  const family = isIP(text);
  const bad = (why: string): HakoError => errorf(Code.INVALID_ARGUMENT, `port mapping ${JSON.stringify(spec)}: ${why}`);
  if (family === 0 || text.includes('%')) throw bad(`host IP ${JSON.stringify(text)} is not an IP address`);
  if (family === 6 && !bracketed) throw bad(`an IPv6 host IP goes in brackets: [${text}]:HOSTPORT:CONTAINERPORT`);
  if (family === 4 && bracketed) throw bad(`only an IPv6 host IP goes in brackets, not ${text}`);
  return normalizeIp(text);
}

/**
 * parsePublish reads one `-p` value: "8080:80", "127.0.0.1:8080:80/udp" or
 * "[::1]:8080:80/tcp". The protocol defaults to tcp and the host IP to 0.0.0.0. Every
 * malformed part gets an INVALID_ARGUMENT error that quotes the value and names the part.
 */
export function parsePublish(spec: string): PortMapping {
  const bad = (why: string): HakoError => errorf(Code.INVALID_ARGUMENT, `port mapping ${JSON.stringify(spec)}: ${why}`);
  let rest = spec;
  let protocol: PortProtocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const proto = rest.slice(slash + 1);
    if (proto !== 'tcp' && proto !== 'udp') throw bad(`protocol ${JSON.stringify(proto)} must be tcp or udp`);
    protocol = proto;
    rest = rest.slice(0, slash);
  }
  let hostIP = '0.0.0.0';
  let parts: string[];
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') throw bad('a bracketed host IP must be followed by ":HOSTPORT:CONTAINERPORT"');
    hostIP = parseHostIp(rest.slice(1, close), true, spec);
    parts = rest.slice(close + 2).split(':');
    if (parts.length !== 2) throw bad(`want ${USAGE}`);
  } else {
    parts = rest.split(':');
    if (parts.length > 3) {
      // Most likely an IPv6 address without brackets: parseHostIp says so.
      if (isIP(parts.slice(0, -2).join(':')) === 6) parseHostIp(parts.slice(0, -2).join(':'), false, spec);
      throw bad(`too many ":"-separated parts (want ${USAGE})`);
    }
    if (parts.length < 2) throw bad(`both a host port and a container port are needed (want ${USAGE})`);
    if (parts.length === 3) hostIP = parseHostIp(parts[0] ?? '', false, spec);
  }
  const [hostPort = '', containerPort = ''] = parts.slice(-2);
  return { hostIP, hostPort: parsePort(hostPort, 'host port', spec), containerPort: parsePort(containerPort, 'container port', spec), protocol };
}

/** formatPortMapping prints a mapping the way parsePublish reads it. */
export function formatPortMapping(m: PortMapping): string {
  const ip = m.hostIP === '0.0.0.0' ? '' : isIPv4(m.hostIP) ? `${m.hostIP}:` : `[${m.hostIP}]:`;
  return `${ip}${m.hostPort}:${m.containerPort}/${m.protocol}`;
}

// Two host IPs overlap when a socket on one would take connections meant for the other:
// the same address, 0.0.0.0 against any IPv4 address, or "::", which on Linux also takes
// IPv4 (IPV6_V6ONLY is off by default) and so overlaps everything.
function hostIpsOverlap(a: string, b: string): boolean {
  const x = normalizeIp(a);
  const y = normalizeIp(b);
  if (x === y || x === '::' || y === '::') return true;
  if (isIPv4(x) !== isIPv4(y)) return false;
  return x === '0.0.0.0' || y === '0.0.0.0';
}

/** PortConflict pairs a wanted mapping with one it collides with. */
export interface PortConflict {
  wanted: PortMapping;
  /** other is a taken mapping, or another wanted one (listed earlier). */
  other: PortMapping;
}

/**
 * findPortConflicts returns each wanted mapping that collides (same protocol and host port,
 * overlapping host IP) with a taken mapping, or with an earlier mapping of wanted itself.
 * taken holds what other containers already publish: portmap's DNAT rules bind no socket,
 * so probing the port (hostPortInUse) cannot see them.
 */
export function findPortConflicts(wanted: readonly PortMapping[], taken: readonly PortMapping[]): PortConflict[] {
  const collide = (a: PortMapping, b: PortMapping): boolean => a.protocol === b.protocol && a.hostPort === b.hostPort && hostIpsOverlap(a.hostIP, b.hostIP);
  const out: PortConflict[] = [];
  wanted.forEach((w, i) => {
    for (const t of taken) if (collide(w, t)) out.push({ wanted: w, other: t });
    for (const earlier of wanted.slice(0, i)) if (collide(w, earlier)) out.push({ wanted: w, other: earlier });
  });
  return out;
}

/**
 * hostPortInUse probes whether a process of this host holds the mapping's host port, by
 * binding it (a TCP listen or a UDP bind) and closing again. It resolves true on
 * EADDRINUSE; other bind failures reject with an error naming the address, port and
 * protocol (EACCES: a port below 1024 without root; EADDRNOTAVAIL: not this host's IP).
 */
export function hostPortInUse(m: PortMapping, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<boolean> {
  const where = `${isIPv4(m.hostIP) ? m.hostIP : `[${m.hostIP}]`}:${m.hostPort}/${m.protocol}`;
  const timeoutMs = opts.timeoutMs ?? 5000;
  if (opts.signal?.aborted) return Promise.reject(errorf(Code.CANCELLED, `probing ${where}: cancelled`, opts.signal.reason));
  return new Promise<boolean>((resolve, reject) => {
    let close: () => void = () => {};
    let settled = false;
    const finish = (err: HakoError | undefined, inUse = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      close();
      if (err !== undefined) reject(err);
      else resolve(inUse);
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE') finish(undefined, true);
      else if (err.code === 'EACCES') finish(errorf(Code.PERMISSION_DENIED, `binding ${where} is not allowed (ports below 1024 need root)`, err));
      else if (err.code === 'EADDRNOTAVAIL') finish(errorf(Code.INVALID_ARGUMENT, `${where}: ${m.hostIP} is not an address of this host`, err));
      else finish(HakoError.wrap(err, `probing ${where}`));
    };
    const timer = setTimeout(() => finish(errorf(Code.DEADLINE_EXCEEDED, `probing ${where}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = (): void => finish(errorf(Code.CANCELLED, `probing ${where}: cancelled`, opts.signal?.reason));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (m.protocol === 'tcp') {
      const server = createServer();
      close = () => server.close();
      server.once('error', onError);
      server.listen({ host: m.hostIP, port: m.hostPort, exclusive: true }, () => finish(undefined, false));
    } else {
      const socket = createSocket({ type: isIPv4(m.hostIP) ? 'udp4' : 'udp6' });
      close = () => {
        try {
          socket.close();
        } catch {
          // not bound: nothing to close
        }
      };
      socket.once('error', onError);
      socket.bind({ address: m.hostIP, port: m.hostPort, exclusive: true }, () => finish(undefined, false));
    }
  });
}

/** ensureHostPortFree rejects with ALREADY_EXISTS, naming the port and protocol, when hostPortInUse finds it held. */
export async function ensureHostPortFree(m: PortMapping, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
  if (await hostPortInUse(m, opts)) {
    const ip = m.hostIP === '0.0.0.0' ? '' : ` on ${m.hostIP}`;
    throw errorf(Code.ALREADY_EXISTS, `host port ${m.hostPort}/${m.protocol}${ip} is already in use by another process (publishing ${formatPortMapping(m)})`);
  }
}

/** PortMapEntry is one entry of the portMappings capability argument that portmap reads. */
export interface PortMapEntry {
  hostPort: number;
  containerPort: number;
  protocol: PortProtocol;
  hostIP: string;
}

/**
 * portMappingsArg turns mappings into the portMappings capability argument. The hako network
 * is IPv4 only and portmap silently skips an entry whose host IP family differs from the
 * container's, so an IPv6 host IP is refused here rather than published nowhere.
 */
export function portMappingsArg(mappings: readonly PortMapping[]): PortMapEntry[] {
  return mappings.map((m) => {
    if (!isIPv4(m.hostIP)) {
      throw errorf(Code.INVALID_ARGUMENT, `port mapping ${formatPortMapping(m)}: the hako network is IPv4 only; publish on an IPv4 host IP`);
    }
    return { hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol, hostIP: m.hostIP };
  });
}
