// Where a shim serves: the socket address computed from containerd's address, the
// namespace and the group (pod sandbox id or container id), as containerd's own shims do.

import { createHash } from 'node:crypto';
import { posix } from 'node:path';

/** SOCKET_DIR is where shim sockets live (containerd's state dir + "/s"). */
export const SOCKET_DIR = '/run/containerd/s';

/**
 * GROUP_ANNOTATIONS name the annotations that put containers into one shim (one VM),
 * checked in order. CRI sets io.kubernetes.cri.sandbox-id on every container of a pod.
 */
export const GROUP_ANNOTATIONS = ['io.containerd.hako.v2.group', 'io.kubernetes.cri.sandbox-id'];

/** groupId returns the shim group of a container: its pod sandbox id, or its own id. */
export function groupId(id: string, annotations: Record<string, unknown> | undefined): string {
  for (const key of GROUP_ANNOTATIONS) {
    const v = annotations?.[key];
    if (typeof v === 'string' && v !== '') return v;
  }
  return id;
}

/**
 * socketAddress returns `unix:///run/containerd/s/<sha256>` for a group. The hash input
 * is the joined path containerdAddress/namespace/group, the same as containerd's
 * shim.SocketAddress, so two containerd instances on one host never collide.
 */
export function socketAddress(containerdAddress: string, namespace: string, group: string, dir = SOCKET_DIR): string {
  const digest = createHash('sha256').update(posix.join(containerdAddress, namespace, group)).digest('hex');
  return `unix://${dir}/${digest}`;
}

/** socketPath strips the `unix://` scheme from an address. */
export function socketPath(address: string): string {
  return address.startsWith('unix://') ? address.slice('unix://'.length) : address;
}
