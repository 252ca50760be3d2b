#!/usr/bin/env bash
# Usage: vmtest/matrix.sh TEST_BINARY [KERNEL_SERIES...] 
#
# Runs the integration tests inside qemu on Debian's cloud kernels
# (default: 6.1 and 6.12), once per attach mode: oom_kill_process() hooked
# with fentry, with kprobe, and not at all (mark_victim only). Exits non-zero
# if any run fails. TEST_BINARY is a static `go test -c` build of ./integration.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: $0 TEST_BINARY [SERIES...]}
shift
series=("$@")
[ ${#series[@]} -gt 0 ] || series=(6.1 6.12)
modes=(${VMTEST_MODES:-fentry kprobe none})
cache=${VMTEST_CACHE:-$here/../.cache/vmtest}

declare -a results
failed=0
for s in "${series[@]}"; do
  kernel=$("$here/fetch-kernel.sh" "$s" "$cache")
  for mode in "${modes[@]}"; do
    echo "=== vmtest: kernel $s, oom_kill_process hook: $mode"
    start=$SECONDS
    set +e
    "$here/run.sh" --mem 1024 --timeout 900 \
      --env OOMTRACE_VM=1 --env OOMTRACE_TEST_KILL_HOOK="$mode" \
      "$kernel" "$bin" -test.v -test.count=1 ${VMTEST_RUN:+-test.run "$VMTEST_RUN"}
    rc=$?
    set -e
    verdict=PASS
    if [ $rc -ne 0 ]; then verdict="FAIL (exit $rc)"; failed=$((failed + 1)); fi
    results+=("kernel $s  hook $mode: $verdict in $((SECONDS - start))s")
  done
done
echo "=== vmtest summary"
printf '  %s\n' "${results[@]}"
total=${#results[@]}
echo "vmtest: $((total - failed)) passed, $failed failed"
[ $failed -eq 0 ]
