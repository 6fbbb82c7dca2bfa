// Turning an image reference (an OCI layout directory or archive, optionally PATH:TAG) into
// a cached, unpacked rootfs under <cache_dir>/rootfs/<manifest digest>, shared read-only by containers.

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Code, HakoError, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { applyLayer, type LayerStats } from './apply-layer.js';
import { blobPath, isLayoutDir, resolveImage, type Descriptor, type ImageConfig } from './oci-layout.js';

/** ImageRef is a parsed IMAGE argument: a layout directory or archive, and an optional tag. */
export interface ImageRef {
  path: string;
  tag?: string;
  kind: 'dir' | 'archive';
}

/** UnpackedImage is a ready rootfs (never write to it: it is the lower layer of every container). */
export interface UnpackedImage {
  rootfs: string;
  manifestDigest: string;
  config: ImageConfig;
  /** cached is true when the rootfs was already unpacked. */
  cached: boolean;
}

/** parseImageRef finds the layout a reference names: PATH, or PATH:TAG when PATH exists. */
export async function parseImageRef(ref: string): Promise<ImageRef> {
  const kindOf = async (p: string): Promise<'dir' | 'archive' | null> => {
    try {
      const st = await stat(p);
      return st.isDirectory() ? 'dir' : st.isFile() ? 'archive' : null;
    } catch {
      return null;
    }
  };
  const whole = await kindOf(ref);
  if (whole) return { path: ref, kind: whole };
  const colon = ref.lastIndexOf(':');
  if (colon > 0 && !ref.slice(colon + 1).includes('/')) {
    const kind = await kindOf(ref.slice(0, colon));
    if (kind) return { path: ref.slice(0, colon), tag: ref.slice(colon + 1), kind };
  }
  throw errorf(
    Code.NOT_FOUND,
    `image ${JSON.stringify(ref)}: no such file or directory (an image is \`busybox\` or the path of an OCI image layout directory or its tar archive, optionally PATH:TAG)`,
  );
}

/** UnpackOptions configures unpackImage. */
export interface UnpackOptions {
  ref: ImageRef;
  /** cacheDir is runtime.cache_dir; rootfs trees go to <cacheDir>/rootfs/<hex digest>. */
  cacheDir: string;
  log: Logger;
  signal?: AbortSignal;
}

/** unpackImage returns the cached rootfs of an image, unpacking its layers once. */
export async function unpackImage(opts: UnpackOptions): Promise<UnpackedImage> {
  const log = opts.log.child({ subsystem: 'storage' });
  const tmpRoot = join(opts.cacheDir, 'tmp');
  let archiveDir: string | undefined;
  try {
    let layoutDir = opts.ref.path;
    if (opts.ref.kind === 'archive') {
      await mkdir(tmpRoot, { recursive: true, mode: 0o700 });
      archiveDir = join(tmpRoot, `archive-${randomBytes(6).toString('hex')}`);
      await mkdir(archiveDir, { mode: 0o700 });
      await extractArchive(opts.ref.path, archiveDir, opts.signal);
      layoutDir = archiveDir;
    } else if (!(await isLayoutDir(layoutDir))) {
      throw errorf(Code.INVALID_ARGUMENT, `${layoutDir} is not an OCI image layout (it needs oci-layout and index.json)`);
    }
    const image = await resolveImage(layoutDir, opts.ref.tag);
    const hex = image.manifestDigest.slice('sha256:'.length);
    const rootfs = join(opts.cacheDir, 'rootfs', hex);
    if (await isDir(rootfs)) return { rootfs, manifestDigest: image.manifestDigest, config: image.config, cached: true };

    const started = Date.now();
    const tmp = join(opts.cacheDir, 'rootfs', `.tmp-${hex.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { recursive: true, mode: 0o755 });
    try {
      for (const layer of image.layers) {
        opts.signal?.throwIfAborted();
        const stats = await unpackLayer(layoutDir, layer, tmp, opts.signal);
        log.debug('layer unpacked', { digest: layer.digest, ...stats });
      }
      try {
        await rename(tmp, rootfs);
      } catch (err) {
        // Another hako unpacked the same image meanwhile: theirs is as good as ours.
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !(await isDir(rootfs))) throw err;
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    log.info('image unpacked', { digest: image.manifestDigest, layers: image.layers.length, ms: Date.now() - started });
    return { rootfs, manifestDigest: image.manifestDigest, config: image.config, cached: false };
  } catch (err) {
    throw HakoError.wrap(err, `image ${opts.ref.path}${opts.ref.tag !== undefined ? ':' + opts.ref.tag : ''}`);
  } finally {
    if (archiveDir !== undefined) await rm(archiveDir, { recursive: true, force: true });
  }
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}

async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

function decompressorFor(layer: Descriptor, gzip: boolean): Transform {
  if (layer.mediaType.includes('zstd')) throw errorf(Code.UNIMPLEMENTED, `layer ${layer.digest}: zstd layers are not supported`);
  return gzip ? createGunzip() : new PassThrough();
}

async function unpackLayer(layoutDir: string, layer: Descriptor, root: string, signal?: AbortSignal): Promise<LayerStats> {
  const path = blobPath(layoutDir, layer.digest);
  const gzip = await isGzip(path).catch((err: unknown) => {
    throw HakoError.wrap(err, `layer blob ${layer.digest} is missing`);
  });
  const hash = createHash('sha256');
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  let stats: LayerStats | undefined;
  await pipeline(
    createReadStream(path),
    hasher,
    decompressorFor(layer, gzip),
    async (source: AsyncIterable<Buffer>) => {
      // The rest after the tar end marker (padding) must still flow through the hasher
      // so the digest covers the whole blob.
      stats = await drained(source, (view) => applyLayer(root, view));
    },
    { signal },
  );
  const sum = 'sha256:' + hash.digest('hex');
  if (sum !== layer.digest) throw errorf(Code.DATA_LOSS, `layer ${layer.digest} does not match its digest (got ${sum})`);
  return stats!;
}

/**
 * drained runs fn over a view of source that fn cannot close early, then reads source to
 * its end, so a pipeline never sees a premature close when a tar ends before its stream.
 */
async function drained<T>(source: AsyncIterable<Buffer>, fn: (view: AsyncIterable<Buffer>) => Promise<T>): Promise<T> {
  const it = source[Symbol.asyncIterator]();
  const result = await fn({ [Symbol.asyncIterator]: () => ({ next: () => it.next() }) });
  while (!(await it.next()).done);
  return result;
}

/** extractArchive unpacks an OCI archive (a tar, maybe gzipped, of a layout) into dir. */
async function extractArchive(path: string, dir: string, signal?: AbortSignal): Promise<void> {
  const gzip = await isGzip(path);
  await pipeline(
    createReadStream(path),
    gzip ? createGunzip() : new PassThrough(),
    async (source: AsyncIterable<Buffer>) => {
      await drained(source, (view) => applyLayer(dir, view));
    },
    { signal },
  );
  if (!(await isLayoutDir(dir))) throw errorf(Code.INVALID_ARGUMENT, `${path} is not an OCI archive (no oci-layout and index.json inside)`);
}
