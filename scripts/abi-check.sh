#!/usr/bin/env bash
# The ABI check: each shared library a build made (libzeropool,
# libzeropool-codec, libzeropool-uring) against the committed ABI of the
# last release that shipped it (abi/lib<name>-<version>.abi, written by
# libabigail's abidw), with abidiff.
#
#   scripts/abi-check.sh [--skip-if-missing] [BUILD_DIR]     (default: build)
#   scripts/abi-check.sh --baseline COMMIT
#
# The policy (CHANGELOG.md, "ABI and soname"):
#   - an incompatible change (a function removed or changed, a public type
#     changed in a way old callers notice, the soname) fails, unless the
#     version moved enough to allow it: before 1.0 the minor (0.1 -> 0.2),
#     from 1.0 on the major;
#   - a function added since the baseline must carry the symbol version of
#     the release being built (ZEROPOOL_<major>.<minor>, and likewise
#     ZEROPOOL_CODEC_ / ZEROPOOL_URING_): a released node never grows;
#   - the soname is lib<name>.so.0.<minor> before 1.0, lib<name>.so.<major>
#     after.
# A library with no baseline (first shipped in this version) is checked for
# its soname only. Needs the build's debug information (the default
# RelWithDebInfo build has it) and abigail-tools (scripts/deps.sh test).
#
# --baseline COMMIT builds the libraries of a release commit in a temporary
# worktree and writes abi/lib<name>-<its version>.abi: run it once per
# release, on the release's commit, and commit the files.
#
# exit: 0 pass, 1 fail, 77 skip (--skip-if-missing and no abidiff)
set -euo pipefail
cd "$(dirname "$0")/.."

libs=(zeropool zeropool-codec zeropool-uring)
abidw_flags=(--no-show-locs --no-corpus-path --no-comp-dir-path --drop-private-types)

project_version() { # CMakeLists.txt of a tree
    sed -n 's/^project(zeropool VERSION \([0-9.]*\).*/\1/p' "$1/CMakeLists.txt"
}

soversion_of() { # version -> the soname's suffix
    local major minor
    IFS=. read -r major minor _ <<<"$1"
    if [[ $major -eq 0 ]]; then echo "0.$minor"; else echo "$major"; fi
}

find_lib() { # build dir, name
    find "$1" -maxdepth 4 -name "lib$2.so" -not -path '*/CMakeFiles/*' | head -n1
}

if [[ ${1:-} == --baseline ]]; then
    commit=${2:?usage: abi-check.sh --baseline COMMIT}
    command -v abidw >/dev/null || { echo "abi-check: abidw not found (abigail-tools)" >&2; exit 1; }
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/zp-abi.XXXXXX")
    trap 'git worktree remove --force "$tmp/src" 2>/dev/null || true; rm -rf "$tmp"' EXIT
    git worktree add --detach "$tmp/src" "$commit" >/dev/null
    version=$(project_version "$tmp/src")
    cmake -S "$tmp/src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DZP_BUILD_TESTS=OFF -DZP_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build "$tmp/build" -j2 >/dev/null
    mkdir -p abi
    for name in "${libs[@]}"; do
        so=$(find_lib "$tmp/build" "$name")
        [[ -n $so ]] || continue
        abidw "${abidw_flags[@]}" --headers-dir "$tmp/src/include" "$so" \
            --out-file "abi/lib$name-$version.abi"
        echo "abi/lib$name-$version.abi: $(readlink -f "$so" | xargs basename) of $commit"
    done
    exit 0
fi

skip_if_missing=0
if [[ ${1:-} == --skip-if-missing ]]; then
    skip_if_missing=1
    shift
fi
build=${1:-build}
if ! command -v abidiff >/dev/null; then
    if [[ $skip_if_missing -eq 1 ]]; then
        echo "SKIP: abidiff not found (Debian: abigail-tools; scripts/deps.sh test installs it)"
        exit 77
    fi
    echo "abi-check: abidiff not found (Debian: abigail-tools; scripts/deps.sh test installs it)" >&2
    exit 1
fi
command -v readelf >/dev/null || { echo "abi-check: readelf not found (binutils)" >&2; exit 1; }

version=$(project_version .)
IFS=. read -r major minor _ <<<"$version"
soversion=$(soversion_of "$version")
fail=0
checked=0

for name in "${libs[@]}"; do
    so=$(find_lib "$build" "$name")
    if [[ -z $so ]]; then
        if [[ $name == zeropool ]]; then
            echo "FAIL lib$name.so: not found in $build (build it first: make build)"
            fail=1
        else
            echo "skip lib$name.so: not built"
        fi
        continue
    fi
    checked=$((checked + 1))
    soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    if [[ $soname != "lib$name.so.$soversion" ]]; then
        echo "FAIL lib$name.so: soname '$soname', the policy says lib$name.so.$soversion for $version"
        fail=1
    fi

    # the newest baseline not newer than this version
    baseline=""
    while IFS= read -r f; do
        v=${f##*/lib$name-}
        v=${v%.abi}
        if [[ $(printf '%s\n%s\n' "$v" "$version" | sort -V | tail -n1) == "$version" ]]; then
            baseline=$f
            base_version=$v
        fi
    done < <(find abi -maxdepth 1 -name "lib$name-[0-9]*.abi" 2>/dev/null | sort -V)
    if [[ -z $baseline ]]; then
        # first shipped now: every function in this release's version node
        stray=$(objdump -T "$so" | awk '$2 == "g" && $(NF - 1) !~ /^\(|Base/ {
                    print $NF "@" $(NF - 1) }' | grep -v "_$major\.$minor\$" || true)
        if [[ -n $stray ]]; then
            echo "FAIL lib$name.so: first shipped in $version, but these functions carry" \
                 "another version node than *_$major.$minor:" $stray
            fail=1
        else
            echo "ok   lib$name.so ($soname): no released baseline in abi/ (first shipped in" \
                 "$version); every function in its *_$major.$minor node"
        fi
        continue
    fi

    set +e
    report=$(abidiff --no-show-locs --drop-private-types --headers-dir2 include \
                 "$baseline" "$so" 2>&1)
    rc=$?
    set -e
    if (( rc & 3 )); then
        echo "FAIL lib$name.so: abidiff could not compare (exit $rc):"
        echo "$report"
        fail=1
        continue
    fi

    IFS=. read -r bmajor bminor _ <<<"$base_version"
    if (( rc & 8 )); then
        # changes beyond the soname: functions or variables removed or changed
        beyond=$(grep -E 'changes summary: ' <<<"$report" |
                 grep -vE ': 0 Removed(, 0 Changed)?( \([0-9]+ filtered out\))?, [0-9]+ Added' || true)
        if [[ $major -gt $bmajor ]] || [[ $major -eq 0 && $minor -gt $bminor ]]; then
            if [[ -z $beyond ]]; then
                echo "ok   lib$name.so: compatible with $base_version but for the soname," \
                     "which the policy moves with the minor: $base_version -> $version ($soname)"
            else
                echo "ok   lib$name.so: incompatible with $base_version, allowed:" \
                     "$base_version -> $version (soname $soname)"
            fi
        else
            echo "FAIL lib$name.so: an incompatible ABI change against $base_version," \
                 "which $version may not make (before 1.0 move the minor, after it the major):"
            fail=1
        fi
        echo "$report" | sed 's/^/     /'
    elif (( rc & 4 )); then
        echo "ok   lib$name.so: compatible with $base_version (additions only)"
        echo "$report" | sed 's/^/     /'
    else
        echo "ok   lib$name.so: the same ABI as $base_version"
    fi

    # every function added since the baseline is in this release's node
    node_suffix="_$major.$minor"
    while IFS= read -r sym; do
        [[ -n $sym ]] || continue
        node=${sym#*@@}
        if [[ $node != *"$node_suffix" ]]; then
            echo "FAIL lib$name.so: ${sym%%@@*} was added after $base_version but carries" \
                 "version $node, not this release's (*$node_suffix): a released node never grows"
            fail=1
        fi
    done < <(awk '/Added function/ {on = 1; next} /^[^ ]/ {on = 0}
                  on && /\{.*@@.*\}/ { s = $0; sub(/.*\{/, "", s); sub(/\}.*/, "", s); print s }' \
                 <<<"$report")
done

[[ $fail -eq 0 ]] && echo "abi-check: $checked libraries checked, version $version (soname suffix $soversion)"
exit $fail
