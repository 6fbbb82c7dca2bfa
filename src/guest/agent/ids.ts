// Validation of the names the host sends to the agent: container ids, exec ids, the 9p
// share tag and the hostname. They become file names under /run, so they are checked first.

import { Code, errorf } from '../../errors/index.js';

/** ID_PATTERN matches container and exec ids: a safe file name of at most 128 characters. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** validateContainerId throws INVALID_ARGUMENT unless id is a usable container id. */
export function validateContainerId(id: string): string {
  if (!ID_PATTERN.test(id)) throw errorf(Code.INVALID_ARGUMENT, `invalid container id ${JSON.stringify(id.slice(0, 140))}`);
  return id;
}

/** validateExecId accepts '' (the init process) or an id like a container id. */
export function validateExecId(id: string): string {
  if (id !== '' && !ID_PATTERN.test(id)) throw errorf(Code.INVALID_ARGUMENT, `invalid exec id ${JSON.stringify(id.slice(0, 140))}`);
  return id;
}

/** validateShareTag accepts a 9p mount tag (the kernel allows at most 31 bytes). */
export function validateShareTag(tag: string): string {
  if (!/^[A-Za-z0-9_.-]{1,31}$/.test(tag)) throw errorf(Code.INVALID_ARGUMENT, `invalid 9p share tag ${JSON.stringify(tag.slice(0, 40))}`);
  return tag;
}

/** validateHostname accepts an RFC 1123 host name of at most 64 characters. */
export function validateHostname(name: string): string {
  if (name.length > 64 || !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name)) {
    throw errorf(Code.INVALID_ARGUMENT, `invalid hostname ${JSON.stringify(name.slice(0, 70))}`);
  }
  return name;
}

/** validateNameserver accepts an IPv4 or IPv6 address literal for resolv.conf. */
export function validateNameserver(addr: string): string {
  const v4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
  const v6 = /^[0-9A-Fa-f:.]{2,45}$/;
  if (!v4.test(addr) && !(addr.includes(':') && v6.test(addr))) throw errorf(Code.INVALID_ARGUMENT, `invalid DNS server ${JSON.stringify(addr.slice(0, 50))}`);
  return addr;
}
