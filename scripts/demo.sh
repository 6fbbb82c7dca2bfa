#!/usr/bin/env bash
# npm run demo: set up on first use, then run a container in a VM and print what it says.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "host kernel:  $(uname -r)"
exec node bin/hako run --rm busybox -- sh -c 'echo "guest kernel: $(uname -r)"; echo "hello from a container in a hako VM"; ps'
