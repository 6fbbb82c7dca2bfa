// Unit tests of registering the hako runtime in containerd's config.toml.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'smol-toml';
import { addHakoRuntime, RUNTIME_TYPE } from './install.js';

const existing = `version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"`;

test('adds the runtime once and keeps everything else byte for byte', () => {
  const out = addHakoRuntime(existing)!;
  assert.ok(out.startsWith(existing), 'the original text is kept as written');
  const doc = parse(out) as any;
  assert.equal(doc.plugins['io.containerd.grpc.v1.cri'].containerd.runtimes.hako.runtime_type, RUNTIME_TYPE);
  assert.equal(doc.plugins['io.containerd.grpc.v1.cri'].cni.bin_dir, '/usr/lib/cni');
  assert.equal(doc.plugins['io.containerd.internal.v1.opt'].path, '/var/lib/containerd/opt');
  assert.equal(addHakoRuntime(out), null, 'a second run changes nothing');
});

test('leaves an existing hako runtime alone and refuses a version 1 config', () => {
  const mine = `version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.hako]\n  runtime_type = "io.containerd.hako.v2"\n  pod_annotations = ["x"]\n`;
  assert.equal(addHakoRuntime(mine), null);
  assert.throws(() => addHakoRuntime('[plugins.cri]\n'), /version is 1/);
  assert.throws(() => addHakoRuntime('version = 2\n[plugins\n'), /invalid TOML/);
});
