// Builds the default container image `busybox`: an OCI image layout made with
// umoci from the host's busybox-static, plus an OCI archive tar for `ctr image import`.

import { chmod, copyFile, mkdir, readlink, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { keyOf, sha256File, shortHash } from './hash.js';
import { installDir, tempSibling } from './install.js';
import { withLock } from './lock.js';
import type { CacheLayout } from './paths.js';
import { Progress, formatElapsed, type ProgressFn } from './progress.js';
import { run } from './run.js';

/** BUSYBOX_IMAGE_BUILDER_VERSION changes the image key when this builder's output changes. */
export const BUSYBOX_IMAGE_BUILDER_VERSION = '1';

/** BUSYBOX_TAG is the layout's only tag. */
export const BUSYBOX_TAG = 'latest';

/** BUSYBOX_PATH_ENV is the image's PATH, the usual OCI default. */
export const BUSYBOX_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const HOST_BUSYBOX = '/bin/busybox';
const TIMEOUT_MS = 5 * 60_000;

/** busyboxPaths names the stable paths (symlinks into the keyed store directory). */
export function busyboxPaths(layout: CacheLayout): { layout: string; archive: string } {
  return { layout: join(layout.images, 'busybox'), archive: join(layout.images, 'busybox.tar') };
}

function storeDir(layout: CacheLayout, hash: string): string {
  return join(layout.images, `.busybox-${hash}`);
}

/** busyboxInputs computes the image key from busybox's content and the builder version. */
export async function busyboxInputs(): Promise<{ hash: string }> {
  let digest: string;
  try {
    digest = await sha256File(HOST_BUSYBOX);
  } catch {
    throw errorf(Code.FAILED_PRECONDITION, `${HOST_BUSYBOX} is missing: apt-get install busybox-static`);
  }
  return {
    hash: keyOf([
      { label: 'kind', value: 'hako-busybox-image' },
      { label: 'busybox', value: digest },
      { label: 'builder', value: BUSYBOX_IMAGE_BUILDER_VERSION },
    ]),
  };
}

/** busyboxCurrent reports whether the stable paths point at the image for hash. */
export async function busyboxCurrent(layout: CacheLayout, hash: string): Promise<boolean> {
  const paths = busyboxPaths(layout);
  const want = `.busybox-${hash}`;
  try {
    const [l, a] = await Promise.all([readlink(paths.layout), readlink(paths.archive)]);
    if (l !== `${want}/layout` || a !== `${want}/busybox.tar`) return false;
    await stat(join(storeDir(layout, hash), 'layout', 'index.json'));
    await stat(join(storeDir(layout, hash), 'busybox.tar'));
    return true;
  } catch {
    return false;
  }
}

/** BuildBusyboxOptions configures buildBusyboxImage. */
export interface BuildBusyboxOptions {
  layout: CacheLayout;
  log: Logger;
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

/**
 * buildBusyboxImage makes sure <cache>/images/busybox (OCI layout, tag latest) and
 * <cache>/images/busybox.tar (the same layout as a tar) exist for the current
 * busybox. Both are symlinks into .busybox-<hash>/, swapped atomically by rename.
 */
export async function buildBusyboxImage(opts: BuildBusyboxOptions): Promise<{ layout: string; archive: string }> {
  const { hash } = await busyboxInputs();
  const paths = busyboxPaths(opts.layout);
  if (!opts.force && (await busyboxCurrent(opts.layout, hash))) return paths;
  const progress = new Progress('busybox', opts.log, opts.onProgress);
  await mkdir(opts.layout.locks, { recursive: true });
  return withLock(join(opts.layout.locks, 'busybox.lock'), {
    signal: opts.signal,
    timeoutMs: 2 * TIMEOUT_MS,
    onWait: () => progress.phase('wait', 'waiting for another busybox image build to finish'),
  }, async () => {
    if (!opts.force && (await busyboxCurrent(opts.layout, hash))) return paths;
    progress.phase('umoci', `building OCI image busybox:${BUSYBOX_TAG} ${shortHash(hash)} with umoci`);
    const store = storeDir(opts.layout, hash);
    await installDir(store, async (tmp) => {
      const oci = join(tmp, 'layout');
      const image = `${oci}:${BUSYBOX_TAG}`;
      const bundle = join(tmp, 'bundle');
      const umoci = (...args: string[]) => run(['umoci', ...args], { timeoutMs: TIMEOUT_MS, signal: opts.signal });
      await umoci('init', '--layout', oci);
      await umoci('new', '--image', image);
      await umoci('unpack', '--image', image, bundle);
      await populate(join(bundle, 'rootfs'), opts.signal);
      await umoci('repack', '--image', image, bundle);
      await umoci(
        'config', '--image', image, '--os', 'linux', '--architecture', 'amd64',
        '--config.env', BUSYBOX_PATH_ENV, '--config.cmd', 'sh', '--config.workingdir', '/',
        '--history.created_by', 'hako image build',
      );
      await umoci('gc', '--layout', oci);
      await rm(bundle, { recursive: true, force: true });
      progress.phase('archive', 'writing busybox.tar (OCI archive)');
      // A reproducible tar: sorted names, fixed owners and times.
      await run([
        'tar', '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
        '-C', oci, '-cf', join(tmp, 'busybox.tar'), 'oci-layout', 'index.json', 'blobs',
      ], { timeoutMs: TIMEOUT_MS, signal: opts.signal });
    });
    progress.phase('install', 'pointing images/busybox and images/busybox.tar at the new image');
    await swapSymlink(`.busybox-${hash}/layout`, paths.layout);
    await swapSymlink(`.busybox-${hash}/busybox.tar`, paths.archive);
    await removeStale(opts.layout, hash);
    progress.phase('done', `busybox image ready: ${paths.layout} in ${formatElapsed(progress.elapsedMs())}`);
    return paths;
  });
}

/** populate fills the image's root: busybox, every applet as a /bin link, a minimal /etc. */
async function populate(rootfs: string, signal?: AbortSignal): Promise<void> {
  for (const d of ['bin', 'dev', 'etc', 'home', 'proc', 'sys', 'usr', 'var', 'root', 'tmp']) {
    await mkdir(join(rootfs, d), { recursive: true });
  }
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await chmod(join(rootfs, 'root'), 0o700);
  await copyFile(HOST_BUSYBOX, join(rootfs, 'bin', 'busybox'));
  await chmod(join(rootfs, 'bin', 'busybox'), 0o755);
  const { stdout } = await run([HOST_BUSYBOX, '--list'], { timeoutMs: 30_000, signal });
  for (const name of stdout.split('\n').map((s) => s.trim())) {
    if (name === '' || name === 'busybox' || name.includes('/')) continue;
    await symlink('busybox', join(rootfs, 'bin', name));
  }
  await writeFile(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n');
  await writeFile(join(rootfs, 'etc', 'group'), 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n');
}

/** swapSymlink points link at target atomically (a new link renamed over the old one). */
async function swapSymlink(target: string, link: string): Promise<void> {
  const tmp = tempSibling(link);
  await symlink(target, tmp);
  try {
    await rename(tmp, link);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** removeStale deletes store directories of older busybox images. */
async function removeStale(layout: CacheLayout, keep: string): Promise<void> {
  for (const name of await readdir(layout.images)) {
    if (name.startsWith('.busybox-') && name !== `.busybox-${keep}` && !name.includes('.tmp-') && !name.includes('.old-')) {
      await rm(join(layout.images, name), { recursive: true, force: true });
    }
  }
}
