// Unit tests of published ports: every form `-p` accepts and each malformed one's message,
// conflicts between mappings, and the bind probe against ports this test holds itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { Code, HakoError } from '../errors/index.js';
import { ensureHostPortFree, findPortConflicts, formatPortMapping, hostPortInUse, parsePublish, portMappingsArg, type PortMapping } from './ports.js';

test('parsePublish reads every accepted form', () => {
  const cases: Array<[string, PortMapping]> = [
    ['8080:80', { hostIP: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ['8080:80/tcp', { hostIP: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ['53:5353/udp', { hostIP: '0.0.0.0', hostPort: 53, containerPort: 5353, protocol: 'udp' }],
    ['127.0.0.1:8080:80', { hostIP: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ['192.0.2.2:1:65535/udp', { hostIP: '192.0.2.2', hostPort: 1, containerPort: 65535, protocol: 'udp' }],
    ['[::1]:8080:80', { hostIP: '::1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ['[2001:DB8:0:0::1]:443:8443/tcp', { hostIP: '2001:db8::1', hostPort: 443, containerPort: 8443, protocol: 'tcp' }],
    ['[::]:9000:9000/udp', { hostIP: '::', hostPort: 9000, containerPort: 9000, protocol: 'udp' }],
  ];
  for (const [spec, want] of cases) {
    assert.deepEqual(parsePublish(spec), want, spec);
    assert.deepEqual(parsePublish(formatPortMapping(want)), want, `${spec} round-trips`);
  }
});

test('parsePublish names what is wrong with each bad form', () => {
  const bad = (spec: string, pattern: RegExp): void =>
    assert.throws(() => parsePublish(spec), (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT
      && e.message.startsWith(`port mapping ${JSON.stringify(spec)}: `) && pattern.test(e.message), spec);
  bad('80', /both a host port and a container port are needed/);
  bad('', /host port and a container port/);
  bad('0:80', /host port 0 is outside 1-65535/);
  bad('8080:0', /container port 0 is outside 1-65535/);
  bad('65536:80', /host port 65536 is outside 1-65535/);
  bad('8080:123456', /container port "123456" is not a port number/);
  bad('8080:80/sctp', /protocol "sctp" must be tcp or udp/);
  bad('8080:80/TCP', /protocol "TCP" must be tcp or udp/);
  bad('8080:80/', /protocol "" must be tcp or udp/);
  bad('http:80', /host port "http" is not a port number/);
  bad('8080:-1', /container port "-1" is not a port number/);
  bad('8080: 80', /container port " 80" is not a port number/);
  bad('8000-8010:80', /host port "8000-8010" is not a port number/);
  bad('1.2.3:8080:80', /host IP "1\.2\.3" is not an IP address/);
  bad('300.1.1.1:8080:80', /host IP "300\.1\.1\.1" is not an IP address/);
  bad(':8080:80', /host IP "" is not an IP address/);
  bad('localhost:8080:80', /host IP "localhost" is not an IP address/);
  bad('::1:8080:80', /an IPv6 host IP goes in brackets: \[::1\]:HOSTPORT:CONTAINERPORT/);
  bad('1:2:3:4', /too many ":"-separated parts/);
  bad('[::1]8080:80', /bracketed host IP must be followed by ":HOSTPORT:CONTAINERPORT"/);
  bad('[::1:8080:80', /bracketed host IP must be followed/);
  bad('[::1]:8080', /want \[HOSTIP:\]HOSTPORT:CONTAINERPORT/);
  bad('[127.0.0.1]:8080:80', /only an IPv6 host IP goes in brackets/);
  bad('[fe80::1%eth0]:8080:80', /host IP "fe80::1%eth0" is not an IP address/);
  bad('[nope]:8080:80', /host IP "nope" is not an IP address/);
});

const m = (hostIP: string, hostPort: number, protocol: 'tcp' | 'udp' = 'tcp'): PortMapping => ({ hostIP, hostPort, containerPort: 80, protocol });

test('findPortConflicts: same protocol and port with overlapping host IPs', () => {
  const taken = [m('0.0.0.0', 8080), m('127.0.0.1', 9090), m('192.0.2.2', 53, 'udp'), m('::1', 7070)];
  const conflicts = (wanted: PortMapping[]): string[] =>
    findPortConflicts(wanted, taken).map((c) => `${formatPortMapping(c.wanted)} x ${formatPortMapping(c.other)}`);
  assert.deepEqual(conflicts([m('0.0.0.0', 8080)]), ['8080:80/tcp x 8080:80/tcp']);
  assert.deepEqual(conflicts([m('127.0.0.1', 8080)]), ['127.0.0.1:8080:80/tcp x 8080:80/tcp'], '0.0.0.0 covers every IPv4 address');
  assert.deepEqual(conflicts([m('0.0.0.0', 9090)]), ['9090:80/tcp x 127.0.0.1:9090:80/tcp'], 'and the other way round');
  assert.deepEqual(conflicts([m('192.0.2.3', 9090)]), [], 'different specific addresses');
  assert.deepEqual(conflicts([m('0.0.0.0', 8080, 'udp')]), [], 'different protocol');
  assert.deepEqual(conflicts([m('0.0.0.0', 8081)]), [], 'different port');
  assert.deepEqual(conflicts([m('0.0.0.0', 53, 'udp')]), ['53:80/udp x 192.0.2.2:53:80/udp']);
  assert.deepEqual(conflicts([m('0.0.0.0', 7070)]), [], '0.0.0.0 does not cover IPv6');
  assert.deepEqual(conflicts([m('::', 7070)]), ['[::]:7070:80/tcp x [::1]:7070:80/tcp']);
  assert.deepEqual(conflicts([m('::', 9090)]), ['[::]:9090:80/tcp x 127.0.0.1:9090:80/tcp'], ':: takes IPv4 too on Linux');
  assert.deepEqual(conflicts([m('0:0:0:0:0:0:0:1', 7070)]), ['[0:0:0:0:0:0:0:1]:7070:80/tcp x [::1]:7070:80/tcp'], 'IPv6 compared in canonical form');
  // Within one run: the later of two overlapping wanted mappings is reported against the earlier.
  assert.deepEqual(findPortConflicts([m('0.0.0.0', 1000), m('127.0.0.1', 1000), m('0.0.0.0', 1000, 'udp')], []).map((c) => [c.wanted.hostIP, c.other.hostIP]), [['127.0.0.1', '0.0.0.0']]);
  assert.deepEqual(findPortConflicts([], taken), []);
});

test('hostPortInUse sees a TCP listener and a UDP socket, and a free port', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, r));
  const tcpPort = (server.address() as AddressInfo).port;
  const udp = createSocket('udp4');
  await new Promise<void>((r) => udp.bind({ address: '127.0.0.1', port: 0 }, r));
  const udpPort = udp.address().port;
  try {
    assert.equal(await hostPortInUse(m('127.0.0.1', tcpPort)), true);
    assert.equal(await hostPortInUse(m('0.0.0.0', tcpPort)), true, 'a wildcard bind meets the specific listener');
    assert.equal(await hostPortInUse(m('127.0.0.1', udpPort, 'udp')), true);
    await assert.rejects(ensureHostPortFree(m('127.0.0.1', tcpPort)), (e: unknown) => e instanceof HakoError && e.code === Code.ALREADY_EXISTS
      && e.message === `host port ${tcpPort}/tcp on 127.0.0.1 is already in use by another process (publishing 127.0.0.1:${tcpPort}:80/tcp)`);
    await assert.rejects(ensureHostPortFree(m('0.0.0.0', udpPort, 'udp')), new RegExp(`^ALREADY_EXISTS: host port ${udpPort}/udp is already in use`));
  } finally {
    server.close();
    udp.close();
  }
  // Closed again, the same ports probe free, and the probe leaves nothing bound.
  assert.equal(await hostPortInUse(m('127.0.0.1', tcpPort)), false);
  assert.equal(await hostPortInUse(m('127.0.0.1', tcpPort)), false);
  await ensureHostPortFree(m('127.0.0.1', udpPort, 'udp'));
});

test('hostPortInUse: an address of another host and an aborted signal are errors', async () => {
  await assert.rejects(hostPortInUse(m('192.0.2.254', 8080)), (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT
    && /192\.0\.2\.254:8080\/tcp: 192\.0\.2\.254 is not an address of this host/.test(e.message));
  await assert.rejects(hostPortInUse(m('127.0.0.1', 8080), { signal: AbortSignal.abort() }), (e: unknown) => e instanceof HakoError && e.code === Code.CANCELLED);
});

test('portMappingsArg builds portmap\'s capability argument, IPv4 only', () => {
  assert.deepEqual(portMappingsArg([parsePublish('8080:80'), parsePublish('127.0.0.1:53:53/udp')]), [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '0.0.0.0' },
    { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
  ]);
  assert.throws(() => portMappingsArg([parsePublish('[::1]:8080:80')]), /\[::1\]:8080:80\/tcp: the hako network is IPv4 only/);
});
