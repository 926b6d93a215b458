#!/bin/sh
# Writes DEST (default /usr/local/bin/overlayts): the `overlayts` command, and
# the helper `mount -t fuse.overlayts` and fstab run. A small sh script that
# runs this checkout's bin/overlayts.js with node named by absolute path
# (NODE, default: the node on PATH now), because a helper started by mount(8)
# gets no PATH at all:
#   mount(8) (libmount) looks for /sbin/mount.fuse.overlayts, then /sbin/mount.fuse
#   (fuse3's mount.fuse3); that runs `/bin/sh -c "overlayts SOURCE MERGED -o OPTS"`
#   without PATH, so sh finds overlayts on its built-in default path (which has
#   /usr/local/bin), but `#!/usr/bin/env node` would look for node only in
#   /bin:/usr/bin, and node images and nvm put it elsewhere.
# Usage: scripts/install-cli.sh [DEST [NODE]]
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd -P)
dest=${1:-/usr/local/bin/overlayts}
node=${2:-$(command -v node || true)}
[ -n "$node" ] || { echo "install-cli: node is not on PATH; give its path as the second argument" >&2; exit 1; }
case $node in /*) ;; *) node=$(cd "$(dirname "$node")" && pwd -P)/$(basename "$node") ;; esac
[ -x "$node" ] || { echo "install-cli: $node is not an executable" >&2; exit 1; }

# Single-quoted for sh: a ' inside becomes '\''.
quote () { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

tmp="$dest.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<EOF
#!/bin/sh
# overlayts, written by scripts/install-cli.sh: node by absolute path, since
# mount(8) runs this helper without PATH.
exec $(quote "$node") $(quote "$repo/bin/overlayts.js") "\$@"
EOF
chmod 755 "$tmp"
mv -f "$tmp" "$dest"
trap - EXIT
