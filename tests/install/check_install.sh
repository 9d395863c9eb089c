#!/usr/bin/env bash
# Installs a zeropool build tree into a temporary prefix and proves a consumer
# builds and runs against it: (a) with pkg-config, (b) with find_package().
# Also checks that libzeropool.so exports exactly the header's zp_* functions,
# and that the installed zpz (when built) runs from the prefix.
#
# usage: check_install.sh BUILD_DIR CONSUMER_SRC_DIR
# env:   CC (compiler, default cc), ZP_SANITIZE_FLAGS (flags the build used;
#        the consumer is built with them too so the sanitizer runtime loads)
# exit:  0 pass, 1 fail, 77 skip
set -euo pipefail

build_dir=${1:?usage: check_install.sh BUILD_DIR CONSUMER_SRC_DIR}
src_dir=${2:?usage: check_install.sh BUILD_DIR CONSUMER_SRC_DIR}
cc=${CC:-cc}
read -r -a san <<<"${ZP_SANITIZE_FLAGS:-}"

step=setup
trap 'echo "check_install: FAILED at step: $step" >&2' ERR
for tool in cmake pkg-config nm "$cc"; do
    if ! command -v "$tool" >/dev/null; then
        echo "check_install: SKIP: $tool not found" >&2
        exit 77
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zp-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

step="cmake --install $build_dir --prefix $prefix"
echo "== $step"
(unset DESTDIR; cmake --install "$build_dir" --prefix "$prefix")

pc=$(find "$prefix" -name zeropool.pc -path '*/pkgconfig/*' | head -n1)
[[ -n $pc ]] || { echo "check_install: zeropool.pc was not installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
for f in "$prefix/include/zeropool.h" "$libdir/libzeropool.a" \
         "$libdir/libzeropool.so" "$libdir/libzeropool.so.0.2" \
         "$libdir/cmake/zeropool/zeropoolConfig.cmake" \
         "$libdir/cmake/zeropool/zeropoolConfigVersion.cmake"; do
    [[ -e $f ]] || { echo "check_install: missing $f" >&2; exit 1; }
done

step="exported symbols of libzeropool.so"
echo "== $step"
exported=$(nm -D --defined-only "$libdir/libzeropool.so" |
           awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u)
declared=$(grep -E '^ZP_API' "$prefix/include/zeropool.h" |
           grep -oE '\bzp_[a-z0-9_]+\(' | tr -d '(' | sort -u)
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
if [[ -n $extra || -n $missing ]]; then
    [[ -z $extra ]] || echo "check_install: exported but not in zeropool.h:" $extra >&2
    [[ -z $missing ]] || echo "check_install: in zeropool.h but not exported:" $missing >&2
    exit 1
fi
echo "$(echo "$exported" | wc -l) symbols, all declared in zeropool.h"

step="pkg-config consumer"
echo "== $step"
pkgflags=$(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs zeropool)
echo "pkg-config --cflags --libs zeropool: $pkgflags"
# shellcheck disable=SC2086  # pkg-config output is meant to be word-split
"$cc" "${san[@]}" "$src_dir/consumer.c" -o "$tmp/consumer_pc" $pkgflags
LD_LIBRARY_PATH="$libdir" "$tmp/consumer_pc"

step="find_package consumer"
echo "== $step"
cmake -S "$src_dir" -B "$tmp/consumer-build" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="${ZP_SANITIZE_FLAGS:-}" \
    -DCMAKE_EXE_LINKER_FLAGS="${ZP_SANITIZE_FLAGS:-}" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
found=$(sed -n 's/^zeropool_DIR:PATH=//p' "$tmp/consumer-build/CMakeCache.txt")
if [[ $found != "$prefix"/* ]]; then
    echo "check_install: find_package found $found, not the test prefix" >&2
    exit 1
fi
cmake --build "$tmp/consumer-build"
# The shared consumer finds libzeropool.so through its build-tree RPATH.
"$tmp/consumer-build/consumer"
"$tmp/consumer-build/consumer_static"

# libzeropool-uring, when this build made it (liburing found)
if [[ -e $libdir/libzeropool-uring.so ]]; then
    step="libzeropool-uring: exports, pkg-config, find_package"
    echo "== $step"
    for f in "$prefix/include/zeropool/uring.h" "$libdir/libzeropool-uring.a" \
             "$libdir/pkgconfig/zeropool-uring.pc" \
             "$libdir/cmake/zeropool/zeropoolUringTargets.cmake"; do
        [[ -e $f ]] || { echo "check_install: missing $f" >&2; exit 1; }
    done
    exported=$(nm -D --defined-only "$libdir/libzeropool-uring.so" |
               awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u)
    declared=$(grep -E '^ZP_URING_API' "$prefix/include/zeropool/uring.h" |
               grep -oE '\bzp_[a-z0-9_]+\(' | tr -d '(' | sort -u)
    if [[ $exported != "$declared" ]]; then
        echo "check_install: libzeropool-uring.so exports differ from uring.h:" >&2
        diff <(echo "$declared") <(echo "$exported") >&2 || true
        exit 1
    fi
    pkgflags=$(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs zeropool-uring)
    echo "pkg-config --cflags --libs zeropool-uring: $pkgflags"
    # shellcheck disable=SC2086
    "$cc" "${san[@]}" "$src_dir/uring_consumer.c" -o "$tmp/uring_consumer_pc" $pkgflags
    LD_LIBRARY_PATH="$libdir" "$tmp/uring_consumer_pc"
    [[ -x $tmp/consumer-build/uring_consumer ]] ||
        { echo "check_install: find_package gave no zeropool::uring" >&2; exit 1; }
    "$tmp/consumer-build/uring_consumer"
fi

# zpz (tools/zpz), installed with the libraries when the codec library is
# built: it runs from the prefix (its RPATH finds the installed libraries)
# and round-trips
if [[ -e $prefix/bin/zpz ]]; then
    step="installed zpz"
    echo "== $step"
    for i in $(seq 1 2000); do echo "zeropool line $i"; done >"$tmp/zpz.in"
    env -u LD_LIBRARY_PATH "$prefix/bin/zpz" -c "$tmp/zpz.in" |
        env -u LD_LIBRARY_PATH "$prefix/bin/zpz" -dc | cmp - "$tmp/zpz.in"
fi

echo "check_install: PASS"
