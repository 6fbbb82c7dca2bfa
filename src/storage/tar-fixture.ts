// Test support only: writes small ustar/pax archives in memory so the unpacking tests
// can build layers with whiteouts, hard links and hostile names that tools refuse to make.

import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** FixtureEntry describes one member of a fixture archive. */
export interface FixtureEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink';
  data?: string | Buffer;
  linkName?: string;
  mode?: number;
  uid?: number;
  /** pax forces a pax header (used for names longer than 100 bytes). */
  pax?: Record<string, string>;
}

function header(name: string, typeflag: string, size: number, mode: number, uid: number, linkName: string): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => h.write(s.slice(0, len), off, len, 'utf8');
  const oct = (n: number, off: number, len: number) => put(n.toString(8).padStart(len - 1, '0') + '\0', off, len);
  put(name, 0, 100);
  oct(mode, 100, 8);
  oct(uid, 108, 8);
  oct(uid, 116, 8);
  oct(size, 124, 12);
  oct(1_700_000_000, 136, 12);
  h.write('        ', 148, 8, 'ascii');
  put(typeflag, 156, 1);
  put(linkName, 157, 100);
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

function padded(data: Buffer): Buffer[] {
  const rest = (512 - (data.length % 512)) % 512;
  return [data, Buffer.alloc(rest)];
}

/** makeTar returns an uncompressed archive of entries. */
export function makeTar(entries: FixtureEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = Buffer.from(e.data ?? '');
    if (e.pax) {
      const body = Buffer.concat(
        Object.entries(e.pax).map(([k, v]) => {
          const rec = ` ${k}=${v}\n`;
          let len = rec.length + 1;
          while (String(len).length + rec.length !== len) len = String(len).length + rec.length;
          return Buffer.from(`${len}${rec}`);
        }),
      );
      parts.push(header('PaxHeader', 'x', body.length, 0o644, 0, ''), ...padded(body));
    }
    const flag = { file: '0', dir: '5', symlink: '2', hardlink: '1' }[type];
    const size = type === 'file' ? data.length : 0;
    parts.push(header(e.name, flag, size, e.mode ?? (type === 'dir' ? 0o755 : 0o644), e.uid ?? 0, e.linkName ?? ''));
    if (size > 0) parts.push(...padded(data));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** writeLayout writes an OCI image layout with one image (tag latest) made of the given layers. */
export async function writeLayout(
  dir: string,
  layers: FixtureEntry[][],
  config: Record<string, unknown> = {},
  opts: { gzip?: boolean; tag?: string } = {},
): Promise<{ manifestDigest: string }> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (data: Buffer): Promise<{ digest: string; size: number }> => {
    const hex = createHash('sha256').update(data).digest('hex');
    await writeFile(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layerDescs = [];
  for (const l of layers) {
    const tar = makeTar(l);
    const gz = opts.gzip ?? true;
    layerDescs.push({
      mediaType: gz ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
      ...(await put(gz ? gzipSync(tar) : tar)),
    });
  }
  const cfg = await put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: [] } })));
  const manifest = await put(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg }, layers: layerDescs })),
  );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': opts.tag ?? 'latest' } }],
    }),
  );
  return { manifestDigest: manifest.digest };
}
