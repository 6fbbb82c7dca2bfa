// The VM factory against real QEMU, in a state directory of its own: concurrent starts share one
// template build, clones get their own entropy, clock and identity and never write the template,
// broken templates fall back and are rebuilt, destroy spares running clones, and the cold path.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile, rm, truncate, open } from 'node:fs/promises';
import { join } from 'node:path';
import { Logger, memorySink } from '../../src/log/index.js';
import { defaultConfig, type HakoConfig } from '../../src/config/index.js';
import { ensureAssets, type Assets } from '../../src/image/index.js';
import { TemplateStore, factoryDir, unmountOwnTmpfs } from '../../src/factory/index.js';
import { readPidFile } from '../../src/hypervisor/qemu/index.js';
import { Sandbox, cleanupSandbox, listSandboxIds } from '../../src/sandbox/index.js';
import { BOOT_MS } from './cli-harness.js';
import { factoryStateDir, runIn } from './factory-harness.js';

const stateDir = factoryStateDir('ft');
let assets: Assets;
let config: HakoConfig;
const sink = memorySink();
const log = new Logger(sink, 'info');
const store = (): TemplateStore => new TemplateStore(factoryDir(stateDir), log);
const builds = (): number => sink.lines.filter((l) => l.includes('"msg":"VM template saved"')).length;
const templates = (): string[] => readdirSync(store().templatesDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
let n = 0;
const create = (cfg = config): Promise<Sandbox> => Sandbox.create({ id: `ft${process.pid}-${n++}`, config: cfg, log, assets });

before(async () => {
  config = defaultConfig();
  config.runtime.stateDir = stateDir;
  assets = await ensureAssets({ log, cacheDir: config.runtime.cacheDir });
});

after(async () => {
  for (const id of await listSandboxIds(stateDir)) await cleanupSandbox(id, { stateDir, log }).catch(() => {});
  await store().destroy().catch(() => {});
  await unmountOwnTmpfs(factoryDir(stateDir)).catch(() => {});
  await rm(stateDir, { recursive: true, force: true });
});

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

test('four starts at once build one template between them; clones differ in entropy, clock and identity, and never write it', { timeout: BOOT_MS * 2 }, async () => {
  const sbs = await Promise.all([create(), create(), create(), create()]);
  let later: Sandbox[] = [];
  try {
    assert.deepEqual(sbs.map((s) => s.vmSource), ['template', 'template', 'template', 'template']);
    assert.equal(builds(), 1, 'one template build');
    assert.equal(templates().length, 1);
    const ram = join(store().templatesDir, templates()[0]!, 'ram');
    const ramBefore = await sha256(ram);
    for (const sb of sbs) await sb.stop();
    // A saved guest's clock stood still from the save: clones restored seconds later would lag
    // by that much if the host did not set their clocks.
    await new Promise((r) => setTimeout(r, 4000));
    later = [await create(), await create()];
    const facts = [];
    for (const sb of later) {
      const hostBefore = Date.now();
      const r = await runIn(sb, 'facts', ['sh', '-c', 'head -c 32 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo; cat /proc/sys/kernel/random/boot_id; hostname; adjtimex | grep time.tv; dmesg | grep -c "crng reseeded due to virtual machine fork" || true']);
      const hostAfter = Date.now();
      assert.equal(r.status, 0, r.stdout);
      const [random, bootId, hostname, sec, usec, vmfork] = r.stdout.trim().split('\n');
      const guestMs = Number(/(\d+)/.exec(sec!)![1]) * 1000 + Number(/(\d+)/.exec(usec!)![1]) / 1000;
      assert.ok(guestMs > hostBefore - 1000 && guestMs < hostAfter + 1000, `guest clock ${new Date(guestMs).toISOString()} is within a second of the host's (${new Date(hostBefore).toISOString()} .. ${new Date(hostAfter).toISOString()})`);
      assert.equal(hostname, sb.id.slice(0, 63));
      assert.equal(vmfork, '1', 'the guest kernel saw a new VM generation id and reseeded its RNG');
      facts.push({ random, bootId });
    }
    assert.match(facts[0]!.random!, /^[0-9a-f]{64}$/);
    assert.notEqual(facts[0]!.random, facts[1]!.random, 'two clones read different bytes from /dev/urandom');
    assert.notEqual(facts[0]!.bootId, facts[1]!.bootId, 'two clones have their own boot id');
    for (const sb of later) await sb.stop();
    assert.equal(await sha256(ram), ramBefore, 'no clone wrote to the template RAM file');
  } finally {
    await Promise.all([...sbs, ...later].map((s) => s.stop().catch(() => {})));
  }
});

test('hako factory destroy while clones run leaves them working; the next start rebuilds', { timeout: BOOT_MS * 2 }, async () => {
  const sb = await create();
  try {
    assert.equal(sb.vmSource, 'template');
    assert.equal(await store().destroy(), 1);
    assert.equal(await unmountOwnTmpfs(factoryDir(stateDir)), true, 'the factory tmpfs is detached');
    const r = await runIn(sb, 'after-destroy', ['sh', '-c', 'dd if=/dev/zero of=/dev/shm/x bs=1M count=16 2>/dev/null && echo alive']);
    assert.equal(r.stdout.trim(), 'alive');
  } finally {
    await sb.stop();
  }
  const before = builds();
  const again = await create();
  await again.stop();
  assert.equal(again.vmSource, 'template');
  assert.equal(builds(), before + 1);
});

test('a truncated template is discarded and rebuilt; a corrupt one boots cold, then is rebuilt', { timeout: BOOT_MS * 3 }, async () => {
  const key = templates()[0]!;
  await truncate(join(store().templatesDir, key, 'state'), 1000);
  const before = builds();
  const a = await create();
  await a.stop();
  assert.equal(a.vmSource, 'template');
  assert.equal(builds(), before + 1, 'rebuilt');
  assert.ok(sink.lines.some((l) => l.includes('discarding a broken VM template') && l.includes('state file is 1000 bytes')));

  // Same size, other bytes: the clone's check of the state's sha256 catches it.
  const fh = await open(join(store().templatesDir, key, 'state'), 'r+');
  await fh.write(Buffer.from('garbage!'), 0, 8, 100);
  await fh.close();
  const b = await create();
  await b.stop();
  assert.equal(b.vmSource, 'cold', 'a template that does not restore means a cold boot');
  assert.ok(sink.lines.some((l) => l.includes('the VM factory failed; booting cold') && l.includes('does not match its meta.json')));
  const c = await create();
  await c.stop();
  assert.equal(c.vmSource, 'template');
  assert.equal(builds(), before + 2);
});

test('QEMU killed while saving the template: a cold boot, a clear log line, then a rebuilt template', { timeout: BOOT_MS * 3 }, async () => {
  await store().destroy();
  const dir = store().templatesDir;
  let killed = 0;
  const watchers: FSWatcher[] = [];
  // When the build's state file appears the save has begun: kill the template's QEMU then.
  const onBuild = (name: string): void => {
    if (!name.startsWith('.build-')) return;
    const build = join(dir, name);
    const kill = async (): Promise<void> => {
      if (killed > 0 || !existsSync(join(build, 'state'))) return;
      const pid = await readPidFile(join(build, 'vm', 'qemu.pid'));
      if (pid === undefined) return;
      killed = pid;
      process.kill(pid, 'SIGKILL');
    };
    try {
      watchers.push(watch(build, (_e, f) => void (f === 'state' && kill())));
    } catch {
      // the build directory is gone already
    }
  };
  watchers.push(watch(dir, (_e, f) => f && onBuild(f.toString())));
  let sb: Sandbox | undefined;
  try {
    sb = await create();
  } finally {
    for (const w of watchers) w.close();
  }
  await sb.stop();
  assert.ok(killed > 0, 'the template QEMU was killed during its save');
  assert.equal(sb.vmSource, 'cold');
  assert.ok(sink.lines.some((l) => l.includes('the VM factory failed; booting cold') && l.includes('building the VM template')));
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.build-') || /^[0-9a-f]{64}$/.test(f)), [], 'nothing half-written is left or installed');
  const next = await create();
  await next.stop();
  assert.equal(next.vmSource, 'template', 'the next start rebuilt the template');
});

test('with [factory] template = false a sandbox boots cold', { timeout: BOOT_MS }, async () => {
  const cold = structuredClone(config);
  cold.factory.template = false;
  const sb = await create(cold);
  try {
    assert.equal(sb.vmSource, 'cold');
    assert.equal(sb.timings.get('template-ready'), undefined);
    const r = await runIn(sb, 'cold', ['sh', '-c', 'echo cold; exit 4']);
    assert.deepEqual([r.status, r.stdout], [4, 'cold\n']);
  } finally {
    await sb.stop();
  }
});

test('nothing of these sandboxes is left', async () => {
  assert.deepEqual(await listSandboxIds(stateDir), []);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${stateDir}/sandboxes`));
  assert.deepEqual(mounts, []);
});
