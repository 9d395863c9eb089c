#!/usr/bin/env bash
# One version everywhere: the project's (CMakeLists.txt project(VERSION)),
# zeropool.h's ZP_VERSION_* macros, zp_version() / zp_version_string() of
# the shared library, every zeropool*.pc of the build, the CMake package
# version file, the top release of CHANGELOG.md, and the sonames of the
# built shared libraries (libNAME.so.0.MINOR before 1.0, libNAME.so.MAJOR
# after: CHANGELOG.md, "ABI and soname").
#
# usage: check_version.sh VERSION BUILD_DIR SOURCE_DIR PRINT_VERSION_BINARY
# exit:  0 pass, 1 fail
set -euo pipefail

version=${1:?usage: check_version.sh VERSION BUILD_DIR SOURCE_DIR PRINT_VERSION}
build=${2:?}
src=${3:?}
printer=${4:?}
fail=0
check() { # what expected got
    if [[ $2 == "$3" ]]; then
        echo "ok   $1: $3"
    else
        echo "FAIL $1: '$3', expected '$2'"
        fail=1
    fi
}

IFS=. read -r major minor patch <<<"$version"
number=$((major * 10000 + minor * 100 + patch))

out=$("$printer")
check "zeropool.h ZP_VERSION_STRING" "$version" "$(awk '$1 == "header" {print $2}' <<<"$out")"
check "zeropool.h ZP_VERSION_NUMBER" "$number" "$(awk '$1 == "header" {print $3}' <<<"$out")"
check "zeropool.h ZP_VERSION_MAJOR.MINOR.PATCH" "$version" \
      "$(awk '$1 == "header_parts" {print $2}' <<<"$out")"
check "zp_version_string() of the shared library" "$version" \
      "$(awk '$1 == "library" {print $2}' <<<"$out")"
check "zp_version() of the shared library" "$number" \
      "$(awk '$1 == "library" {print $3}' <<<"$out")"

npc=0
while IFS= read -r pc; do
    npc=$((npc + 1))
    check "$(basename "$pc") Version" "$version" "$(sed -n 's/^Version: *//p' "$pc")"
done < <(find "$build" -maxdepth 3 -name 'zeropool*.pc' -not -path '*/CMakeFiles/*' | sort)
[[ $npc -gt 0 ]] || { echo "FAIL no zeropool*.pc in $build"; fail=1; }

cv=$build/zeropoolConfigVersion.cmake
check "zeropoolConfigVersion.cmake PACKAGE_VERSION" "$version" \
      "$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' "$cv")"

check "CHANGELOG.md top release" "$version" \
      "$(sed -n 's/^## \[\([0-9][0-9.]*\)\].*/\1/p' "$src/CHANGELOG.md" | head -n1)"

if [[ $major -eq 0 ]]; then soversion=0.$minor; else soversion=$major; fi
if command -v readelf >/dev/null; then
    nso=0
    while IFS= read -r so; do
        nso=$((nso + 1))
        name=$(basename "$so")
        soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
        check "$name soname" "$name.$soversion" "$soname"
    done < <(find "$build" -maxdepth 3 -name 'libzeropool*.so' -not -path '*/CMakeFiles/*' | sort)
    [[ $nso -gt 0 ]] || { echo "FAIL no libzeropool*.so in $build"; fail=1; }
else
    echo "skip sonames: readelf not found"
fi

exit $fail
