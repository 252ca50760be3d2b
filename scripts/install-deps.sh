#!/usr/bin/env bash
# Installs what building the BPF objects and running the tests need, from
# Debian's packages, when it is missing. Quick and quiet when all is there.
set -euo pipefail

# command-or-file needed -> Debian package providing it
declare -A need=(
  [clang]=clang
  [llvm-strip]=llvm
  [/usr/include/bpf/bpf_helpers.h]=libbpf-dev
  [qemu-system-x86_64]=qemu-system-x86
  [qemu-system-aarch64]=qemu-system-arm
  [/bin/busybox]=busybox-static
  [cpio]=cpio
  [readelf]=binutils
  [git]=git
  [/usr/sbin/dockerd]=docker.io
  [setpriv]=util-linux
  [strace]=strace
  [systemd-analyze]=systemd
  [ctr]=containerd
  [vagrant]=vagrant
  [bpftrace]=bpftrace
  [/usr/lib/python3/dist-packages/yaml/__init__.py]=python3-yaml
)

missing=()
for what in "${!need[@]}"; do
  if [[ $what == /* ]]; then
    [ -e "$what" ] && continue
  else
    command -v "$what" >/dev/null && continue
  fi
  missing+=("${need[$what]}")
done
# The VM's initramfs needs a static busybox; Debian's plain "busybox" is dynamic.
if [ -e /bin/busybox ] && readelf -lW /bin/busybox 2>/dev/null | grep -q INTERP; then
  missing+=(busybox-static)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
  echo "install-deps: no go on PATH (Go 1.26 or newer; Debian's golang is too old)" >&2
  exit 1
fi
