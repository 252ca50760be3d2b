#!/usr/bin/env bash
# Usage: vmtest/fetch-kernel.sh KERNEL CACHEDIR
#   KERNEL: 5.10 | 6.1 | 6.12 | 6.12-trixie | 6.1-arm64
#     5.10         Debian 11 "bullseye": linux-image-5.10.0-30-cloud-amd64-unsigned (5.10.218),
#                  pinned: newer 5.10 builds the bullseye-security index lists are gone
#                  from the archive (404)
#     6.1          Debian 12 "bookworm": the newest linux-image-6.1.0-N-cloud-amd64-unsigned
#     6.12         Debian 12 "bookworm": the newest linux-image-6.12.N+deb12-cloud-amd64-unsigned
#     6.12-trixie  Debian 13 "trixie":   the newest linux-image-6.12.N+deb13-cloud-amd64-unsigned
#     6.1-arm64    Debian 12 "bookworm": the newest linux-image-6.1.0-N-cloud-arm64-unsigned, with
#                  busybox-static for arm64 unpacked beside it (CACHEDIR/6.1-arm64/bin/busybox)
# Resolves the package with apt through a private sources list and state directory
# under CACHEDIR (the host's apt configuration is neither read for sources nor
# changed), downloads it, unpacks it (dpkg -x, nothing is installed) under
# CACHEDIR/KERNEL, and prints the path of its vmlinuz on stdout. All other output
# goes to stderr.
set -euo pipefail

die() { echo "fetch-kernel: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 KERNEL CACHEDIR"
series=$1
cache=$2

arch=amd64 extra=
case $series in
  5.10)        suites="bullseye bullseye-security" re='^linux-image-5\.10\.0-30-cloud-amd64-unsigned$' ;;
  6.1)         suites="bookworm bookworm-security" re='^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' ;;
  6.12)        suites="bookworm bookworm-security" re='^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$' ;;
  6.12-trixie) suites="trixie trixie-security"     re='^linux-image-6\.12\.[0-9]+\+deb13-cloud-amd64-unsigned$' ;;
  6.1-arm64)   suites="bookworm bookworm-security" re='^linux-image-6\.1\.0-[0-9]+-cloud-arm64-unsigned$'
               arch=arm64 extra=busybox-static ;;
  *) die "unknown kernel '$series' (want 5.10, 6.1, 6.12, 6.12-trixie or 6.1-arm64)" ;;
esac

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
dest=$cache/$series

# The mirror this machine already uses (deb822 or one-line sources), else Debian's.
mirror() {
  local m
  m=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null |
    grep -v security | head -n1 | tr -d ' ' || true)
  echo "${m:-http://deb.debian.org/debian}"
}

# A private apt: its own sources list, lists and cache for these suites.
apt_dir=$cache/apt/${suites%% *}-$arch
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
m=$(mirror)
m=${m%/}
{
  for s in $suites; do
    if [[ $s == *-security ]]; then
      echo "deb ${m%/debian}/debian-security $s main"
    else
      echo "deb $m $s main"
    fi
  done
} >"$apt_dir/sources.list"
apt_opts=(
  -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache"
  -o Dir::State::Status=/dev/null -o APT::Sandbox::User=root
  -o Debug::NoLocking=1 -o APT::Architecture=$arch -o APT::Architectures::=$arch
)
apt_private() { "$1" "${apt_opts[@]}" "${@:2}"; }

# Newest package name with an installable candidate, as "NAME VERSION".
resolve() {
  local pkg ver
  for pkg in $(apt_private apt-cache search --names-only "$re" 2>/dev/null | awk '{print $1}' | sort -rV); do
    ver=$(apt_private apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -n "$ver" ] && [ "$ver" != "(none)" ]; then echo "$pkg $ver"; return; fi
  done
}

# apt output on stdout would corrupt our result, hence >&2 everywhere.
update() {
  echo "fetch-kernel: apt-get update of $suites (private lists under $apt_dir)" >&2
  apt_private apt-get update -qq >&2
}

vmlinuz() {
  local f
  for f in "$dest"/boot/vmlinuz-*; do [ -f "$f" ] && { echo "$f"; return 0; }; done
  return 1
}

# A kernel already unpacked stays in use unless the archive has a newer one: a run
# without network, or a mirror that dropped it, still finds it.
found=$(resolve)
if [ -z "$found" ]; then update || true; found=$(resolve); fi
if [ -z "$found" ]; then
  if [ -f "$dest/.package" ] && vmlinuz >/dev/null; then
    echo "fetch-kernel: no package list; using cached $(cat "$dest/.package")" >&2
    vmlinuz
    exit 0
  fi
  die "no package matching $re in $suites"
fi
read -r pkg ver <<<"$found"
stamp="$pkg=$ver"

if [ -f "$dest/.package" ] && [ "$(cat "$dest/.package")" = "$stamp" ] && vmlinuz >/dev/null; then
  echo "fetch-kernel: using cached $stamp" >&2
  vmlinuz
  exit 0
fi

echo "fetch-kernel: fetching $stamp" >&2
work=$(mktemp -d "$cache/.fetch-$series.XXXXXX")
trap 'rm -rf "$work"' EXIT

download() { (cd "$work" && apt_private apt-get download -q "$pkg=$ver" $extra >&2); }
if ! download; then
  # Package lists can be stale (the mirror dropped that version): refresh and re-resolve once.
  update
  found=$(resolve)
  [ -n "$found" ] || die "no package matching $re in $suites after apt-get update"
  read -r pkg ver <<<"$found"
  stamp="$pkg=$ver"
  download || die "apt-get download $stamp failed"
fi

for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/root"; done
echo "$stamp" >"$work/root/.package"
# Swap in the new tree only once it is complete, so an interrupted run never leaves a
# half-extracted kernel that a later run would trust.
rm -rf "$dest"
mv "$work/root" "$dest"

vmlinuz || die "no boot/vmlinuz-* in $pkg"
