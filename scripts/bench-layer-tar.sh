#!/usr/bin/env bash
# Memory and throughput of `overlayts commit` and `overlayts unpack` on a
# generated upper of large files (issue 11: flat memory for a 2 GiB layer).
#
#   bash scripts/bench-layer-tar.sh [SIZE_MIB ...]      (default: 100 2048)
#
# For each size: an upper of 8 files of SIZE/8 MiB of random data over a
# one-file lower, then (page cache dropped before each run)
#   commit --output layer.tar, commit --output layer.tar.gz, unpack layer.tar
# each under /usr/bin/time -v: peak RSS of the CLI (Node included) and
# MB/s of tar bytes. Needs root (drop_caches) and ~4x the largest size free
# under ${BENCH_DIR:-/tmp/overlayts-bench-layer-tar}, which it removes at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="node bin/overlayts.js"
ROOT="${BENCH_DIR:-/tmp/overlayts-bench-layer-tar}"
trap 'rm -rf "$ROOT"' EXIT
sizes=("$@"); [ ${#sizes[@]} -eq 0 ] && sizes=(100 2048)

measure () { # label tar-bytes command...
  local label=$1 bytes=$2; shift 2
  sync; echo 3 > /proc/sys/vm/drop_caches
  local out; out=$( { /usr/bin/time -v "$@" > /dev/null; } 2>&1 )
  local rss secs
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' <<<"$out")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' <<<"$out" | awk -F: '{ s=0; for (i=1;i<=NF;i++) s=s*60+$i; print s }')
  printf '%-28s peak RSS %7.1f MiB  %7.2f s  %7.0f MB/s\n' "$label" "$(bc -l <<<"$rss/1024")" "$secs" "$(bc -l <<<"$bytes/1000000/$secs")"
}

for size in "${sizes[@]}"; do
  d="$ROOT/$size"; rm -rf "$d"; mkdir -p "$d/lower" "$d/upper"
  echo base > "$d/lower/base"
  per=$((size * 1024 / 8)) # KiB
  for i in 1 2 3 4 5 6 7 8; do head -c "$((per * 1024))" /dev/urandom > "$d/upper/large-$i"; done
  echo "== upper of $size MiB (8 files of $per KiB)"
  o="lowerdir=$d/lower,upperdir=$d/upper"
  $BIN commit -o "$o" --output "$d/warm.tar" > /dev/null && rm "$d/warm.tar"   # warm Node's own files
  measure "commit -> .tar" "$((size * 1024 * 1024))" $BIN commit -o "$o" --output "$d/layer.tar"
  tarbytes=$(stat -c %s "$d/layer.tar")
  measure "commit -> .tar.gz" "$tarbytes" $BIN commit -o "$o" --output "$d/layer.tar.gz"
  rm -f "$d/layer.tar.gz"
  measure "unpack .tar" "$tarbytes" $BIN unpack "$d/layer.tar" "$d/unpacked"
  rm -rf "$d"
done
