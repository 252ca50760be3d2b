#!/usr/bin/env bash
# Usage: vmtest/fetch-kernel.sh SERIES CACHEDIR
#   SERIES: 6.1 | 6.12
# Resolves the newest Debian cloud kernel package of SERIES with apt, downloads and
# unpacks it (dpkg -x, nothing is installed) under CACHEDIR/SERIES, and prints the
# path of its vmlinuz on stdout. All other output goes to stderr.
set -euo pipefail

die() { echo "fetch-kernel: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 SERIES CACHEDIR"
series=$1
cache=$2

case $series in
  6.1)  re='^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' ;;
  6.12) re='^linux-image-6\.12\.[0-9]+\+deb[0-9]+-cloud-amd64-unsigned$' ;;
  *) die "unknown series '$series' (want 6.1 or 6.12)" ;;
esac

# Newest package name with an installable candidate, as "NAME VERSION".
resolve() {
  local pkg ver
  for pkg in $(apt-cache search --names-only "$re" | awk '{print $1}' | sort -rV); do
    ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    if [ -n "$ver" ] && [ "$ver" != "(none)" ]; then echo "$pkg $ver"; return; fi
  done
}

# apt output on stdout would corrupt our result, hence >&2 everywhere.
update() { echo "fetch-kernel: running apt-get update" >&2; apt-get update -qq >&2; }

found=$(resolve)
if [ -z "$found" ]; then update; found=$(resolve); fi
[ -n "$found" ] || die "no package matching $re in apt"
read -r pkg ver <<<"$found"

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
dest=$cache/$series
stamp="$pkg=$ver"

vmlinuz() {
  local f
  for f in "$dest"/boot/vmlinuz-*; do [ -f "$f" ] && { echo "$f"; return 0; }; done
  return 1
}

if [ -f "$dest/.package" ] && [ "$(cat "$dest/.package")" = "$stamp" ] && [ -n "$(vmlinuz)" ]; then
  echo "fetch-kernel: using cached $stamp" >&2
  vmlinuz
  exit 0
fi

echo "fetch-kernel: fetching $stamp" >&2
work=$(mktemp -d "$cache/.fetch-$series.XXXXXX")
trap 'rm -rf "$work"' EXIT

download() {
  # Sandbox user root: as root, apt would otherwise try to drop to _apt, which can't
  # write into an arbitrary CACHEDIR (it only warns, but noisily).
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2)
}
if ! download; then
  # Package lists can be stale (mirror dropped the old version): refresh and re-resolve once.
  update
  read -r pkg ver <<<"$(resolve)"
  stamp="$pkg=$ver"
  download || die "apt-get download $stamp failed"
fi

debs=("$work"/*.deb)
dpkg -x "${debs[0]}" "$work/root"
echo "$stamp" >"$work/root/.package"
# Swap in the new tree only once it is complete, so an interrupted run never leaves a
# half-extracted kernel that a later run would trust.
rm -rf "$dest"
mv "$work/root" "$dest"

vmlinuz || die "no boot/vmlinuz-* in $pkg"
