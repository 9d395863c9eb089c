#!/usr/bin/env bash
# Installs the Debian packages zeropool needs to run its tests or benchmarks.
#
# usage: scripts/deps.sh [test|bench|fuzz|numa|all]     (default: test)
#
# Fast no-op when everything is installed. As root, installs what is missing
# with apt-get; otherwise prints the exact sudo command and exits 1.
# On a system without dpkg it only lists what it would need and exits 0.
set -euo pipefail

what=${1:-test}
# libzeropool-codec's engines (each optional to the build; tests and CI build all)
codec_pkgs=(zlib1g-dev libdeflate-dev libisal-dev libzstd-dev liblz4-dev)
test_pkgs=(cmake pkg-config libcmocka-dev valgrind libuv1-dev liburing-dev  # these two: the async examples
           "${codec_pkgs[@]}" gzip zstd lz4 python3  # the tools: the codec interop tests
           pigz  # and test_zpz, which checks zpz against gzip, pigz, zstd and lz4
           groff-base man-db abigail-tools)  # the manual's tests, the ABI check
# the allocators the benchmark compares against, DPDK (its rte_mempool is
# the dpdk32/dpdk256 columns; without it they are skipped), plotting, and
# zlib (the objects_zlib row pools z_stream objects; without it the row is
# skipped)
bench_pkgs=(libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev libdpdk-dev
            gnuplot-nox zlib1g-dev)
# the NUMA VM tests: a static libc for the test programs, and what numa-vm
# boots them with (it installs these itself too, and a kernel image when
# /boot has none)
numa_pkgs=(libc6-dev qemu-system-x86 busybox-static cpio xz-utils binutils)
optional_pkgs=()  # installed when the archive has them, never a failure

case $what in
    test) want=("${test_pkgs[@]}") ;;
    fuzz) want=(cmake clang libclang-rt-14-dev pkg-config "${codec_pkgs[@]}") ;;
    numa) want=("${test_pkgs[@]}" "${numa_pkgs[@]}") ;;
    bench | all) want=("${test_pkgs[@]}" "${bench_pkgs[@]}")
                 optional_pkgs=(linux-perf) ;;
    *) echo "usage: $0 [test|bench|fuzz|numa|all]" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null; then
    echo "deps.sh: not a Debian system; make sure these (or their equivalents)" \
         "are installed: ${want[*]}" >&2
    exit 0
fi

installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == *" ok installed" ]]
}

missing=()
for p in "${want[@]}"; do
    installed "$p" || missing+=("$p")
done
missing_opt=()
for p in "${optional_pkgs[@]}"; do
    installed "$p" || missing_opt+=("$p")
done

[[ ${#missing[@]} -eq 0 && ${#missing_opt[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
    if [[ ${#missing[@]} -eq 0 ]]; then
        echo "deps.sh: optional, for profiling: sudo apt-get install ${missing_opt[*]}" >&2
        exit 0
    fi
    echo "deps.sh: missing packages; install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT

apt_install() {
    apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1
}

if [[ ${#missing[@]} -gt 0 ]]; then
    echo "deps.sh: installing ${missing[*]}" >&2
    if ! apt_install "${missing[@]}"; then
        echo "deps.sh: install failed; running apt-get update and retrying" >&2
        apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
        apt_install "${missing[@]}" || { cat "$log" >&2; exit 1; }
    fi
fi

for p in "${missing_opt[@]}"; do
    # Only try what the package lists offer: no apt-get update for an extra.
    if apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]' &&
       apt_install "$p"; then
        echo "deps.sh: installed optional $p" >&2
    else
        echo "deps.sh: optional $p is not available; continuing without it" >&2
    fi
done
exit 0
