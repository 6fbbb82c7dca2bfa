// NIC hot-plug over QMP: netdev_add makes QEMU open (create) the tap, device_add plugs a
// virtio-net NIC on it into one of the VM's PCIe root ports. The guest sees an ACPI hot-plug
// event and probes the device by itself.

import { Code, HakoError, errorf } from '../../errors/index.js';
import type { CallOptions, HotNic } from '../vm.js';
import { nicIds, nicSlotId } from './cmdline.js';
import type { QmpClient } from './qmp.js';

const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** UNPLUG_WAIT_MS bounds the wait for the guest to release a NIC (DEVICE_DELETED). */
const UNPLUG_WAIT_MS = 5000;

/** plugNic adds the tap netdev and the NIC; if the NIC fails, the netdev (and its tap) goes. */
export async function plugNic(qmp: QmpClient, nic: HotNic, opts: CallOptions = {}): Promise<void> {
  const mac = nic.mac.toLowerCase();
  if (!IFNAME.test(nic.ifname)) throw errorf(Code.INVALID_ARGUMENT, `NIC tap name ${JSON.stringify(nic.ifname)} must match ${IFNAME}`);
  if (!MAC.test(mac) || (parseInt(mac.slice(0, 2), 16) & 1) !== 0) throw errorf(Code.INVALID_ARGUMENT, `NIC MAC ${JSON.stringify(nic.mac)} must be a unicast aa:bb:cc:dd:ee:ff`);
  if (!Number.isInteger(nic.slot) || nic.slot < 0) throw errorf(Code.INVALID_ARGUMENT, `NIC slot ${nic.slot} is not a slot number`);
  const ids = nicIds(nic.ifname);
  await qmp.execute('netdev_add', { type: 'tap', id: ids.netdev, ifname: nic.ifname, script: 'no', downscript: 'no', vhost: false }, opts)
    .catch((err: unknown) => {
      throw HakoError.wrap(err, `creating tap ${nic.ifname}`);
    });
  try {
    await qmp.execute('device_add', { driver: 'virtio-net-pci', id: ids.device, netdev: ids.netdev, mac, bus: nicSlotId(nic.slot) }, opts);
  } catch (err) {
    await qmp.execute('netdev_del', { id: ids.netdev }, { timeoutMs: 2000 }).catch(() => {});
    throw HakoError.wrap(err, `hot-plugging a NIC into slot ${nic.slot}`);
  }
}

/** unplugNic removes the NIC (waiting a bounded time for the guest to let go), then its netdev. */
export async function unplugNic(qmp: QmpClient, ifname: string, opts: CallOptions = {}): Promise<void> {
  const ids = nicIds(ifname);
  let off = (): void => {};
  const deleted = new Promise<void>((resolve) => {
    const t = setTimeout(resolve, opts.timeoutMs ?? UNPLUG_WAIT_MS);
    off = qmp.onEvent((ev) => {
      if (ev.event === 'DEVICE_DELETED' && ev.data.device === ids.device) {
        clearTimeout(t);
        resolve();
      }
    });
  }).finally(() => off());
  await qmp.execute('device_del', { id: ids.device }, opts).catch((err: unknown) => {
    if (!/not found/i.test(String((err as Error).message))) throw err;
  });
  await deleted;
  await qmp.execute('netdev_del', { id: ids.netdev }, opts).catch((err: unknown) => {
    if (!/not found/i.test(String((err as Error).message))) throw err;
  });
}
