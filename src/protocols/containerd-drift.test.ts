// Drift check: every message, enum and service hako defines in proto/containerd must match
// containerd's own .proto files (Debian's golang-github-containerd-containerd-dev), field by field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectDefinitions, compileProtos, diffDefinitions } from './descriptor-diff.js';

// dist/src/protocols/ -> repository root; the .proto sources are not copied into dist.
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const ourRoot = join(repo, 'src/protocols/proto');
const gocode = '/usr/share/gocode/src';
const cd = 'github.com/containerd/containerd';
const theirFiles = [
  `${cd}/runtime/v2/task/shim.proto`,
  `${cd}/api/events/task.proto`,
  `${cd}/api/types/mount.proto`,
  `${cd}/api/types/task/task.proto`,
  `${cd}/api/services/ttrpc/events/v1/events.proto`,
  // Task/Stats answers with cgroup metrics, defined in containerd/cgroups (Debian's
  // golang-github-containerd-cgroups-dev).
  'github.com/containerd/cgroups/v2/stats/metrics.proto',
];
// hako declares only the cgroup metrics it fills; every other message must be complete.
const subset = (message: string) => message.startsWith('.io.containerd.cgroups.v2.');
// containerd's files import gogoproto/gogo.proto (a weak import, options only) and its
// fieldpath plugin; both resolve from the same Debian gocode tree.
const theirIncludes = [gocode, join(gocode, 'github.com/gogo/protobuf'), '/usr/include'];

function requireDebianProtos(): void {
  const missing = theirFiles.filter((f) => !existsSync(join(gocode, f)));
  assert.deepEqual(
    missing,
    [],
    `containerd's .proto files are missing (${missing.join(', ')}): install Debian's golang-github-containerd-containerd-dev ` +
      `and golang-github-containerd-cgroups-dev (apt-get install golang-github-containerd-containerd-dev golang-github-containerd-cgroups-dev ` +
      `golang-github-gogo-protobuf-dev); the drift check cannot run without them`,
  );
  assert.ok(existsSync(join(gocode, 'github.com/gogo/protobuf/gogoproto/gogo.proto')), 'gogoproto/gogo.proto is missing: install golang-github-gogo-protobuf-dev');
}

function ourFiles(): string[] {
  return readdirSync(join(ourRoot, 'containerd'))
    .filter((f) => f.endsWith('.proto'))
    .sort()
    .map((f) => `containerd/${f}`);
}

test('hako defines the containerd protocol files the drift check expects', () => {
  const files = ourFiles();
  for (const f of ['containerd/events-service.proto', 'containerd/events.proto', 'containerd/shim.proto', 'containerd/task-types.proto', 'containerd/types.proto']) {
    assert.ok(files.includes(f), `${f} is checked`);
  }
});

test("hako's containerd messages match containerd 1.6's .proto files field by field", () => {
  requireDebianProtos();
  const ours = collectDefinitions(compileProtos(ourFiles(), [ourRoot, '/usr/include']));
  const theirs = collectDefinitions(compileProtos(theirFiles, theirIncludes));
  // The check must have something to check: the key messages are present on both sides.
  for (const name of ['.containerd.task.v2.CreateTaskRequest', '.containerd.task.v2.StateResponse', '.containerd.events.TaskExit', '.containerd.types.Mount', '.containerd.services.events.ttrpc.v1.Envelope']) {
    assert.ok(ours.messages.has(name), `hako defines ${name}`);
    assert.ok(theirs.messages.has(name), `containerd defines ${name}`);
  }
  assert.ok(ours.messages.size >= 30, `only ${ours.messages.size} messages found in hako's protos`);
  const drift = diffDefinitions(ours, theirs, { subset });
  assert.deepEqual(drift, [], `hako's protos drifted from containerd's:\n  ${drift.join('\n  ')}`);
});

test('diffDefinitions reports changed numbers, types, labels, names and missing fields', () => {
  requireDebianProtos();
  const theirs = collectDefinitions(compileProtos(theirFiles, theirIncludes));
  const ours = collectDefinitions(compileProtos(ourFiles(), [ourRoot, '/usr/include']));
  const exit = ours.messages.get('.containerd.events.TaskExit')!;
  const pid = exit.field.find((f) => f.name === 'pid')!;
  const status = exit.field.find((f) => f.name === 'exit_status')!;
  pid.number = 33; // a renumbered field
  status.type = 5; // uint32 -> int32
  const mount = ours.messages.get('.containerd.types.Mount')!;
  mount.field = mount.field.filter((f) => f.name !== 'target'); // a dropped field
  mount.field.find((f) => f.name === 'options')!.label = 1; // repeated -> optional
  const drift = diffDefinitions(ours, theirs);
  assert.ok(drift.some((d) => d.includes('TaskExit.pid') && d.includes('= 33')), drift.join('\n'));
  assert.ok(drift.some((d) => d.includes('TaskExit field 4') && d.includes('int32 exit_status')), drift.join('\n'));
  assert.ok(drift.some((d) => d.includes('Mount.target: missing in hako')), drift.join('\n'));
  assert.ok(drift.some((d) => d.includes('Mount field 4') && d.includes('repeated string options')), drift.join('\n'));
});
