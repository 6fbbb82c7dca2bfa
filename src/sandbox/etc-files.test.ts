import assert from 'node:assert/strict';
import { test } from 'node:test';
import { etcMounts, hostnameOf, hostsFile, parseAddHost, resolvConf } from './etc-files.js';
import { guestRoutes } from './network.js';

test('resolvConf drops loopback resolvers of the host and honours --dns, --dns-search', () => {
  const host = 'nameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nsearch corp.example\noptions edns0\n';
  assert.equal(resolvConf(host, {}), 'nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n');
  assert.equal(resolvConf(host, { dns: ['1.1.1.1'], dnsSearch: ['a.test'] }), 'nameserver 1.1.1.1\nsearch a.test\noptions edns0\n');
  assert.throws(() => resolvConf('', { dns: ['nope'] }), /DNS server "nope" is not an IP address/);
});

test('hostsFile names the pod address, and extra hosts follow', () => {
  const h = hostsFile('web', ['10.213.0.9'], [{ name: 'db', ip: '10.0.0.5' }]);
  assert.match(h, /^127\.0\.0\.1\tlocalhost\n/);
  assert.match(h, /\n10\.213\.0\.9\tweb\n/);
  assert.match(h, /\n10\.0\.0\.5\tdb\n$/);
  assert.match(hostsFile('web', []), /127\.0\.1\.1\tweb/);
});

test('parseAddHost takes NAME:IP with IPv6 too, and names bad input', () => {
  assert.deepEqual(parseAddHost('db:10.0.0.5'), { name: 'db', ip: '10.0.0.5' });
  assert.deepEqual(parseAddHost('v6:[fd00::1]'), { name: 'v6', ip: 'fd00::1' });
  assert.throws(() => parseAddHost('db'), /--add-host "db": want NAME:IP/);
  assert.throws(() => parseAddHost('db:300.1.1.1'), /want NAME:IP/);
});

test('etcMounts adds only what the spec does not mount', () => {
  const paths = { hostname: '/s/etc/hostname', hosts: '/s/etc/hosts', 'resolv.conf': '/s/etc/resolv.conf' };
  const spec = { ociVersion: '1.0.2', process: { args: ['sh'], cwd: '/' }, root: { path: 'rootfs' }, mounts: [{ destination: '/etc/resolv.conf', type: 'bind', source: '/x' }] };
  assert.deepEqual(etcMounts(spec as never, paths).map((m) => m.destination), ['/etc/hostname', '/etc/hosts']);
});

test('hostnameOf makes a valid host name of any sandbox id', () => {
  assert.equal(hostnameOf('default_c1'), 'default-c1');
  assert.equal(hostnameOf('__'), 'hako');
  assert.equal(hostnameOf('a'.repeat(80)).length, 63);
});

test('guestRoutes keeps the routes of mirrored devices minus the kernel ones', () => {
  const r = guestRoutes([
    { dest: 'default', gateway: '10.0.0.1', device: 'eth0', source: '', scope: 0, family: 4, kernel: false },
    { dest: '10.0.0.0/24', gateway: '', device: 'eth0', source: '10.0.0.2', scope: 253, family: 4, kernel: true },
    { dest: 'default', gateway: '10.9.0.1', device: 'other', source: '', scope: 0, family: 4, kernel: false },
  ], new Set(['eth0']));
  assert.deepEqual(r, [{ dest: 'default', gateway: '10.0.0.1', device: 'eth0', source: '', scope: 0 }]);
});
