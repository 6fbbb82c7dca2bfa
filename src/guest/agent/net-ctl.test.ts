// Unit tests for the agent's end of hako-guestctl's network lines: dump parsing, the request lines
// NetCtl writes, multi-line answers, errno codes and the bounds on answers (a fake helper in sh).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, HakoError } from '../../errors/index.js';
import { nullLogger } from '../../log/index.js';
import { GuestCtl, MAX_DATA_LINES } from './guestctl.js';
import { NetCtl, parseAddr, parseLink, parseRoute } from './net-ctl.js';

const dir = mkdtempSync(join(tmpdir(), 'hako-net-ctl-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** fakeHelper writes a sh script that answers each request line by the case arms given. */
function fakeHelper(name: string, arms: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\nwhile read -r op rest; do\n  echo "$op $rest" >> ${join(dir, `${name}.log`)}\n  case "$op" in\n${arms}\n  *) echo "err 22 $op: Invalid argument";;\n  esac\ndone\n`);
  chmodSync(path, 0o755);
  return path;
}

test('dump lines parse into links, addresses and routes', () => {
  assert.deepEqual(parseLink('link 2 eth0 52:54:00:12:34:56 1500 4163'), { index: 2, name: 'eth0', mac: '52:54:00:12:34:56', mtu: 1500, flags: 4163 });
  assert.equal(parseLink('link 9 ip6tnl0 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00 1452 128').mac, '', 'not a MAC: none');
  assert.equal(parseLink('link 9 sit0 - 1480 128').mac, '');
  assert.deepEqual(parseAddr('addr 2 fe80::1 64 3'), { index: 2, address: 'fe80::1', prefixLen: 64, proto: 3 });
  assert.deepEqual(parseRoute('route 0.0.0.0 0 10.0.0.1 - 0 2 4 1'), { family: 4, dest: '0.0.0.0', prefixLen: 0, gateway: '10.0.0.1', source: '', scope: 0, index: 2, protocol: 4, type: 1 });
  assert.deepEqual(parseRoute('route 2001:db8:: 64 - 2001:db8::2 0 2 2 1').source, '2001:db8::2');
  for (const bad of [
    'link 2 eth0 52:54:00:12:34:56 1500', 'link x eth0 - 1500 0', 'link 2 eth0 52:54:zz:12:34:56 1500 0', 'link 2 0123456789abcdef - 1 0',
    'addr 2 10.0.0.1 33 0', 'addr 2 10.0.0.300 24 0', 'addr 2 10.0.0.1 24 256',
    'route 10.0.0.0 8 2001:db8::1 - 0 2 4 1', 'route 10.0.0.0 8 - - 256 2 4 1', 'route 10.0.0.0 8 - -', 'links 1 2 3',
  ]) {
    assert.throws(() => (bad.startsWith('link') ? parseLink(bad) : bad.startsWith('addr') ? parseAddr(bad) : parseRoute(bad)), (e: unknown) => e instanceof HakoError && e.code === Code.INTERNAL, bad);
  }
});

test('NetCtl writes the documented request lines and reads dumps to the final ok', async () => {
  const helper = fakeHelper('lines', `
  links) echo "link 3 eth1 52:54:00:00:00:03 1500 0"; echo "link 1 lo 00:00:00:00:00:00 65536 73"; echo ok;;
  routes) echo "route 0.0.0.0 0 10.0.0.1 - 0 3 4 1"; echo ok;;
  *) echo ok;;`);
  const ctl = new GuestCtl(helper, nullLogger);
  const net = new NetCtl(ctl);
  assert.deepEqual((await net.links()).map((l) => l.name), ['lo', 'eth1'], 'sorted by index');
  assert.equal((await net.routes())[0]!.gateway, '10.0.0.1');
  await net.rename(3, 'eth0');
  await net.setMtu(3, 1400);
  await net.addAddress(3, '10.0.0.2', 24);
  await net.addRoute({ dest: '0.0.0.0', prefixLen: 0, gateway: '10.0.0.1', source: '', scope: 0, index: 3 });
  await net.addRoute({ dest: '10.1.0.0', prefixLen: 16, gateway: '', source: '10.0.0.2', scope: 253, index: 3 });
  await net.setNeighbor(3, '10.0.0.1', 'aa:bb:cc:dd:ee:ff');
  await net.flushRoutes(3);
  await net.deleteAddress(3, '2001:db8::2', 64);
  await net.linkDown(3);
  await net.linkUp(3);
  ctl.close();
  const { readFileSync } = await import('node:fs');
  assert.deepEqual(readFileSync(join(dir, 'lines.log'), 'utf8').trim().split('\n'), [
    'links ', 'routes ', 'linkname 3 eth0', 'linkmtu 3 1400', 'addradd 3 10.0.0.2 24', 'routeadd 0.0.0.0 0 10.0.0.1 - 0 3',
    'routeadd 10.1.0.0 16 - 10.0.0.2 253 3', 'neighset 3 10.0.0.1 aa:bb:cc:dd:ee:ff', 'routeflush 3', 'addrdel 3 2001:db8::2 64', 'linkdown 3', 'linkup 3',
  ]);
});

test('errno becomes the status code; data before an err is dropped', async () => {
  const helper = fakeHelper('errs', `
  linkup) echo "err 19 linkup: No such device";;
  linkname) echo "err 17 linkname: File exists";;
  linkmtu) echo "err 22 linkmtu: Invalid argument";;
  routeadd) echo "err 101 routeadd: Network is unreachable: Nexthop has invalid gateway";;
  links) echo "link 1 lo - 65536 73"; echo "err 7 links: Argument list too long";;`);
  const ctl = new GuestCtl(helper, nullLogger);
  const net = new NetCtl(ctl);
  const code = async (p: Promise<unknown>): Promise<[Code, string]> => {
    try {
      await p;
    } catch (err) {
      return [(err as HakoError).code, (err as HakoError).message];
    }
    throw new Error('resolved');
  };
  assert.deepEqual(await code(net.linkUp(9)), [Code.NOT_FOUND, 'hako-guestctl linkup: linkup: No such device']);
  assert.equal((await code(net.rename(9, 'x')))[0], Code.ALREADY_EXISTS);
  assert.equal((await code(net.setMtu(9, 9000)))[0], Code.INVALID_ARGUMENT);
  assert.match((await code(net.addRoute({ dest: '0.0.0.0', prefixLen: 0, gateway: '10.9.9.9', source: '', scope: 0, index: 2 })))[1], /Nexthop has invalid gateway/);
  assert.equal((await code(net.links()))[0], Code.RESOURCE_EXHAUSTED);
  ctl.close();
});

test('answers out of bounds fail the request and replace the helper', async () => {
  const helper = fakeHelper('bounds', `
  links) i=0; while [ $i -le ${MAX_DATA_LINES} ]; do echo "link 1 lo - 1 0"; i=$((i+1)); done; echo ok;;
  addrs) head -c 5000 /dev/zero | tr '\\0' x; echo; echo ok;;
  ping) echo ok;;`);
  const ctl = new GuestCtl(helper, nullLogger);
  const net = new NetCtl(ctl);
  await assert.rejects(net.links(), (e: unknown) => e instanceof HakoError && e.code === Code.INTERNAL && /more than 4096 answer lines/.test(e.message));
  await ctl.call('ping');
  await assert.rejects(net.addresses(), (e: unknown) => e instanceof HakoError && e.code === Code.INTERNAL && /longer than 4096/.test(e.message));
  assert.deepEqual(await ctl.call('ping'), [], 'a new helper answers');
  ctl.close();
});
