#!/bin/bash
# Installs containerd-shim-hako-v2 for containerd: a /usr/local/bin symlink, the CRI runtime
# `hako` in /etc/containerd/config.toml (added only if absent), and a containerd (re)start.
# Usage: scripts/install-shim.sh [--restart=if-changed|always|never]
# Note: `ctr run --runtime io.containerd.hako.v2` needs only the binary on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
restart=if-changed
for a in "$@"; do
  case "$a" in
    --restart=*) restart="${a#--restart=}" ;;
    *) echo "install-shim: unknown argument $a" >&2; exit 2 ;;
  esac
done
[ -f dist/src/shim/main.js ] || npm run build --silent
RESTART="$restart" node --input-type=module -e '
import { installShim } from "./dist/src/shim/install.js";
import { Logger, streamSink } from "./dist/src/log/index.js";
const r = await installShim({ restart: process.env.RESTART, log: new Logger(streamSink(process.stderr)) });
console.log(`shim: ${r.link}${r.linkChanged ? " (linked)" : ""}; config: ${r.configChanged ? "hako runtime added" : "unchanged"}; containerd: ${r.containerd}`);
'
