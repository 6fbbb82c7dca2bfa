// The default OCI runtime spec for `hako run` (what `crun spec` or runc would write, with the
// usual container capabilities), filled from the image config and the command line.

import { readFile } from 'node:fs/promises';
import { Code, errorf } from '../errors/index.js';
import { secureJoin } from '../storage/index.js';

/** OciSpec is an OCI runtime spec as JSON; only the fields hako touches are typed. */
export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts?: OciMount[];
  linux?: Record<string, unknown>;
  [key: string]: unknown;
}

/** OciProcess is the process part of a spec (also the payload of an exec). */
export interface OciProcess {
  terminal?: boolean;
  user: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env?: string[];
  cwd: string;
  capabilities?: Record<string, string[]>;
  rlimits?: Array<{ type: string; hard: number; soft: number }>;
  noNewPrivileges?: boolean;
  consoleSize?: { height: number; width: number };
  [key: string]: unknown;
}

/** OciMount is one entry of spec.mounts. */
export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

/** DEFAULT_PATH is PATH when neither the image nor -e sets one. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** DEFAULT_CAPABILITIES is the capability set containers usually get (containerd's and Docker's default). */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Volume is a host path bound into the container. */
export interface Volume {
  source: string;
  destination: string;
  readonly: boolean;
}

/** SpecInput is what `hako run` knows about the container it starts. */
export interface SpecInput {
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  terminal: boolean;
  hostname: string;
  volumes: Volume[];
}

/** mergeEnv overlays KEY=VALUE entries (later wins, order of first appearance kept). */
export function mergeEnv(...lists: string[][]): string[] {
  const out = new Map<string, string>();
  for (const list of lists) {
    for (const kv of list) {
      const eq = kv.indexOf('=');
      const key = eq < 0 ? kv : kv.slice(0, eq);
      out.set(key, kv);
    }
  }
  return [...out.values()];
}

/** defaultSpec returns a complete spec; root.path is a placeholder the sandbox replaces. */
export function defaultSpec(input: SpecInput): OciSpec {
  if (input.args.length === 0) throw errorf(Code.INVALID_ARGUMENT, 'no command: the image has no Entrypoint or Cmd and none was given');
  const env = mergeEnv([`PATH=${DEFAULT_PATH}`], input.terminal ? ['TERM=xterm'] : [], [`HOSTNAME=${input.hostname}`], input.env);
  const caps = [...DEFAULT_CAPABILITIES];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: input.terminal,
      user: input.user,
      args: input.args,
      env,
      cwd: input.cwd || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024 * 1024, soft: 1024 * 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: input.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
      ...input.volumes.map((v) => ({
        destination: v.destination,
        type: 'bind',
        source: v.source,
        options: ['rbind', v.readonly ? 'ro' : 'rw'],
      })),
    ],
    linux: {
      // The VM is the isolation boundary and the pod: containers share the guest's network namespace.
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** isBindMount reports whether a spec mount binds a host path. */
export function isBindMount(m: OciMount): boolean {
  return m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind');
}

/**
 * resolveUser turns an image/`--user` string (uid, uid:gid, name, name:group) into ids,
 * reading /etc/passwd and /etc/group inside the rootfs for names.
 */
export async function resolveUser(rootfs: string, user: string): Promise<{ uid: number; gid: number }> {
  if (user === '') return { uid: 0, gid: 0 };
  const [u, g] = user.split(':', 2) as [string, string | undefined];
  const readDb = async (file: string): Promise<string[][]> => {
    try {
      const text = await readFile(await secureJoin(rootfs, file), 'utf8');
      return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(':'));
    } catch {
      return [];
    }
  };
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const row = (await readDb('/etc/passwd')).find((r) => r[2] === u);
    if (row) gid = Number(row[3]);
  } else {
    const row = (await readDb('/etc/passwd')).find((r) => r[0] === u);
    if (!row) throw errorf(Code.INVALID_ARGUMENT, `user ${JSON.stringify(u)} is not in the image's /etc/passwd`);
    uid = Number(row[2]);
    gid = Number(row[3]);
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = (await readDb('/etc/group')).find((r) => r[0] === g);
      if (!row) throw errorf(Code.INVALID_ARGUMENT, `group ${JSON.stringify(g)} is not in the image's /etc/group`);
      gid = Number(row[2]);
    }
  }
  if (!Number.isInteger(uid) || !Number.isInteger(gid ?? 0)) throw errorf(Code.INVALID_ARGUMENT, `bad user ${JSON.stringify(user)}`);
  return { uid, gid: gid ?? 0 };
}
