// Unit tests of the CNI exec protocol against fake plugins: shell scripts written into a
// temporary directory that record their CNI_* environment and stdin, then print a canned
// result or error (or hang, or flood). No root and no real plugin needed.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, HakoError } from '../errors/index.js';
import { Logger, memorySink } from '../log/index.js';
import { parseConflist, type CniConflist } from './cni-config.js';
import { cniFailureOf, findPlugin, MAX_PLUGIN_OUTPUT } from './cni-exec.js';
import { cniAdd, cniDel, pluginRequest, type CniAttachment } from './cni.js';
import type { CniResult } from './cni-result.js';

const root = await mkdtemp(join(tmpdir(), 'hako-cni-unit-'));
after(() => rm(root, { recursive: true, force: true }));

let seq = 0;

/** Fake is one test's plugin directories and the record its plugins leave. */
interface Fake {
  dirs: string[];
  log: string;
  order(): Promise<string[]>;
  stdin(plugin: string, command: string): Promise<Record<string, unknown>>;
  env(plugin: string, command: string): Promise<Record<string, string>>;
}

function resultOf(name: string): CniResult {
  return { cniVersion: '1.0.0', interfaces: [{ name: `if-${name}`, sandbox: '/run/netns/fake' }], ips: [{ address: '10.9.0.5/24', gateway: '10.9.0.1', interface: 0 }], dns: { domain: name } };
}

/**
 * fakePlugins writes one shell script per entry into dir 1 (or dir 2 for names ending in
 * "@2"); add/del are shell snippets run for that command, the default prints resultOf(name)
 * on ADD and nothing on DEL.
 */
async function fakePlugins(plugins: Record<string, { add?: string; del?: string }>): Promise<Fake> {
  const base = join(root, `t${++seq}`);
  const dirs = [join(base, 'bin1'), join(base, 'bin2')];
  const log = join(base, 'log');
  for (const d of [...dirs, log]) await mkdir(d, { recursive: true });
  for (const [key, b] of Object.entries(plugins)) {
    const [name = key, where] = key.split('@');
    const dir = where === '2' ? dirs[1] as string : dirs[0] as string;
    const add = b.add ?? `printf '%s' '${JSON.stringify(resultOf(name))}'`;
    const script = `#!/bin/sh
input=$(cat)
echo "$CNI_COMMAND ${name}" >> '${log}/order'
printf '%s' "$input" > '${log}/${name}.'"$CNI_COMMAND"'.json'
env | grep '^CNI_' | sort > '${log}/${name}.'"$CNI_COMMAND"'.env'
case "$CNI_COMMAND" in
ADD) ${add} ;;
DEL) ${b.del ?? ':'} ;;
esac
`;
    await writeFile(join(dir, name), script);
    await chmod(join(dir, name), 0o755);
  }
  return {
    dirs,
    log,
    order: async () => (await readFile(join(log, 'order'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== ''),
    stdin: async (p, c) => JSON.parse(await readFile(join(log, `${p}.${c}.json`), 'utf8')) as Record<string, unknown>,
    env: async (p, c) => Object.fromEntries((await readFile(join(log, `${p}.${c}.env`), 'utf8')).trim().split('\n').map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)];
    })),
  };
}

function list(...plugins: Array<Record<string, unknown>>): CniConflist {
  return parseConflist({ cniVersion: '1.0.0', name: 'fakenet', plugins }, 'test');
}

function attach(fake: Fake, conflist: CniConflist, extra: Partial<CniAttachment> = {}): CniAttachment {
  return { conflist, pluginDirs: fake.dirs, containerId: 'ctr-1', netns: '/run/netns/fake', ifname: 'eth0', ...extra };
}

// gone waits briefly for pid to be dead: no such process, or a zombie that init has not reaped yet.
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat === '' || /^\d+ \(.*\) Z /.test(stat)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

const failJson = (code: number, msg: string, details = ''): string =>
  `printf '%s' '${JSON.stringify({ cniVersion: '1.0.0', code, msg, details })}'; exit 1`;

test('ADD runs the chain in order, chaining prevResult and filtering capabilities', async () => {
  const fake = await fakePlugins({ main: {}, 'meta@2': {}, last: {} });
  const conflist = list(
    { type: 'main', bridge: 'x', ipam: { type: 'host-local' } },
    { type: 'meta', capabilities: { portMappings: true, bandwidth: false, ips: true }, snat: true },
    { type: 'last' },
  );
  const caps = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], bandwidth: { rate: 1 }, mac: 'aa' };
  const result = await cniAdd(attach(fake, conflist, { capabilityArgs: caps, args: { IgnoreUnknown: '1', K8S_POD_NAME: 'p' } }));
  assert.deepEqual(result, resultOf('last'), 'the last plugin\'s result is the chain\'s');
  assert.deepEqual(await fake.order(), ['ADD main', 'ADD meta', 'ADD last']);

  const main = await fake.stdin('main', 'ADD');
  assert.deepEqual(main, { cniVersion: '1.0.0', name: 'fakenet', type: 'main', bridge: 'x', ipam: { type: 'host-local' } }, 'first plugin: no prevResult, no runtimeConfig');
  const meta = await fake.stdin('meta', 'ADD');
  assert.deepEqual(meta.prevResult, resultOf('main'));
  assert.deepEqual(meta.runtimeConfig, { portMappings: caps.portMappings }, 'only declared (true) capabilities that the runtime offers');
  assert.ok(!('capabilities' in meta), 'capabilities are removed');
  assert.equal(meta.snat, true, 'plugin keys pass through');
  assert.deepEqual((await fake.stdin('last', 'ADD')).prevResult, resultOf('meta'));

  const env = await fake.env('meta', 'ADD');
  assert.deepEqual(env, {
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p',
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: 'ctr-1',
    CNI_IFNAME: 'eth0',
    CNI_NETNS: '/run/netns/fake',
    CNI_PATH: fake.dirs.join(':'),
  });
});

test('a stray CNI_* variable of hako\'s environment does not reach a plugin', async () => {
  const fake = await fakePlugins({ main: {} });
  process.env.CNI_STRAY = 'x';
  try {
    await cniAdd(attach(fake, list({ type: 'main' })));
  } finally {
    delete process.env.CNI_STRAY;
  }
  assert.ok(!('CNI_STRAY' in (await fake.env('main', 'ADD'))));
});

test('DEL runs in reverse, every plugin with the ADD result as prevResult', async () => {
  const fake = await fakePlugins({ a: {}, b: {}, c: {} });
  const cached = resultOf('c');
  await cniDel({ ...attach(fake, list({ type: 'a' }, { type: 'b', capabilities: { portMappings: true } }, { type: 'c' })), prevResult: cached, capabilityArgs: { portMappings: [] } });
  assert.deepEqual(await fake.order(), ['DEL c', 'DEL b', 'DEL a']);
  for (const p of ['a', 'b', 'c']) assert.deepEqual((await fake.stdin(p, 'DEL')).prevResult, cached, p);
  assert.deepEqual((await fake.stdin('b', 'DEL')).runtimeConfig, { portMappings: [] }, 'DEL gets the same capability arguments');
  assert.equal((await fake.env('a', 'DEL')).CNI_COMMAND, 'DEL');
  // Without a cached result DEL still runs, with no prevResult.
  await cniDel(attach(fake, list({ type: 'a' })));
  assert.ok(!('prevResult' in (await fake.stdin('a', 'DEL'))));
});

test('DEL for a 0.3.1 network passes no prevResult (it came with 0.4.0)', async () => {
  const fake = await fakePlugins({ a: {} });
  const old = parseConflist({ cniVersion: '0.3.1', name: 'old', plugins: [{ type: 'a' }] }, 'old');
  await cniDel({ ...attach(fake, old), prevResult: resultOf('a') });
  const seen = await fake.stdin('a', 'DEL');
  assert.equal(seen.cniVersion, '0.3.1');
  assert.ok(!('prevResult' in seen));
});

test('DEL tries every plugin and reports all failures: a failing one and a missing one', async () => {
  const fake = await fakePlugins({ a: {}, b: { del: failJson(11, 'busy', 'try later') }, d: {} });
  const err = await cniDel({ ...attach(fake, list({ type: 'a' }, { type: 'b' }, { type: 'gone' }, { type: 'd' })), prevResult: resultOf('d') })
    .then(() => assert.fail('resolved'), (e: unknown) => e as HakoError);
  assert.deepEqual(await fake.order(), ['DEL d', 'DEL b', 'DEL a'], 'the missing plugin leaves the rest done');
  assert.ok(err instanceof HakoError);
  assert.equal(err.code, Code.NOT_FOUND, 'the first failure (in DEL order) gives the code');
  assert.match(err.message, /^CNI DEL of network "fakenet" for container ctr-1: 2 of 4 plugins failed: /);
  assert.match(err.message, new RegExp(`CNI plugin "gone" not found in ${fake.dirs[0]}, ${fake.dirs[1]}`));
  assert.match(err.message, /CNI plugin "b" DEL failed: CNI error 11: busy \(try later\)/);
  const agg = (err.cause as HakoError).cause;
  assert.ok(agg instanceof AggregateError && agg.errors.length === 2);
});

test('DEL is repeatable and runs against a netns path that does not exist', async () => {
  const fake = await fakePlugins({ a: {} });
  const a = attach(fake, list({ type: 'a' }), { netns: join(root, 'no-such-netns') });
  await cniDel(a);
  await cniDel(a);
  assert.deepEqual(await fake.order(), ['DEL a', 'DEL a']);
  assert.equal((await fake.env('a', 'DEL')).CNI_NETNS, join(root, 'no-such-netns'));
});

test('a failed ADD runs DEL over the plugins that ran, in reverse, then names plugin, code and msg', async () => {
  const fake = await fakePlugins({ a: {}, b: {}, c: { add: failJson(7, 'bad config', 'field x') }, d: {} });
  const err = await cniAdd(attach(fake, list({ type: 'a' }, { type: 'b' }, { type: 'c' }, { type: 'd' })))
    .then(() => assert.fail('resolved'), (e: unknown) => e as HakoError);
  assert.ok(err instanceof HakoError);
  assert.equal(err.code, Code.INVALID_ARGUMENT, 'CNI error 7 is an invalid configuration');
  assert.equal(err.message, 'CNI ADD of network "fakenet" for container ctr-1: CNI plugin "c" ADD failed: CNI error 7: bad config (field x)');
  assert.deepEqual(cniFailureOf(err), { plugin: 'c', command: 'ADD', cniCode: 7, msg: 'bad config', details: 'field x' });
  // c failed halfway and may have left something: it gets a DEL too; d never ran.
  assert.deepEqual(await fake.order(), ['ADD a', 'ADD b', 'ADD c', 'DEL c', 'DEL b', 'DEL a']);
  // The cleanup passes the last result the chain produced.
  assert.deepEqual((await fake.stdin('a', 'DEL')).prevResult, resultOf('b'));
});

test('a missing plugin in ADD: not found in the directories, the ones before it cleaned up', async () => {
  const fake = await fakePlugins({ a: {}, b: {} });
  const err = await cniAdd(attach(fake, list({ type: 'a' }, { type: 'b' }, { type: 'nope' })))
    .then(() => assert.fail('resolved'), (e: unknown) => e as HakoError);
  assert.equal(err.code, Code.NOT_FOUND);
  assert.equal(err.message, `CNI ADD of network "fakenet" for container ctr-1: CNI plugin "nope" not found in ${fake.dirs.join(', ')}`);
  assert.deepEqual(await fake.order(), ['ADD a', 'ADD b', 'DEL b', 'DEL a'], 'no DEL for the plugin that never ran');
  await assert.rejects(findPlugin('a', []), /not found in no plugin directories/);
});

test('a plugin that is not executable is reported as such', async () => {
  const fake = await fakePlugins({ a: {} });
  await chmod(join(fake.dirs[0] as string, 'a'), 0o644);
  await assert.rejects(findPlugin('a', fake.dirs), (e: unknown) => e instanceof HakoError && e.code === Code.NOT_FOUND && /\(.*\/bin1\/a is not executable\)/.test(e.message));
});

test('when the cleanup DEL fails too, both are reported', async () => {
  const fake = await fakePlugins({ a: { del: failJson(5, 'disk on fire') }, b: { add: failJson(101, 'no addresses left') } });
  const err = await cniAdd(attach(fake, list({ type: 'a' }, { type: 'b' }))).then(() => assert.fail('resolved'), (e: unknown) => e as HakoError);
  assert.equal(err.code, Code.INTERNAL);
  assert.match(err.message, /CNI plugin "b" ADD failed: CNI error 101: no addresses left; the cleanup DEL failed too: .*CNI plugin "a" DEL failed: CNI error 5: disk on fire/);
  assert.deepEqual(await fake.order(), ['ADD a', 'ADD b', 'DEL b', 'DEL a']);
});

test('a plugin past its timeout is killed with its process group, then cleaned up', async () => {
  const fake = await fakePlugins({
    a: {},
    slow: { add: `sleep 30 & echo $! > '${join(root, `sleeper-${seq + 1}`)}'; echo $$ > '${join(root, `plugin-${seq + 1}`)}'; wait` },
  });
  const started = Date.now();
  const err = await cniAdd(attach(fake, list({ type: 'a' }, { type: 'slow' }), { timeoutMs: 300 }))
    .then(() => assert.fail('resolved'), (e: unknown) => e as HakoError);
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  assert.equal(err.code, Code.DEADLINE_EXCEEDED);
  assert.match(err.message, /CNI plugin "slow" ADD did not finish within 300 ms and was killed/);
  for (const f of [`sleeper-${seq}`, `plugin-${seq}`]) {
    const pid = Number(await readFile(join(root, f), 'utf8'));
    assert.ok(await gone(pid), `${f} (pid ${pid}) was killed`);
  }
  assert.deepEqual(await fake.order(), ['ADD a', 'ADD slow', 'DEL slow', 'DEL a'], 'the cleanup has its own deadline');
});

test('an aborted ADD is killed and still cleaned up; an aborted signal runs nothing', async () => {
  const fake = await fakePlugins({ a: {}, slow: { add: 'sleep 30' } });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  const err = await cniAdd(attach(fake, list({ type: 'a' }, { type: 'slow' }), { signal: ac.signal }))
    .then(() => assert.fail('resolved'), (e: unknown) => e as HakoError);
  assert.equal(err.code, Code.CANCELLED);
  assert.match(err.message, /CNI plugin "slow" ADD: cancelled/);
  assert.deepEqual(await fake.order(), ['ADD a', 'ADD slow', 'DEL slow', 'DEL a']);
  const other = await fakePlugins({ a: {} });
  await assert.rejects(cniAdd(attach(other, list({ type: 'a' }), { signal: AbortSignal.abort() })), (e: unknown) => e instanceof HakoError && e.code === Code.CANCELLED);
  assert.deepEqual(await other.order(), []);
});

test('output past 1 MiB kills the plugin', async () => {
  const fake = await fakePlugins({ flood: { add: `head -c ${MAX_PLUGIN_OUTPUT + 4096} /dev/zero | tr '\\0' x; sleep 30` } });
  const err = await cniAdd(attach(fake, list({ type: 'flood' }), { timeoutMs: 20_000 })).then(() => assert.fail('resolved'), (e: unknown) => e as HakoError);
  assert.equal(err.code, Code.RESOURCE_EXHAUSTED);
  assert.match(err.message, /CNI plugin "flood" ADD wrote more than 1048576 bytes on stdout and was killed/);
  const noisy = await fakePlugins({ noisy: { add: `head -c ${MAX_PLUGIN_OUTPUT + 1} /dev/zero >&2` } });
  await assert.rejects(cniAdd(attach(noisy, list({ type: 'noisy' }))), /more than 1048576 bytes on stderr/);
});

test('failures without an error object, bad JSON and bad results are clear errors', async () => {
  const fake = await fakePlugins({
    text: { add: `echo 'first line' >&2; echo 'netlink: permission denied' >&2; exit 2` },
    silent: { add: 'exit 3' },
    garbage: { add: `echo 'not json'` },
    empty: { add: ':' },
    shape: { add: `printf '%s' '{"cniVersion":"1.0.0","ips":[{"address":"nonsense"}]}'` },
    errstderr: { add: `printf '%s' '{"code":4,"msg":"CNI_NETNS missing"}' >&2; exit 1` },
  });
  const fails = (type: string): Promise<HakoError> => cniAdd(attach(fake, list({ type }))).then(() => assert.fail('resolved'), (e: unknown) => e as HakoError);
  assert.match((await fails('text')).message, /CNI plugin "text" ADD failed: first line; netlink: permission denied$/);
  assert.match((await fails('silent')).message, /CNI plugin "silent" ADD failed: exited with status 3$/);
  assert.match((await fails('garbage')).message, /CNI plugin "garbage" ADD printed no JSON result: "not json\\n"/);
  assert.match((await fails('empty')).message, /CNI plugin "empty" ADD printed no result/);
  const shape = await fails('shape');
  assert.equal(shape.code, Code.INTERNAL);
  assert.match(shape.message, /CNI plugin "shape" ADD: invalid CNI result: ips\[0\]\.address/);
  const e = await fails('errstderr');
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  assert.match(e.message, /CNI error 4: CNI_NETNS missing$/);
});

test('bad attachment parameters are refused before any plugin runs', async () => {
  const fake = await fakePlugins({ a: {} });
  const conflist = list({ type: 'a' });
  const refused = (extra: Partial<CniAttachment>, pattern: RegExp): Promise<void> =>
    assert.rejects(cniAdd(attach(fake, conflist, extra)), (e: unknown) => e instanceof HakoError && e.code === Code.INVALID_ARGUMENT && pattern.test(e.message));
  await refused({ containerId: '../x' }, /CNI container id "\.\.\/x"/);
  await refused({ ifname: 'a-very-long-ifname' }, /interface name/);
  await refused({ netns: 'netns/x' }, /network namespace "netns\/x" must be an absolute path/);
  await refused({ pluginDirs: [] }, /no CNI plugin directories/);
  await refused({ args: { 'A;B': 'x' } }, /CNI_ARGS entry/);
  await refused({ timeoutMs: 0 }, /timeout must be positive/);
  assert.deepEqual(await fake.order(), []);
});

test('pluginRequest overrides a plugin\'s own name and cniVersion with the network\'s', () => {
  const conflist = list({ type: 'a' });
  const r = pluginRequest(conflist, { type: 'a', name: 'other', cniVersion: '0.1.0', capabilities: { x: true } }, { y: 1 }, undefined);
  assert.deepEqual(r, { cniVersion: '1.0.0', name: 'fakenet', type: 'a' });
});

test('DEL failures are logged per plugin through the logger passed in', async () => {
  const sink = memorySink();
  const fake = await fakePlugins({ a: {}, b: { del: failJson(5, 'io') } });
  await assert.rejects(cniDel({ ...attach(fake, list({ type: 'a' }, { type: 'b' })), log: new Logger(sink, 'debug') }));
  const lines = sink.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines.map((l) => [l.msg, l.plugin, l.subsystem, l.container]), [
    ['cni plugin DEL failed, going on with the others', 'b', 'cni', 'ctr-1'],
    ['cni plugin deleted', 'a', 'cni', 'ctr-1'],
  ]);
});
