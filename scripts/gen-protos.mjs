// Regenerates src/protocols/generated from src/protocols/proto with protoc + protoc-gen-es.
// Run with `npm run gen`; the output is committed and never edited by hand.
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, mkdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const protoRoot = 'src/protocols/proto';
const out = 'src/protocols/generated';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.proto') ? [p] : [];
  });
}

const files = walk(protoRoot).map((p) => relative(protoRoot, p)).sort();
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
execFileSync('protoc', [
  `--plugin=protoc-gen-es=node_modules/.bin/protoc-gen-es`,
  `--es_out=${out}`,
  '--es_opt=target=ts,import_extension=js',
  `-I${protoRoot}`,
  '-I/usr/include',
  ...files,
], { stdio: 'inherit' });
console.log(`generated ${files.length} files into ${out}`);
