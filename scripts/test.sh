#!/usr/bin/env bash
# npm test: set up what the tests need, then run every tier (unit, integration with
# real QEMU, e2e with real containerd). A tier that fails or cannot run fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "npm test: setup failed" >&2; exit 1; }

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
status=0
for tier in unit integration e2e; do
  printf '\n=== tier: %s ===\n' "$tier"
  start=$(date +%s)
  if ! node scripts/run-tests.mjs "$tier" --test-reporter=spec --test-reporter-destination=stdout \
       --test-reporter=tap --test-reporter-destination="$reports/$tier.tap"; then
    echo "=== tier $tier FAILED ===" >&2
    status=1
  fi
  echo "=== tier $tier took $(( $(date +%s) - start )) s ==="
done

pass=0; fail=0; skip=0
for f in "$reports"/*.tap; do
  [ -f "$f" ] || continue
  p=$(awk '/^# pass /{print $3}' "$f" | tail -1); pass=$((pass + ${p:-0}))
  x=$(awk '/^# fail /{print $3}' "$f" | tail -1); fail=$((fail + ${x:-0}))
  s=$(awk '/^# skipped /{print $3}' "$f" | tail -1); skip=$((skip + ${s:-0}))
done
echo
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -gt 0 ] && status=1
exit $status
