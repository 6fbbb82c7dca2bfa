// `hako run` argument handling: flags to a RunPlan (image unpacked, spec generated, command
// checked), so the foreground run and the detached owner start from the same, validated plan.

import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { Code, errorf } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { HakoConfig } from '../config/index.js';
import { ensureAssets, type Assets, type ProgressFn } from '../image/index.js';
import { findCommand, parseImageRef, unpackImage } from '../storage/index.js';
import { DEFAULT_PATH, defaultSpec, hostnameOf, mergeEnv, parseAddHost, resolveUser, sandboxPaths, type OciSpec } from '../sandbox/index.js';
import { parsePublish, type PortMapping } from '../network/index.js';
import { flagBool, flagList, flagString, parseArgs, type FlagSpec } from './args.js';
import { CliExit, EXIT_NOT_FOUND } from './exit.js';
import { parseCpus, parseEnv, parseMemoryMiB, parseName, parseVolume } from './values.js';

/** RUN_FLAGS are the flags of `hako run`. */
export const RUN_FLAGS: FlagSpec[] = [
  { name: 'rm' },
  { name: 'detach', short: 'd' },
  { name: 'interactive', short: 'i' },
  { name: 'tty', short: 't' },
  { name: 'name', value: true },
  { name: 'env', short: 'e', value: true, repeat: true },
  { name: 'volume', short: 'v', value: true, repeat: true },
  { name: 'cpus', value: true },
  { name: 'memory', short: 'm', value: true },
  { name: 'rootfs', value: true },
  { name: 'network', value: true },
  { name: 'publish', short: 'p', value: true, repeat: true },
  { name: 'dns', value: true, repeat: true },
  { name: 'dns-search', value: true, repeat: true },
  { name: 'add-host', value: true, repeat: true },
  { name: 'hostname', value: true },
  { name: 'help', short: 'h' },
];

/** RUN_USAGE is the help text of `hako run`. */
export const RUN_USAGE = `Usage: hako run [OPTIONS] IMAGE [--] [COMMAND [ARG...]]
       hako run [OPTIONS] --rootfs DIR [--] COMMAND [ARG...]

Run a command in a new container, in its own VM.
IMAGE is "busybox" (built in) or the path of an OCI image layout directory or
its tar archive (as umoci, skopeo or buildah write them), optionally PATH:TAG.

Options:
      --rm               remove the container when it exits
  -d, --detach           run in the background and print the container id
  -i, --interactive      keep stdin open and forward it
  -t, --tty              give the container a terminal
      --name NAME        name the container (default: a random id)
  -e, --env KEY=VALUE    set an environment variable (KEY alone: take it from here)
  -v, --volume HOST:CONTAINER[:ro]
                         bind a host file or directory into the container
      --cpus N           vCPUs of the VM
  -m, --memory SIZE      memory of the VM (e.g. 512m, 1g)
      --rootfs DIR       use DIR as the container's root filesystem (no image)
      --network MODE     hako (default: a private address on hako's bridge, with
                         outbound access) or none (loopback only)
  -p, --publish [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]
                         publish a container port on the host
      --dns IP           DNS server for the container (default: the host's)
      --dns-search DOMAIN
                         DNS search domain
      --add-host NAME:IP add a line to the container's /etc/hosts
      --hostname NAME    the container's host name (default: its id)
`;

/** RunPlan is everything needed to start the container, resolved and checked. */
export interface RunPlan {
  id: string;
  rm: boolean;
  detach: boolean;
  interactive: boolean;
  tty: boolean;
  /** image is what the user named (for `hako ps`). */
  image: string;
  /** lower is the unpacked image rootfs (overlay lower layer); absent with --rootfs. */
  lower?: string;
  /** rootfsDir is --rootfs: bound into the guest as it is (writes land in it). */
  rootfsDir?: string;
  spec: OciSpec;
  vcpus?: number;
  memoryMiB?: number;
  assets: Assets;
  /** network is `hako` (hako's CNI network, with ports) or `none` (loopback only). */
  network: 'hako' | 'none';
  ports: PortMapping[];
  hostname: string;
  etc: { dns: string[]; dnsSearch: string[]; extraHosts: Array<{ name: string; ip: string }> };
}

/** PlanContext is what planRun needs besides the arguments. */
export interface PlanContext {
  config: HakoConfig;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

/** planRun parses `hako run` arguments and prepares the image; bad input throws INVALID_ARGUMENT. */
export async function planRun(argv: string[], ctx: PlanContext): Promise<RunPlan | 'help'> {
  const p = parseArgs(argv, RUN_FLAGS, { command: 'hako run', stopAfter: 1 });
  if (flagBool(p, 'help')) return 'help';
  const rootfsFlag = flagString(p, 'rootfs');
  const image = p.positionals[0];
  let command = p.rest;
  if (rootfsFlag !== undefined && image !== undefined) {
    // With --rootfs there is no image: the first word belongs to the command.
    command = [image, ...command];
  }
  if (rootfsFlag === undefined && image === undefined) throw errorf(Code.INVALID_ARGUMENT, 'hako run: an IMAGE (or --rootfs DIR) is required; see hako run --help');
  const detach = flagBool(p, 'detach');
  const interactive = flagBool(p, 'interactive');
  const tty = flagBool(p, 'tty');
  if (detach && (interactive || tty)) throw errorf(Code.INVALID_ARGUMENT, 'hako run: -d cannot be combined with -i or -t (use hako exec -it into the detached container)');
  const name = flagString(p, 'name');
  const id = name !== undefined ? parseName(name) : randomBytes(6).toString('hex');
  const vcpusText = flagString(p, 'cpus');
  const memText = flagString(p, 'memory');
  const vcpus = vcpusText !== undefined ? parseCpus(vcpusText) : undefined;
  const memoryMiB = memText !== undefined ? parseMemoryMiB(memText) : undefined;
  const env = parseEnv(flagList(p, 'env'), ctx.env);
  const volumes = flagList(p, 'volume').map((v) => parseVolume(v, ctx.cwd));
  for (const v of volumes) {
    if (!(await stat(v.source).then(() => true, () => false))) throw errorf(Code.NOT_FOUND, `hako run: volume source ${v.source} does not exist`);
  }
  const network = flagString(p, 'network') ?? 'hako';
  if (network !== 'hako' && network !== 'none') throw errorf(Code.INVALID_ARGUMENT, `hako run: --network ${JSON.stringify(network)}: want hako or none`);
  const ports = flagList(p, 'publish').map(parsePublish);
  if (ports.length > 0 && network === 'none') throw errorf(Code.INVALID_ARGUMENT, 'hako run: --publish needs a network; it cannot be combined with --network none');
  const hostname = flagString(p, 'hostname') ?? hostnameOf(id);
  const etc = { dns: flagList(p, 'dns'), dnsSearch: flagList(p, 'dns-search'), extraHosts: flagList(p, 'add-host').map(parseAddHost) };
  const { dir } = sandboxPaths(ctx.config.runtime.stateDir, id);
  if (await stat(dir).then(() => true, () => false)) {
    throw errorf(Code.ALREADY_EXISTS, `hako run: the name ${JSON.stringify(id)} is in use (hako rm ${id} removes that container)`);
  }

  let rootfsDir: string | undefined;
  if (rootfsFlag !== undefined) {
    const st = await stat(rootfsFlag).catch(() => null);
    if (!st?.isDirectory()) throw errorf(Code.NOT_FOUND, `hako run: --rootfs ${rootfsFlag} is not a directory`);
    rootfsDir = rootfsFlag;
  }
  const assets = await ensureAssets({ log: ctx.log, cacheDir: ctx.config.runtime.cacheDir, accel: ctx.config.hypervisor.accel, qemuBinary: ctx.config.hypervisor.path, onProgress: ctx.onProgress, signal: ctx.signal });
  let lower: string | undefined;
  let imageConfig = { env: [] as string[], entrypoint: [] as string[], cmd: [] as string[], workingDir: '', user: '' };
  if (image !== undefined && rootfsDir === undefined) {
    const ref = image === 'busybox' ? { path: assets.busyboxLayout, kind: 'dir' as const } : await parseImageRef(image);
    const unpacked = await unpackImage({ ref, cacheDir: ctx.config.runtime.cacheDir, log: ctx.log, signal: ctx.signal });
    lower = unpacked.rootfs;
    imageConfig = unpacked.config;
  }
  const root = (lower ?? rootfsDir)!;
  const args = command.length > 0 ? [...imageConfig.entrypoint, ...command] : [...imageConfig.entrypoint, ...imageConfig.cmd];
  if (args.length === 0) throw errorf(Code.INVALID_ARGUMENT, `hako run: no command given and the image ${image ?? rootfsDir} defines none`);
  const fullEnv = mergeEnv(imageConfig.env, env);
  const cwd = imageConfig.workingDir || '/';
  const pathEnv = fullEnv.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  const underVolume = volumes.some((v) => args[0]!.startsWith(v.destination.replace(/\/$/, '') + '/'));
  if (!underVolume && (await findCommand(root, args[0]!, pathEnv, cwd)) === null) {
    throw new CliExit(EXIT_NOT_FOUND, `exec: ${JSON.stringify(args[0])}: executable file not found in $PATH (${pathEnv}) of ${image ?? rootfsDir}`);
  }
  const user = await resolveUser(root, imageConfig.user);
  const spec = defaultSpec({ args, env: fullEnv, cwd, user, terminal: tty, hostname, volumes });
  return {
    id, rm: flagBool(p, 'rm'), detach, interactive, tty, image: image ?? `--rootfs ${rootfsDir}`, lower, rootfsDir, spec,
    vcpus, memoryMiB, assets, network, ports, hostname, etc,
  };
}
