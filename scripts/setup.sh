#!/usr/bin/env bash
# Idempotent setup for hako on Debian 12 (as root): packages, npm dependencies, build,
# guest kernel and image (cached in /var/cache/hako), PATH entries, containerd runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo "setup: hako's setup needs root (it installs packages, mounts and starts QEMU)" >&2
  exit 1
fi

# 1. Debian packages. Each is needed by a named part of hako.
packages=(
  qemu-system-x86 qemu-utils            # the hypervisor
  linux-source-6.1 flex bison bc libelf-dev libssl-dev build-essential cpio xz-utils  # guest kernel build
  busybox-static crun e2fsprogs umoci   # guest root image and default busybox image
  containerd runc                       # containerd + the reference runtime
  golang-github-containerd-containerd-dev  # containerd's .proto files (protocol drift test)
  protobuf-compiler                     # npm run gen
  iproute2 socat python3 skopeo         # tests: network tools, independent ttRPC peer, OCI archives
  runsc hyperfine                       # benchmarks against gVisor
  containernetworking-plugins iptables  # networking: CNI plugins (bridge, host-local, portmap, firewall)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. npm dependencies and build.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
say "building"
npm run build --silent

# 3. hako and the shim on PATH.
for bin in hako containerd-shim-hako-v2; do
  if [ -f "bin/$bin" ]; then
    ln -sf "$repo/bin/$bin" "/usr/local/bin/$bin"
  fi
done

# 4. Guest kernel, guest root image and the default busybox image (cached by input hash).
say "guest assets (the first build of the kernel takes several minutes)"
node dist/src/cli/main.js image build

# 5. containerd: register the runtime and make sure it runs.
if [ -f scripts/install-shim.sh ]; then
  bash scripts/install-shim.sh
fi
if ! ctr version >/dev/null 2>&1; then
  say "starting containerd"
  mkdir -p /var/log/hako
  nohup containerd >>/var/log/hako/containerd.log 2>&1 </dev/null &
  for _ in $(seq 1 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
  ctr version >/dev/null 2>&1 || { echo "setup: containerd did not start; see /var/log/hako/containerd.log" >&2; exit 1; }
fi
# 6. Networking: `ctr run --cni` finds Debian's plugins and the hako network (scripts/setup-cni.sh).
bash scripts/setup-cni.sh
# The bridge plugin turns forwarding on itself when it gives the bridge a gateway (isGateway, as
# the hako network does); setup turns it on too, for other configurations (a user's, ptp).
if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then
  say "enabling net.ipv4.ip_forward (NAT for container networks; not persisted across reboots)"
  echo 1 >/proc/sys/net/ipv4/ip_forward   # what sysctl -w does, without needing procps
fi
say "ready"
