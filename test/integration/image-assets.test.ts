// Checks the guest asset builder on the real tools: cached and idempotent builds,
// the kernel config, the root image's contents, concurrent builds, and ctr import.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Code, HakoError } from '../../src/errors/index.js';
import { assetStatus, ensureAssets, type Assets } from '../../src/image/index.js';
import { buildBusyboxImage } from '../../src/image/busybox-image.js';
import { checkKconfig, parseKconfig } from '../../src/image/kernel-config.js';
import { sharedLibraries } from '../../src/image/libs.js';
import { cacheLayout, kernelFragmentPath } from '../../src/image/paths.js';
import { buildRootImage } from '../../src/image/root-image.js';
import { run } from '../../src/image/run.js';
import { Logger, memorySink, nullLogger } from '../../src/log/index.js';

const AGENT = '// hako image-assets test agent\nprocess.exit(0);\n';
// Snapshot bundles for the builder VM: one that passes the self-check, one that cannot be built.
const SNAPSHOT_OK = "require('node:v8').startupSnapshot.setDeserializeMainFunction(() => " +
  "process.stdout.write(JSON.stringify({ ok: process.env.HAKO_AGENT_SNAPSHOT_CHECK === '1' }) + '\\n'));\n";
const SNAPSHOT_BROKEN = "throw new Error('hako test: this snapshot bundle cannot be built');\n";

let tmp: string;
let agentFile: string;
let assets: Assets;
let firstMs = 0;
const events: string[] = [];

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hako-image-assets-'));
  agentFile = join(tmp, 'agent.mjs');
  await writeFile(agentFile, AGENT);
  const t = Date.now();
  assets = await ensureAssets({
    log: new Logger(memorySink(), 'debug'),
    agentFile,
    onProgress: (e) => events.push(`${e.asset}:${e.phase}`),
  });
  firstMs = Date.now() - t;
}, { timeout: 30 * 60_000 });

after(async () => {
  if (assets !== undefined) await rm(dirname(assets.rootImage), { recursive: true, force: true });
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

const debugfs = async (image: string, cmd: string): Promise<string> =>
  (await run(['debugfs', '-R', cmd, image], { timeoutMs: 30_000 })).stdout;

test('ensureAssets returns absolute paths under /var/cache/hako and reports progress', async () => {
  assert.match(assets.kernel, /^\/var\/cache\/hako\/kernel\/[0-9a-f]{64}\/bzImage$/);
  assert.match(assets.rootImage, /^\/var\/cache\/hako\/root\/[0-9a-f]{64}\/root\.img$/);
  assert.equal(assets.busyboxLayout, '/var/cache/hako/images/busybox');
  assert.equal(assets.busyboxArchive, '/var/cache/hako/images/busybox.tar');
  for (const p of Object.values(assets)) await access(p);
  assert.ok(events.includes('root:done'), `progress events: ${events.join(' ')}`);
});

test('a second ensureAssets is a cache hit and returns the same paths', async () => {
  const t = Date.now();
  const again = await ensureAssets({ log: nullLogger, agentFile });
  const ms = Date.now() - t;
  assert.deepEqual(again, assets);
  assert.ok(ms < 5000, `cached ensureAssets took ${ms} ms (first took ${firstMs} ms)`);
});

test('assetStatus reports every asset ready without building', async () => {
  const status = await assetStatus({ agentFile });
  assert.deepEqual(status.map((s) => [s.asset, s.state]), [['kernel', 'ready'], ['root', 'ready'], ['busybox', 'ready']]);
  assert.equal(status[0]!.path, assets.kernel);
  assert.equal(status[1]!.path, assets.rootImage);
});

test('a missing agent bundle fails clearly, before any build', async () => {
  const missing = join(tmp, 'no-such-agent.mjs');
  await assert.rejects(ensureAssets({ log: nullLogger, agentFile: missing }), (err: unknown) => {
    assert.ok(err instanceof HakoError);
    assert.equal(err.code, Code.FAILED_PRECONDITION);
    assert.match(err.message, /agent bundle .*no-such-agent\.mjs is missing: run `npm run build`/);
    return true;
  });
  const status = await assetStatus({ agentFile: missing });
  assert.equal(status.find((s) => s.asset === 'root')!.state, 'blocked');
});

test('the installed kernel config keeps every option of hako.config, with no modules', async () => {
  const fragment = parseKconfig(await readFile(kernelFragmentPath(), 'utf8'));
  const final = parseKconfig(await readFile(join(dirname(assets.kernel), 'config'), 'utf8'));
  assert.deepEqual(checkKconfig(fragment, final), []);
  assert.equal(final.get('CONFIG_MODULES') ?? 'n', 'n');
});

test('the root image holds busybox links, node, crun, their libraries, init files and the agent', async () => {
  const img = assets.rootImage;
  assert.match(await debugfs(img, 'stat /sbin/init'), /Type: symlink/);
  assert.match(await debugfs(img, 'ls -l /bin'), /busybox/);
  assert.match(await debugfs(img, 'stat /usr/bin/node'), /Type: regular\s+Mode:\s+0755/);
  assert.match(await debugfs(img, 'stat /usr/bin/crun'), /Type: regular\s+Mode:\s+0755/);
  for (const lib of [...(await sharedLibraries('/usr/bin/node')), ...(await sharedLibraries('/usr/bin/crun'))]) {
    assert.match(await debugfs(img, `stat ${lib}`), /Type: regular/, `${lib} is in the image`);
  }
  assert.match(await debugfs(img, 'stat /etc/hako/rcS'), /Mode:\s+0755/);
  assert.match(await debugfs(img, 'stat /etc/hako/agent'), /Mode:\s+0755/);
  assert.match(await debugfs(img, 'cat /etc/inittab'), /::once:\/etc\/hako\/agent/);
  assert.equal(await debugfs(img, 'cat /usr/lib/hako/hako-agent.mjs'), AGENT);
  const fsck = await run(['e2fsck', '-fn', img], { timeoutMs: 60_000 });
  assert.match(fsck.stdout, /clean|files/);
});

test('two concurrent builds of the same root and busybox image agree and leave one copy', async () => {
  const layout = cacheLayout(join(tmp, 'cache'));
  const opts = { layout, log: nullLogger, agentFile };
  const [a, b] = await Promise.all([buildRootImage(opts), buildRootImage(opts)]);
  assert.equal(a, b);
  const [x, y] = await Promise.all([buildBusyboxImage(opts), buildBusyboxImage({ ...opts, force: true })]);
  assert.deepEqual(x, y);
  const leftovers = (await run(['find', layout.root, '-name', '*.tmp-*', '-o', '-name', '*.old-*'], { timeoutMs: 30_000 })).stdout;
  assert.equal(leftovers.trim(), '');
  await access(join(x.layout, 'index.json'));
});

test('the busybox layout has tag latest with the expected config, and ctr imports the archive', async () => {
  const index = JSON.parse(await readFile(join(assets.busyboxLayout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0]!.annotations?.['org.opencontainers.image.ref.name'], 'latest');
  const blob = (d: string) => readFile(join(assets.busyboxLayout, 'blobs', ...d.split(':')), 'utf8');
  const manifest = JSON.parse(await blob(index.manifests[0]!.digest)) as { config: { digest: string } };
  const config = JSON.parse(await blob(manifest.config.digest)) as { config: Record<string, unknown>; architecture: string };
  assert.deepEqual(config.config.Cmd, ['sh']);
  assert.deepEqual(config.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  assert.equal(config.config.WorkingDir, '/');
  assert.equal(config.architecture, 'amd64');

  // containerd comes with setup (scripts/setup.sh); without it this check must fail, not skip.
  await run(['which', 'containerd', 'ctr'], { timeoutMs: 5000 }).catch((err) => {
    throw new Error('containerd/ctr are not installed: run scripts/setup.sh', { cause: err });
  });
  // A private containerd (own root, state and socket, no CRI) so the check never
  // touches a containerd that someone else runs on this machine.
  const dir = join(tmp, 'containerd');
  const sock = join(dir, 'containerd.sock');
  await run(['mkdir', '-p', dir], { timeoutMs: 5000 });
  await writeFile(join(dir, 'config.toml'), [
    'version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]', `  address = "${sock}"`, '[ttrpc]', `  address = "${sock}.ttrpc"`,
    '[debug]', `  address = "${dir}/debug.sock"`, '[metrics]', '  address = ""', '',
  ].join('\n'));
  const containerd = spawn('containerd', ['-c', join(dir, 'config.toml')], { stdio: 'ignore' });
  const gone = new Promise((r) => containerd.on('close', r));
  try {
    for (let i = 0; ; i++) {
      try {
        await access(sock);
        break;
      } catch {
        if (i > 100) throw new Error('private containerd did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await run(['ctr', '-a', sock, 'image', 'import', '--base-name', 'localhost/busybox', assets.busyboxArchive], { timeoutMs: 60_000 });
    const ls = await run(['ctr', '-a', sock, 'image', 'ls', '-q'], { timeoutMs: 30_000 });
    assert.match(ls.stdout, /^localhost\/busybox:latest$/m);
  } finally {
    containerd.kill('SIGTERM');
    const killer = setTimeout(() => containerd.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(killer);
  }
});

/** buildWithSnapshot builds a root image for the test agent with entry as its snapshot bundle. */
async function buildWithSnapshot(name: string, source: string): Promise<{ image: string; lines: string[] }> {
  const entry = join(tmp, name);
  await writeFile(entry, source);
  const sink = memorySink();
  const built = await ensureAssets({ log: new Logger(sink, 'info'), agentFile, snapshotEntry: entry });
  assert.notEqual(built.rootImage, assets.rootImage, 'a snapshot bundle is part of the root key');
  return { image: built.rootImage, lines: sink.lines };
}

test('a snapshot bundle that builds and passes its check in the builder VM goes into the image', { timeout: 10 * 60_000 }, async () => {
  const { image, lines } = await buildWithSnapshot('ok-snapshot.cjs', SNAPSHOT_OK);
  try {
    assert.match(await debugfs(image, 'stat /usr/lib/hako/hako-agent.snapshot'), /Type: regular\s+Mode:\s+0644/);
    assert.equal(await debugfs(image, 'cat /usr/lib/hako/hako-agent-snapshot.cjs'), SNAPSHOT_OK);
    assert.match(await debugfs(image, 'cat /etc/hako/agent.conf'), /^HAKO_AGENT_NODE_FLAGS='.*'$/m);
    assert.ok(lines.some((l) => l.includes('agent snapshot ready')), lines.join('\n'));
    const inputs = JSON.parse(await readFile(join(dirname(image), 'inputs.json'), 'utf8')) as { snapshot: { built: boolean } };
    assert.equal(inputs.snapshot.built, true);
  } finally {
    await rm(dirname(image), { recursive: true, force: true });
  }
});

test('a snapshot bundle that cannot be built leaves the plain bundle and says so in the build log', { timeout: 10 * 60_000 }, async () => {
  const { image, lines } = await buildWithSnapshot('broken-snapshot.cjs', SNAPSHOT_BROKEN);
  try {
    assert.doesNotMatch(await debugfs(image, 'stat /usr/lib/hako/hako-agent.snapshot'), /Type: regular/);
    assert.equal(await debugfs(image, 'cat /usr/lib/hako/hako-agent.mjs'), AGENT);
    const warning = lines.find((l) => l.includes('"level":"warn"') && l.includes('could not be built'));
    assert.ok(warning, lines.join('\n'));
    assert.match(warning, /plain agent bundle/);
    assert.match(warning, /this snapshot bundle cannot be built/);
    const inputs = JSON.parse(await readFile(join(dirname(image), 'inputs.json'), 'utf8')) as { snapshot: { built: boolean; reason: string } };
    assert.equal(inputs.snapshot.built, false);
  } finally {
    await rm(dirname(image), { recursive: true, force: true });
  }
});
