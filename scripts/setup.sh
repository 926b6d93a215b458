#!/usr/bin/env bash
# Installs everything overlayts needs on Debian bookworm (as root), builds it,
# and, unless --no-demo is given, mounts a demo layer stack:
#   /tmp/overlayts-demo/{lower1,lower2,upper,work}  ->  /tmp/overlayts-demo/merged
# Unmount the demo with: node bin/overlayts.js umount /tmp/overlayts-demo/merged
set -euo pipefail
cd "$(dirname "$0")/.."

demo=1
[ "${1:-}" = "--no-demo" ] && demo=0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# libfuse2 + headers: the patched fuse-native binding is built from source against them.
# fuse3: fusermount3 for non-root unmounts. attr: getfattr/setfattr (tests).
# fuse-overlayfs, unionfs-fuse: the peers the benchmark compares against.
# podman, runc, busybox-static: the podman test and bench (a real client; runc
# as its runtime, busybox-static for an image made on the spot), uidmap for
# rootless podman (newuidmap/newgidmap).
pkgs="libfuse2 libfuse-dev fuse3 pkg-config attr fuse-overlayfs unionfs-fuse podman runc busybox-static uidmap"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
# Building needs no /dev/fuse (a `docker build` never has it); mounting does.
if [ ! -e /dev/fuse ]; then
  echo "setup: warning: /dev/fuse is missing: building anyway, but nothing mounts until it is there" \
    "(modprobe fuse; in a container: --device /dev/fuse)" >&2
  [ "$demo" = 0 ] || { echo "setup: no demo without /dev/fuse (--no-demo skips it)" >&2; exit 1; }
fi

npm ci --no-audit --no-fund
npm run build
# /usr/local/bin/overlayts: the command, and the helper `mount -t fuse.overlayts`
# and fstab run, with this node named by absolute path (mount(8) runs its
# helpers without PATH; see scripts/install-cli.sh).
$SUDO sh scripts/install-cli.sh /usr/local/bin/overlayts "$(command -v node)"
# /usr/local/bin/overlayts-mount: the same mount with one Node start-up (podman's mount_program).
$SUDO ln -sfn "$PWD/bin/overlayts-mount" /usr/local/bin/overlayts-mount

if [ "$demo" = 1 ]; then
  d=/tmp/overlayts-demo
  if grep -q " $d/merged " /proc/self/mounts; then node bin/overlayts.js umount "$d/merged"; fi
  rm -rf "$d"
  mkdir -p "$d"/{lower1,lower2,upper,work,merged}
  # lower2 is the bottom image layer, lower1 sits on it and deletes or hides things.
  mkdir -p "$d/lower2/etc" "$d/lower2/app" "$d/lower1/app"
  echo "from the base layer" > "$d/lower2/etc/motd"
  echo "old config" > "$d/lower2/app/config"
  echo "removed by lower1" > "$d/lower2/app/obsolete"
  echo "new config" > "$d/lower1/app/config"
  mknod "$d/lower1/app/obsolete" c 0 0                       # a whiteout: hides lower2's file
  node bin/overlayts.js mount -o "lowerdir=$d/lower1:$d/lower2,upperdir=$d/upper,workdir=$d/work" \
    --log-file "$d/overlayts.log" "$d/merged"
  echo "mounted $d/merged:"
  ls -la "$d/merged" "$d/merged/app"
  echo "unmount with: node bin/overlayts.js umount $d/merged"
fi
