#!/usr/bin/env bash
# Makes `ctr run --cni` work with Debian's CNI plugins: ctr looks for plugins in /opt/cni/bin
# and for network configurations in /etc/cni/net.d. Idempotent; never overwrites anything:
# - links each plugin of /usr/lib/cni into /opt/cni/bin where no file of that name exists;
# - writes /etc/cni/net.d/10-hako.conflist (the hako network, same bridge and subnet as
#   `hako run`, so both kinds of containers share one bridge and one address pool) only when
#   that directory holds no *.conf, *.conflist or *.json yet.
# Usage: scripts/setup-cni.sh [PLUGIN_DIR [CONF_DIR [SOURCE_DIR]]]   (after npm run build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin_dir=${1:-/opt/cni/bin}
conf_dir=${2:-/etc/cni/net.d}
src_dir=${3:-/usr/lib/cni}

say() { printf '\033[1msetup-cni:\033[0m %s\n' "$*" >&2; }

if [ ! -d "$src_dir" ]; then
  echo "setup-cni: $src_dir does not exist (apt-get install containernetworking-plugins)" >&2
  exit 1
fi
mkdir -p "$bin_dir" "$conf_dir"

linked=()
for plugin in "$src_dir"/*; do
  [ -f "$plugin" ] && [ -x "$plugin" ] || continue
  name=$(basename "$plugin")
  # -L as well as -e: a dangling symlink is someone's too.
  if [ ! -e "$bin_dir/$name" ] && [ ! -L "$bin_dir/$name" ]; then
    ln -s "$plugin" "$bin_dir/$name"
    linked+=("$name")
  fi
done
if [ ${#linked[@]} -gt 0 ]; then say "linked into $bin_dir: ${linked[*]}"; fi

shopt -s nullglob
existing=("$conf_dir"/*.conf "$conf_dir"/*.conflist "$conf_dir"/*.json)
shopt -u nullglob
target="$conf_dir/10-hako.conflist"
if [ ${#existing[@]} -eq 0 ]; then
  # Written beside the target under a name CNI loaders skip (they go by extension), then renamed.
  tmp="$conf_dir/.10-hako.conflist.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  node "$here/write-cni-conf.mjs" >"$tmp"
  chmod 0644 "$tmp"
  mv "$tmp" "$target"
  trap - EXIT
  say "wrote $target"
elif [ -f "$target" ]; then
  if want=$(node "$here/write-cni-conf.mjs" 2>/dev/null) && [ "$want" != "$(cat "$target")" ]; then
    say "kept $target, which differs from hako's [network] configuration (remove it and rerun to regenerate)"
  fi
else
  say "kept the existing CNI configuration in $conf_dir (${existing[*]##*/}); hako's network is not written"
fi
