// Prints the conflist of hako's CNI network "hako" as JSON, built by the same code `hako run`
// uses, with [network] subnet and bridge from hako's configuration (HAKO_CONFIG or
// /etc/hako/config.toml); setup writes it to /etc/cni/net.d for `ctr run --cni`.
// Usage: node scripts/write-cni-conf.mjs   (after npm run build)
import { existsSync } from 'node:fs';

const dist = new URL('../dist/src/', import.meta.url);
if (!existsSync(new URL('network/hako-network.js', dist))) {
  console.error('write-cni-conf: dist/src/network/hako-network.js is missing: run npm run build first');
  process.exit(1);
}
const { hakoConflist, checkSubnetFree } = await import(new URL('network/hako-network.js', dist).href);
const { loadConfig } = await import(new URL('config/index.js', dist).href);

try {
  const { config } = await loadConfig();
  const { subnet, bridge } = config.network;
  // A subnet that a LAN or VPN of this host already uses would send its traffic to the bridge.
  await checkSubnetFree(subnet, bridge, { timeoutMs: 5000 });
  process.stdout.write(JSON.stringify(hakoConflist({ subnet, bridge }), null, 2) + '\n');
} catch (err) {
  console.error(`write-cni-conf: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
