#!/usr/bin/env bash
# Usage: vmtest/matrix.sh TEST_BINARY [KERNEL...]
#
# Runs the integration tests inside qemu on Debian's cloud kernels (default:
# Debian 11's 5.10, Debian 12's 6.1 and 6.12, Debian 13's 6.12, and Debian 12's
# 6.1 for arm64; see fetch-kernel.sh), once per attach mode:
#   fentry      oom_kill_process() hooked with fentry/fexit, mark_victim as the kernel allows
#   kprobe      oom_kill_process() hooked with kprobe/kretprobe
#   tp_btf      oom_kill_process() not hooked, mark_victim through tp_btf only
#   tracepoint  oom_kill_process() not hooked, mark_victim through the classic tracepoint only
# An arm64 kernel runs emulated (several times slower), in kprobe mode only
# (VMTEST_ARM64_MODES): the mode with the architecture's own code, pt_regs.
# VMTEST_MODES narrows the modes, VMTEST_RUN the tests (a -test.run pattern),
# VMTEST_JOBS how many VMs run at once (default: one per CPU; under software
# emulation each VM runs its two vCPUs on one host thread, see run.sh).
# Each run's console goes to a log, printed whole when the run ends. Exits
# non-zero if any run fails. TEST_BINARY is a static `go test -c` build of
# ./integration; TEST_BINARY.arm64 its arm64 build, for arm64 kernels.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: $0 TEST_BINARY [KERNEL...]}
shift
kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(5.10 6.1 6.12 6.12-trixie 6.1-arm64)
modes=(${VMTEST_MODES:-fentry kprobe tp_btf tracepoint})
arm64_modes=(${VMTEST_ARM64_MODES:-kprobe})
cache=${VMTEST_CACHE:-$here/../.cache/vmtest}
jobs=${VMTEST_JOBS:-$(nproc)}
[ "$jobs" -ge 1 ] || jobs=1

# mode -> the hooks the tests force (see integration/tracer_test.go).
hook_env() {
  case $1 in
    fentry|kprobe) echo "--env OOMTRACE_TEST_KILL_HOOK=$1" ;;
    tp_btf|tracepoint) echo "--env OOMTRACE_TEST_KILL_HOOK=none --env OOMTRACE_TEST_MARK_HOOK=$1" ;;
    *) echo "vmtest: unknown mode '$1' (want fentry, kprobe, tp_btf or tracepoint)" >&2; return 1 ;;
  esac
}

# Fetch every kernel first, one at a time: the runs share the apt cache.
declare -A vmlinuz
for k in "${kernels[@]}"; do
  vmlinuz[$k]=$("$here/fetch-kernel.sh" "$k" "$cache")
done

logs=$(mktemp -d "${TMPDIR:-/tmp}/vmtest-matrix.XXXXXX")
trap 'rm -rf "$logs"' EXIT

run_one() { # KERNEL MODE: one VM run; its verdict line goes to $logs/KERNEL-MODE.result
  local k=$1 mode=$2 name="$1-$2" start=$SECONDS rc verdict binary=$bin tmo=900
  local -a env=()
  if [[ $k == *-arm64 ]]; then
    # The kernel's tree holds busybox for arm64 too (fetch-kernel.sh).
    binary=$bin.arm64 tmo=1800
    env=(VMTEST_BUSYBOX="$(dirname "${vmlinuz[$k]}")/../bin/busybox")
  fi
  set +e
  # shellcheck disable=SC2046 # hook_env's words are separate options
  env "${env[@]}" "$here/run.sh" --mem 1024 --timeout $tmo --env OOMTRACE_VM=1 $(hook_env "$mode") \
    "${vmlinuz[$k]}" "$binary" -test.v -test.count=1 ${VMTEST_RUN:+-test.run "$VMTEST_RUN"} \
    >"$logs/$name.log" 2>&1
  rc=$?
  set -e
  verdict=PASS
  [ $rc -eq 0 ] || verdict="FAIL (exit $rc)"
  echo "kernel $k  mode $mode: $verdict in $((SECONDS - start))s" >"$logs/$name.result"
}

report() { # NAME: print a finished run's log and verdict
  echo "=== vmtest: $(cat "$logs/$1.result")"
  cat "$logs/$1.log"
  echo "=== vmtest: end of $1"
}

declare -a order=()
for k in "${kernels[@]}"; do
  ms=("${modes[@]}")
  [[ $k == *-arm64 ]] && ms=("${arm64_modes[@]}")
  for mode in "${ms[@]}"; do
    hook_env "$mode" >/dev/null
    order+=("$k-$mode")
  done
done
# The slow emulated arm64 runs first, so they overlap the others instead of
# running alone at the end.
mapfile -t order < <(printf '%s\n' "${order[@]}" | grep -- '-arm64-' || true
  printf '%s\n' "${order[@]}" | grep -v -- '-arm64-' || true)
[ ${#order[@]} -gt 0 ] || { echo "vmtest: no runs (kernels: ${kernels[*]}, modes: ${modes[*]})" >&2; exit 1; }

start=$SECONDS
echo "=== vmtest: ${#order[@]} runs, $jobs at a time"
for name in "${order[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "${name%-*}" "${name##*-}" &
done
wait || true

failed=0
for name in "${order[@]}"; do
  report "$name"
  grep -q ': PASS in' "$logs/$name.result" || failed=$((failed + 1))
done
echo "=== vmtest summary ($((SECONDS - start))s)"
for name in "${order[@]}"; do echo "  $(cat "$logs/$name.result")"; done
# A failed run's failures again, after the summary: a CI log is often read
# from its end, where the runs' whole logs are out of sight.
for name in "${order[@]}"; do
  grep -q ': PASS in' "$logs/$name.result" && continue
  echo "=== vmtest: what failed in $name"
  # Each failed test's own lines (from its === RUN), else the log's end.
  awk '/^=== RUN/ { n = 0 } { buf[n++ % 60] = $0 }
    /^--- FAIL/ { found = 1; for (i = (n > 60 ? n - 60 : 0); i < n; i++) print buf[i % 60] }
    END { exit !found }' "$logs/$name.log" || tail -n 60 "$logs/$name.log"
done
total=${#order[@]}
echo "vmtest: $((total - failed)) passed, $failed failed"
[ $failed -eq 0 ]
