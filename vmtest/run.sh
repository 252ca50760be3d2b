#!/usr/bin/env bash
# Usage: vmtest/run.sh [--mem MB] [--timeout SECONDS] [--env K=V]... KERNEL BINARY [ARGS...]
#
# Boots KERNEL in qemu with a throwaway initramfs (busybox + BINARY) and runs
# BINARY ARGS... as the VM's only program, with cgroup2 (+memory), tracefs, debugfs and
# bpffs mounted and no swap. The console is streamed to stdout. Exit status: BINARY's
# exit code; 124 on timeout; 125 if the VM ended without reporting one (panic, crash).
set -euo pipefail

mem=1024 tmo=600 envs=()
die() { echo "vmtest: $*" >&2; exit 125; }
usage() { sed -n '2p' "$0" | sed 's/^# //' >&2; exit 125; }

while [ $# -gt 0 ]; do
  case $1 in
    --mem) mem=${2:?}; shift 2 ;;
    --timeout) tmo=${2:?}; shift 2 ;;
    --env) envs+=("${2:?}"); shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    -*) echo "vmtest: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || usage
kernel=$1 binary=$2
shift 2
busybox=${VMTEST_BUSYBOX:-/bin/busybox}

[[ $mem =~ ^[0-9]+$ ]] || die "--mem wants a number of MiB, got '$mem'"
[[ $tmo =~ ^[0-9]+$ ]] || die "--timeout wants a number of seconds, got '$tmo'"
[ -r "$kernel" ] || die "kernel '$kernel' not readable"
[ -x "$binary" ] || die "binary '$binary' not found or not executable"

# The initramfs has no libc or loader: anything with a PT_INTERP header can't run.
need_static() {
  if ! head -c4 "$1" | grep -q 'ELF'; then die "$1 is not an ELF binary"; fi
  if command -v readelf >/dev/null; then
    if readelf -lW "$1" | grep -q 'INTERP'; then
      die "$1 is dynamically linked; build it static (e.g. CGO_ENABLED=0 go build)"
    fi
  elif file -L "$1" | grep -q 'dynamically linked'; then
    die "$1 is dynamically linked; build it static (e.g. CGO_ENABLED=0 go build)"
  fi
}
need_static "$binary"
need_static "$busybox"   # the dynamic Debian "busybox" package would panic the VM

# The guest's architecture is the test binary's; busybox must match it
# (VMTEST_BUSYBOX names one of another architecture).
elf_arch() { readelf -h "$1" | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}'; }
arch=$(elf_arch "$binary")
[ "$(elf_arch "$busybox")" = "$arch" ] || die "$busybox is for $(elf_arch "$busybox"), $binary for $arch (set VMTEST_BUSYBOX)"
case $arch in
  *X86-64*) qemu=(qemu-system-x86_64 -cpu max) console=ttyS0 ;;
  *AArch64*) qemu=(qemu-system-aarch64 -M virt -cpu max) console=ttyAMA0 ;;
  *) die "no qemu for a $arch guest" ;;
esac

# POSIX single-quoting ('...' with ' written as '\''): unlike bash's printf %q it never
# yields $'...', so busybox ash reads it back exactly, newlines and all.
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmtest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
name=$(basename "$binary")
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,oomtrace-test}
cp "$busybox" "$root/bin/busybox"
# Applet symlinks at build time (busybox --install needs /proc at boot).
# A busybox of another architecture can't run here: the host's, of the same
# Debian release, names the same applets.
applets=$("$busybox" --list-full 2>/dev/null || /bin/busybox --list-full)
for applet in $applets; do
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
cp "$binary" "$root/oomtrace-test/$name"

{
  cat <<'INIT'
#!/bin/busybox sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/tmp
m() { # m FSTYPE DIR: mount, report (but survive) failure
  mkdir -p "$2" && mount -t "$1" "$1" "$2" || echo "vmtest-init: mount -t $1 $2 failed"
}
m proc /proc
m sysfs /sys
m devtmpfs /dev
m tmpfs /tmp
m tmpfs /run
m tracefs /sys/kernel/tracing
m debugfs /sys/kernel/debug
m bpf /sys/fs/bpf
m cgroup2 /sys/fs/cgroup
for c in memory pids cpu; do
  if grep -qw "$c" /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "vmtest-init: cannot enable +$c"
  else
    echo "vmtest-init: cgroup controller $c not available"
  fi
done
# One memory cgroup held for the VM's life, as systemd's slices are on any real host.
# The kernel flips static keys (memcg_bpf_enabled_key, memcg_sockets_enabled_key) as
# the number of non-root memcgs goes between 0 and 1, so without it every test's
# scratch cgroup would rewrite the text of the BPF and socket allocation paths. Under
# qemu's TCG that text patching races the other vCPU: seen on 6.12, an int3 trap in
# bpf_prog_realloc() executed after the patch had completed ("Fatal exception").
mkdir -p /sys/fs/cgroup/vmtest-held || echo "vmtest-init: cannot create the held cgroup"
# Nothing should swap (OOM tests need hard limits), but be explicit about it.
swapoff -a 2>/dev/null
if [ "$(wc -l </proc/swaps)" -gt 1 ]; then echo "vmtest-init: swap is active!"; fi
echo "vmtest-init: $(cat /proc/sys/kernel/osrelease) up $(cut -d' ' -f1 /proc/uptime)s, running test"
INIT
  for kv in "${envs[@]}"; do
    k=${kv%%=*}
    [[ $kv == *=* && $k =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad --env '$kv' (want K=V)"
    echo "export $k=$(q "${kv#*=}")"
  done
  echo "cd /tmp"
  printf '%s' "$(q "/oomtrace-test/$name")"
  for a in "$@"; do printf ' %s' "$(q "$a")"; done
  echo
  cat <<'INIT'
rc=$?
echo "VMTEST-EXIT-CODE=$rc"
poweroff -f
INIT
} >"$root/init"
chmod 755 "$root/init"

(cd "$root" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 >"$tmp/initrd.gz"

# KVM only if the CPU advertises vmx/svm too: in a VM without nested virtualisation
# /dev/kvm can exist and open fine, yet the guest dies on the first BMI2 instruction
# ("KVM internal error ... emulation failure") and qemu hangs until the timeout.
# VMTEST_ACCEL=kvm|tcg overrides the guess.
accel=${VMTEST_ACCEL:-tcg}
if [ -z "${VMTEST_ACCEL:-}" ] && [ "$console" = ttyS0 ] && [ "$(uname -m)" = x86_64 ] &&
  [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
  accel=kvm
fi
# Single-threaded TCG: both vCPUs on one host thread, taking turns. qemu's
# multi-threaded TCG (its default for x86 on x86) lets a vCPU run code the
# other vCPU's kernel is patching (text_poke_bp: int3, sync, new bytes, as
# tracepoint and static-key flips do while syscalls run on the other CPU):
# on Debian's 5.10, attaching the sys_exit hook left a vCPU spinning at a
# jump-label site in syscall_exit_to_user_mode() until the soft-lockup
# watchdog fired (4 of 6 runs of the alloc_refused tests; 0 of 6 with one
# thread), and on 6.12 a stale int3 panicked in bpf_prog_realloc(). Real
# CPUs follow the patching protocol; the emulator's cross-vCPU code cache
# did not. VMTEST_TCG_THREAD=multi brings the old behaviour back.
accel_opt=$accel
if [ "$accel" = tcg ]; then
  accel_opt="tcg,thread=${VMTEST_TCG_THREAD:-single}"
fi

# psi=1: Debian's kernels build pressure stall information in but off
# (CONFIG_PSI_DEFAULT_DISABLED); the tests read oom.memcg.psi with it on.
# Ctrl-C stops qemu (same process group) and qemu exits 0; say so rather than "panic".
trap 'echo "vmtest: interrupted" >&2; exit 130' INT
start=$SECONDS
set +e
# --foreground keeps qemu in our process group, so Ctrl-C reaches it. stdin from /dev/null:
# qemu must not eat the caller's stdin or put the terminal in raw mode.
# sed: drop serial CRs (log parsers choke on "PASS\r") and SeaBIOS's terminal escapes
# (ESC[?7l would leave the user's terminal without line wrap; ESC c, a reset,
# stands where a newline belongs).
timeout --foreground -k 10 "$tmo" "${qemu[@]}" \
  -accel "$accel_opt" -smp 2 -m "$mem" \
  -kernel "$kernel" -initrd "$tmp/initrd.gz" \
  -append "console=$console rdinit=/init panic=-1 psi=1 quiet loglevel=${VMTEST_LOGLEVEL:-3}" \
  -nographic -no-reboot -nic none </dev/null \
  | sed -u -e 's/\r$//' -e 's/\x1bc/\n/g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' \
  | tee "$tmp/console.log"
qrc=${PIPESTATUS[0]}
set -e
took=$((SECONDS - start))

if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
  echo "vmtest: TIMEOUT after ${tmo}s ($(basename "$kernel"))" >&2
  exit 124
fi
code=$(grep -ao 'VMTEST-EXIT-CODE=[0-9]*' "$tmp/console.log" | tail -n1 | cut -d= -f2 || true)
if [ -z "$code" ]; then
  echo "vmtest: VM ended (qemu exit $qrc) after ${took}s without an exit code: kernel panic or init failure? ($(basename "$kernel"))" >&2
  exit 125
fi
echo "vmtest: $name exited $code on $(basename "$kernel") in ${took}s ($accel)" >&2
exit "$code"
