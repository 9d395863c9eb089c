#!/usr/bin/env bash
# run-in-vm.sh [numa-vm options] -- BINARY [ARGS]: runs a statically linked
# NUMA test inside the emulated multi-node machine of numa-vm (qemu; its
# header explains the options), passing its exit status through.
#
# numa-vm is found as $NUMA_VM, else ../shared/tools/numa-vm beside the
# repository (where CI keeps it), else numa-vm on PATH. When it is missing,
# when qemu is absent and cannot be installed (no root, no sudo, no apt),
# or when the guest never reported a status (numa-vm exit 125: no kernel,
# boot failure), the test is reported SKIPPED: exit 77 with the reason,
# never a silent pass. A timeout (124) is a failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

skip() { echo "SKIPPED: $*"; exit 77; }

vm=${NUMA_VM:-}
if [[ -z $vm ]]; then
    for c in "$repo/../shared/tools/numa-vm" "$(command -v numa-vm 2>/dev/null)"; do
        [[ -n $c && -x $c ]] && { vm=$c; break; }
    done
fi
[[ -n $vm && -x $vm ]] || skip "numa-vm not found (set NUMA_VM, or keep it at ../shared/tools/numa-vm)"

if ! command -v qemu-system-x86_64 >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        skip "qemu-system-x86_64 is not installed and there is no apt-get to install it"
    fi
    if ((EUID != 0)) && ! sudo -n true 2>/dev/null; then
        skip "qemu-system-x86_64 is not installed and installing it needs root or sudo"
    fi
fi

out=$(mktemp "${TMPDIR:-/tmp}/numa-vm-out.XXXXXX")
trap 'rm -f "$out"' EXIT
NUMA_VM_QUIET=${NUMA_VM_QUIET:-1} "$vm" "$@" 2>&1 | tee "$out" | grep -v '^\[ *[0-9.]*\] '
rc=${PIPESTATUS[0]}
if ((rc == 125)) && ! grep -q '^NUMA_VM_EXIT=' "$out"; then
    tail -n 20 "$out"
    skip "numa-vm could not boot the guest (exit 125; its messages above)"
fi
exit "$rc"
