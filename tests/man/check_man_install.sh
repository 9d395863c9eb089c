#!/usr/bin/env bash
# Installs a build tree into a temporary prefix and reads the installed
# manual the way a user does: MANPATH=<prefix>/share/man man <name>.
# zeropool(7) and zp_get(3) always; zp_compress(3) and zpz(1) when the
# codec library and zpz were installed; zp_bufring_create(3) when
# libzeropool-uring was. A library's pages are installed exactly when the
# library is.
#
# usage: check_man_install.sh BUILD_DIR
# exit:  0 pass, 1 fail, 77 skip (man not found)
set -euo pipefail

build=${1:?usage: check_man_install.sh BUILD_DIR}
if ! command -v man >/dev/null || ! man --version >/dev/null 2>&1; then
    echo "SKIP: no working man (Debian: man-db)"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zp-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(unset DESTDIR; cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log")

mandir=$tmp/prefix/share/man
libs=$(find "$tmp/prefix" -name 'libzeropool*.so' -printf '%f\n')
fail=0

# name, what the page must say, whether it must be there
want() {
    local name=$1 text=$2 expected=$3 page
    page=$(MANPATH=$mandir MANPAGER=cat MANWIDTH=100 LC_ALL=C.UTF-8 man "$name" 2>"$tmp/err" || true)
    if [[ $expected == yes ]]; then
        if grep -qF -- "$text" <<<"$page"; then
            echo "ok   man $name: shows '$text'"
        else
            echo "FAIL man $name: '$text' not shown"; cat "$tmp/err"; fail=1
        fi
    elif [[ -n $page ]]; then
        echo "FAIL man $name: installed, but its library was not"; fail=1
    else
        echo "ok   man $name: not installed (its library was not built)"
    fi
}

want zeropool "#include <zeropool.h>" yes
want zp_get "#include <zeropool.h>" yes
want zp_put "void zp_put(zp_pool *pool, void *buf);" yes
if grep -qx libzeropool-codec.so <<<"$libs"; then c=yes; else c=no; fi
want zp_compress "#include <zeropool/codec.h>" $c
if [[ -x $tmp/prefix/bin/zpz ]]; then z=yes; else z=no; fi
want zpz "compresses and decompresses files" $z
if grep -qx libzeropool-uring.so <<<"$libs"; then u=yes; else u=no; fi
want zp_bufring_create "#include <zeropool/uring.h>" $u
exit $fail
