// Reading an OCI image layout (a directory, as umoci/skopeo/buildah write it): index.json,
// then the manifest for a tag, then the image config. Every blob is checked against its digest.

import { createHash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, HakoError, errorf } from '../errors/index.js';

/** Descriptor points at a blob of a layout. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string };
}

/** ImageConfig is the part of an OCI image config that shapes the container process. */
export interface ImageConfig {
  env: string[];
  entrypoint: string[];
  cmd: string[];
  workingDir: string;
  user: string;
  architecture: string;
  os: string;
}

/** ResolvedImage is one image of a layout: its manifest digest, layers and config. */
export interface ResolvedImage {
  layoutDir: string;
  manifestDigest: string;
  layers: Descriptor[];
  config: ImageConfig;
}

const REF_NAME = 'org.opencontainers.image.ref.name';
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
// JSON blobs (index, manifest, config) are small; a huge one is a broken or hostile layout.
const MAX_JSON_BLOB = 4 * 1024 * 1024;

/** blobPath returns the file of a digest in a layout, refusing anything but sha256 hex. */
export function blobPath(layoutDir: string, digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw errorf(Code.INVALID_ARGUMENT, `unsupported or malformed digest ${JSON.stringify(digest)}`);
  return join(layoutDir, 'blobs', 'sha256', m[1]!);
}

async function readJsonBlob(layoutDir: string, d: Descriptor, what: string): Promise<unknown> {
  const path = blobPath(layoutDir, d.digest);
  const fh = await open(path, 'r').catch((err: unknown) => {
    throw HakoError.wrap(err, `${what} blob ${d.digest} is missing from ${layoutDir}`);
  });
  let data: Buffer;
  try {
    const { size } = await fh.stat();
    if (size > MAX_JSON_BLOB) throw errorf(Code.RESOURCE_EXHAUSTED, `${what} blob ${d.digest} is ${size} bytes (limit ${MAX_JSON_BLOB})`);
    data = await fh.readFile();
  } finally {
    await fh.close();
  }
  const sum = 'sha256:' + createHash('sha256').update(data).digest('hex');
  if (sum !== d.digest) throw errorf(Code.DATA_LOSS, `${what} blob ${d.digest} does not match its digest (got ${sum})`);
  return parseJson(data.toString('utf8'), `${what} ${d.digest}`);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw errorf(Code.INVALID_ARGUMENT, `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw errorf(Code.INVALID_ARGUMENT, `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function descriptors(v: unknown, what: string): Descriptor[] {
  if (!Array.isArray(v)) throw errorf(Code.INVALID_ARGUMENT, `${what} must be an array of descriptors`);
  return v.map((x, i) => {
    const o = asObject(x, `${what}[${i}]`);
    if (typeof o.digest !== 'string' || typeof o.mediaType !== 'string') {
      throw errorf(Code.INVALID_ARGUMENT, `${what}[${i}] needs string mediaType and digest`);
    }
    return o as unknown as Descriptor;
  });
}

function strings(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw errorf(Code.INVALID_ARGUMENT, `${what} must be an array of strings`);
  return v as string[];
}

/** isLayoutDir reports whether dir looks like an OCI image layout (has oci-layout and index.json). */
export async function isLayoutDir(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, 'index.json'))).isFile() && (await stat(join(dir, 'oci-layout'))).isFile();
  } catch {
    return false;
  }
}

/** resolveImage picks the manifest for tag (or the only/`latest` one) and reads its config. */
export async function resolveImage(layoutDir: string, tag?: string): Promise<ResolvedImage> {
  const layoutFile = parseJson(await readFile(join(layoutDir, 'oci-layout'), 'utf8').catch((err: unknown) => {
    throw HakoError.wrap(err, `${layoutDir} is not an OCI image layout (no oci-layout file)`);
  }), 'oci-layout');
  if (asObject(layoutFile, 'oci-layout').imageLayoutVersion !== '1.0.0') {
    throw errorf(Code.INVALID_ARGUMENT, `${layoutDir}: unsupported imageLayoutVersion`);
  }
  const indexText = await readFile(join(layoutDir, 'index.json'), 'utf8').catch((err: unknown) => {
    throw HakoError.wrap(err, `${layoutDir} is not an OCI image layout (no index.json)`);
  });
  const index = asObject(parseJson(indexText, 'index.json'), 'index.json');
  let desc = pickFromIndex(descriptors(index.manifests, 'index.json manifests'), tag, layoutDir);
  // An index may point at another index (multi-platform): descend to linux/amd64.
  for (let depth = 0; INDEX_TYPES.has(desc.mediaType); depth++) {
    if (depth > 4) throw errorf(Code.INVALID_ARGUMENT, `${layoutDir}: image indexes nested too deeply`);
    const nested = asObject(await readJsonBlob(layoutDir, desc, 'index'), 'image index');
    desc = pickPlatform(descriptors(nested.manifests, 'image index manifests'), layoutDir);
  }
  if (!MANIFEST_TYPES.has(desc.mediaType)) throw errorf(Code.INVALID_ARGUMENT, `${layoutDir}: unsupported manifest media type ${desc.mediaType}`);
  const manifest = asObject(await readJsonBlob(layoutDir, desc, 'manifest'), 'manifest');
  const [configDesc] = descriptors([manifest.config], 'manifest config');
  const layers = descriptors(manifest.layers ?? [], 'manifest layers');
  const raw = asObject(await readJsonBlob(layoutDir, configDesc!, 'image config'), 'image config');
  const c = raw.config === undefined || raw.config === null ? {} : asObject(raw.config, 'image config.config');
  const config: ImageConfig = {
    env: strings(c.Env, 'config.Env'),
    entrypoint: strings(c.Entrypoint, 'config.Entrypoint'),
    cmd: strings(c.Cmd, 'config.Cmd'),
    workingDir: typeof c.WorkingDir === 'string' ? c.WorkingDir : '',
    user: typeof c.User === 'string' ? c.User : '',
    architecture: typeof raw.architecture === 'string' ? raw.architecture : '',
    os: typeof raw.os === 'string' ? raw.os : '',
  };
  if (config.os !== '' && config.os !== 'linux') throw errorf(Code.INVALID_ARGUMENT, `image is for ${config.os}, not linux`);
  if (config.architecture !== '' && config.architecture !== 'amd64') {
    throw errorf(Code.INVALID_ARGUMENT, `image is for ${config.architecture}; the guest is amd64`);
  }
  return { layoutDir, manifestDigest: desc.digest, layers, config };
}

function pickFromIndex(list: Descriptor[], tag: string | undefined, layoutDir: string): Descriptor {
  const tags = list.map((d) => d.annotations?.[REF_NAME]).filter((t): t is string => t !== undefined);
  if (tag !== undefined) {
    const hit = list.find((d) => d.annotations?.[REF_NAME] === tag);
    if (!hit) throw errorf(Code.NOT_FOUND, `${layoutDir} has no tag ${JSON.stringify(tag)} (tags: ${tags.join(', ') || 'none'})`);
    return hit;
  }
  if (list.length === 1) return list[0]!;
  const latest = list.find((d) => d.annotations?.[REF_NAME] === 'latest');
  if (latest) return latest;
  if (list.length === 0) throw errorf(Code.NOT_FOUND, `${layoutDir} holds no images`);
  throw errorf(Code.INVALID_ARGUMENT, `${layoutDir} holds ${list.length} images: name one as PATH:TAG (tags: ${tags.join(', ') || 'none'})`);
}

function pickPlatform(list: Descriptor[], layoutDir: string): Descriptor {
  const hit = list.find((d) => (d.platform?.os ?? 'linux') === 'linux' && (d.platform?.architecture ?? 'amd64') === 'amd64');
  if (!hit) throw errorf(Code.NOT_FOUND, `${layoutDir} has no linux/amd64 image`);
  return hit;
}
