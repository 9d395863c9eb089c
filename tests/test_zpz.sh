#!/usr/bin/env bash
# zpz against gzip, pigz, zstd and lz4, both ways, byte-exact; -k/-f/-c/-t,
# stdin, corrupt and truncated input.
#
# usage: test_zpz.sh ZPZ_BINARY       exit: 0 pass, 1 fail, 77 skip
#
# Under `make valgrind` (ctest -T memcheck) this script itself starts under
# memcheck, which would check bash (and does not follow it into its
# children): it then re-executes itself natively with ZPZ_MEMCHECK=1, and
# runs every zpz under memcheck itself, with the valgrind target's options
# (any memcheck error or definite leak fails that call), on smaller inputs
# and fewer combinations. ZPZ_MEMCHECK=1 by hand does the same.
set -uo pipefail

if [[ ${LD_PRELOAD:-} == *vgpreload_memcheck* ]]; then
    # valgrind, not tracing children, lets the exec replace it: no leak
    # check of bash itself (which does leak), the exit status is ours
    exec env LD_PRELOAD= ZPZ_MEMCHECK=1 bash "$0" "$@"
fi

zpz=${1:?usage: test_zpz.sh ZPZ_BINARY}
[[ -x $zpz ]] || { echo "test_zpz: $zpz is not an executable" >&2; exit 1; }
zpz=$(cd "$(dirname "$zpz")" && pwd)/$(basename "$zpz")
for tool in gzip pigz zstd lz4 cmp; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool not found (scripts/deps.sh test installs it)" >&2
        exit 77
    fi
done

memcheck=0
wrap=()
if [[ ${ZPZ_MEMCHECK:-0} == 1 ]]; then
    command -v valgrind >/dev/null || { echo "SKIP: ZPZ_MEMCHECK=1 but no valgrind" >&2; exit 77; }
    memcheck=1
    wrap=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
          --show-possibly-lost=no --num-callers=30)
    echo "test_zpz: under memcheck: every zpz runs under valgrind, smaller inputs" >&2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zpz-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# ok DESCRIPTION COMMAND...: the command must succeed
ok() { local what=$1; shift; "$@" 2>err.txt || { fail "$what (exit $?): $(head -c 300 err.txt)"; return 1; }; }
# same A B DESCRIPTION: files identical
same() { cmp -s "$1" "$2" || fail "$3: $1 and $2 differ"; }

# ------------------------------------------------------------------ inputs
# empty, 1 byte, 1 MiB + 7, and several blocks of mixed text, binary code
# and incompressible bytes (with -b 64: 64 KiB blocks, about 50 of them)
: >empty
printf x >tiny
{ seq 1 150000; head -c 1500000 "$zpz"; seq 1 50000 | rev; head -c 262144 /dev/urandom; } >mixed
if [[ $memcheck == 1 ]]; then
    head -c $((262144 + 7)) mixed >mid
    head -c 400000 mixed >multi
    tail -c 300000 mixed >>multi
else
    head -c $((1048576 + 7)) mixed >mid
    cat mixed mixed >multi
fi
inputs=(empty tiny mid multi)

# -------------------------------------------------- zpz writes, tools read
for f in "${inputs[@]}"; do
    for fmt in gzip zstd lz4; do
        o=$f.zpz.$fmt
        ok "zpz --format $fmt $f" "${wrap[@]}" "$zpz" -c --format $fmt -p 2 -b 64 "$f" >"$o" || continue
        case $fmt in
            gzip) ok "gzip -t $o" gzip -t "$o"
                  ok "gzip -dc $o" gzip -dc "$o" >out && same out "$f" "gzip -d of $o"
                  ok "pigz -dc $o" pigz -dc "$o" >out && same out "$f" "pigz -d of $o" ;;
            zstd) ok "zstd -t $o" zstd -q -t "$o"
                  ok "zstd -dc $o" zstd -q -dc "$o" >out && same out "$f" "zstd -d of $o" ;;
            lz4)  ok "lz4 -t $o" lz4 -q -t "$o"
                  ok "lz4 -dc $o" lz4 -q -dc "$o" >out && same out "$f" "lz4 -d of $o" ;;
        esac
        ok "zpz -dc $o" "${wrap[@]}" "$zpz" -dc -p 2 "$o" >out && same out "$f" "zpz -d of $o"
        [[ $memcheck == 1 ]] || ok "zpz -t $o" "${wrap[@]}" "$zpz" -t "$o"
    done
done
levels=(1 6 9)
[[ $memcheck == 1 ]] && levels=(1)
for lvl in "${levels[@]}"; do
    ok "zpz -$lvl" "${wrap[@]}" "$zpz" -$lvl -c mid >mid.$lvl.gz &&
        ok "gzip -t mid.$lvl.gz" gzip -t mid.$lvl.gz &&
        ok "gzip -dc mid.$lvl.gz" gzip -dc mid.$lvl.gz >out && same out mid "zpz -$lvl"
    ok "zpz -$lvl zstd" "${wrap[@]}" "$zpz" -$lvl --format zstd -c mid >mid.$lvl.zst &&
        ok "zstd -dc" zstd -q -dc mid.$lvl.zst >out && same out mid "zpz -$lvl --format zstd"
    ok "zpz -$lvl lz4" "${wrap[@]}" "$zpz" -$lvl --format=lz4 -c mid >mid.$lvl.lz4 &&
        ok "lz4 -dc" lz4 -q -dc mid.$lvl.lz4 >out && same out mid "zpz -$lvl --format lz4"
done

# -------------------------------------------------- tools write, zpz reads
for f in "${inputs[@]}"; do
    gzip -c "$f" >"$f.gzip.gz"
    pigz -c -p 2 -b 64 "$f" >"$f.pigz.gz"
    zstd -q -c "$f" >"$f.zstd.zst"
    zstd -q -c -T2 -B65536 "$f" >"$f.zstdmt.zst" 2>/dev/null || zstd -q -c -T2 "$f" >"$f.zstdmt.zst"
    lz4 -q -c "$f" >"$f.lz4.lz4"
    lz4 -q -c -BD -B4 "$f" >"$f.lz4bd.lz4"   # linked 64 KiB blocks
    for o in "$f.gzip.gz" "$f.pigz.gz" "$f.zstd.zst" "$f.zstdmt.zst" "$f.lz4.lz4" "$f.lz4bd.lz4"; do
        ok "zpz -dc $o" "${wrap[@]}" "$zpz" -dc "$o" >out && same out "$f" "zpz -d of $o"
    done
done
# several members / frames, and zpz's members followed by another writer's
cat tiny.gzip.gz mid.gzip.gz empty.gzip.gz tiny.gzip.gz >cat.gz
cat tiny mid empty tiny >cat.expect
ok "zpz -d of 4 gzip members" "${wrap[@]}" "$zpz" -dc cat.gz >out && same out cat.expect "gzip members"
cat mid.zstd.zst tiny.zstd.zst empty.zstd.zst >cat.zst
cat mid tiny empty >cat.expect
ok "zpz -d of 3 zstd frames" "${wrap[@]}" "$zpz" -dc cat.zst >out && same out cat.expect "zstd frames"
# a zstd window above 8 MiB (zstd --long; from a pipe, so no content size
# shrinks it): zpz accepts up to 128 MiB, as the zstd tool does
zstd -q --long=25 -c <mid >long.zst
ok "zpz -d of zstd --long=25" "${wrap[@]}" "$zpz" -dc long.zst >out && same out mid "zstd --long"
cat mid.lz4.lz4 tiny.lz4.lz4 >cat.lz4
cat mid tiny >cat.expect
ok "zpz -d of 2 lz4 frames" "${wrap[@]}" "$zpz" -dc cat.lz4 >out && same out cat.expect "lz4 frames"
cat multi.zpz.gzip mid.pigz.gz >cat2.gz
cat multi mid >cat.expect
ok "zpz -d of zpz then pigz members" "${wrap[@]}" "$zpz" -dc -p 2 cat2.gz >out && same out cat.expect "zpz + pigz members"
ok "gzip -d of zpz then pigz members" gzip -dc cat2.gz >out && same out cat.expect "gzip on zpz + pigz"

# ------------------------------------------------------------ file handling
cp mid a && chmod 640 a && touch -d '2020-01-02 03:04:05' a
ok "zpz a" "${wrap[@]}" "$zpz" a
[[ -e a.gz && ! -e a ]] || fail "zpz a: expected a.gz and no a"
[[ $(stat -c %a a.gz) == 640 ]] || fail "zpz a: mode $(stat -c %a a.gz), not 640"
[[ $(stat -c %Y a.gz) == $(date -d '2020-01-02 03:04:05' +%s) ]] || fail "zpz a: mtime not kept"
ok "zpz -d a.gz" "${wrap[@]}" "$zpz" -d a.gz
[[ -e a && ! -e a.gz ]] || fail "zpz -d a.gz: expected a and no a.gz"
same a mid "zpz a; zpz -d a.gz"
cp tiny b
ok "zpz -k b" "${wrap[@]}" "$zpz" -k b
[[ -e b && -e b.gz ]] || fail "zpz -k b: expected b and b.gz"
cp b.gz b.gz.orig
"${wrap[@]}" "$zpz" -k b 2>err.txt
rc=$?
[[ $rc == 1 ]] || fail "zpz -k b over an existing b.gz: exit $rc, not 1"
grep -q '^zpz: b.gz: .*exists' err.txt || fail "zpz -k b over b.gz: message '$(cat err.txt)'"
same b.gz b.gz.orig "b.gz after a refused overwrite"
cp mid b
ok "zpz -kf b" "${wrap[@]}" "$zpz" -kf b
ok "zpz -dc b.gz" "${wrap[@]}" "$zpz" -dc b.gz >out && same out mid "zpz -f overwrite"
"${wrap[@]}" "$zpz" -d b.gz 2>err.txt
[[ $? == 1 ]] || fail "zpz -d b.gz over an existing b: not exit 1"
ok "zpz -df b.gz" "${wrap[@]}" "$zpz" -df b.gz && same b mid "zpz -df"
[[ ! -e b.gz ]] || fail "zpz -df b.gz left b.gz"
cp mid c
ok "zpz -c c" "${wrap[@]}" "$zpz" -c c >c.out
[[ -e c && ! -e c.gz ]] || fail "zpz -c c: c must stay, no c.gz"
ok "zpz stdin" "${wrap[@]}" "$zpz" <mid >stdin.gz && ok "gzip -dc stdin.gz" gzip -dc stdin.gz >out && same out mid "stdin to stdout"
ok "zpz -d stdin" "${wrap[@]}" "$zpz" -d <stdin.gz >out && same out mid "zpz -d stdin to stdout"
ok "zpz - (dash)" "${wrap[@]}" "$zpz" -c - <tiny >dash.gz && ok "gzip -dc dash.gz" gzip -dc dash.gz >out && same out tiny "zpz -"
cp mid d && ok "zpz --format zstd d" "${wrap[@]}" "$zpz" --format zstd d && [[ -e d.zst ]] &&
    ok "zpz -d d.zst" "${wrap[@]}" "$zpz" -d d.zst && same d mid "zstd file round trip"
cp mid e && ok "zpz --format lz4 e" "${wrap[@]}" "$zpz" --format lz4 e && [[ -e e.lz4 ]] &&
    ok "zpz -d e.lz4" "${wrap[@]}" "$zpz" -d e.lz4 && same e mid "lz4 file round trip"
cp mid.pigz.gz g.gz && ok "zpz -d of pigz's file" "${wrap[@]}" "$zpz" -d g.gz && same g mid "pigz file"
cp mid.zstd.zst h.lz4 && ok "zpz -d h.lz4 holding zstd" "${wrap[@]}" "$zpz" -d h.lz4 && same h mid "format from the data"

# --------------------------------------------------------- bounded memory
# 128 MiB through zpz -1 and back: the peak RSS of each run stays under
# 64 MiB (the issue's bound for 1 GiB; zpz keeps at most 2N + 2 blocks).
# Not under memcheck or a sanitizer, whose own memory is the bulk of RSS.
peak_rss() { # peak_rss INPUT_FILE_OR_- ARGS...: zpz's peak RSS in KiB
    python3 - "$zpz" "$@" <<'PY'
import resource, subprocess, sys
zpz, src, args = sys.argv[1], sys.argv[2], sys.argv[3:]
block = open("mixed", "rb").read()[:1 << 20]
with open("/dev/null", "wb") as null:
    if src == "-":   # 128 MiB generated here, written to zpz's stdin
        p = subprocess.Popen([zpz] + args, stdin=subprocess.PIPE, stdout=open("big.gz", "wb"))
        for _ in range(128):
            p.stdin.write(block)
        p.stdin.close()
        rc = p.wait()
    else:
        rc = subprocess.call([zpz] + args + [src], stdout=null)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else -1)
PY
}
if [[ $memcheck == 0 ]] && ! ldd "$zpz" 2>/dev/null | grep -qE 'lib(a|t)san' &&
   command -v python3 >/dev/null; then
    rss=$(peak_rss - -1 -p 2 -c)
    [[ $rss -gt 0 && $rss -lt 65536 ]] || fail "zpz -1 of 128 MiB: peak RSS $rss KiB (limit 65536)"
    rss=$(peak_rss big.gz -d -p 2 -c)
    [[ $rss -gt 0 && $rss -lt 65536 ]] || fail "zpz -d of 128 MiB: peak RSS $rss KiB (limit 65536)"
    rm -f big.gz
fi

# ----------------------------------------------------------------- errors
expect_fail() { # expect_fail STATUS PATTERN DESCRIPTION COMMAND...
    local want=$1 pat=$2 what=$3
    shift 3
    "$@" >out 2>err.txt
    local rc=$?
    [[ $rc == "$want" ]] || fail "$what: exit $rc, not $want"
    grep -qE "$pat" err.txt || fail "$what: message '$(head -c 300 err.txt)' does not match '$pat'"
}
expect_fail 2 'usage' "unknown option" "${wrap[@]}" "$zpz" --no-such-option
expect_fail 2 'thread' "-p 0" "${wrap[@]}" "$zpz" -p 0 tiny
expect_fail 2 'format' "--format bzip2" "${wrap[@]}" "$zpz" --format bzip2 tiny
expect_fail 1 '^zpz: nothere: ' "missing file" "${wrap[@]}" "$zpz" nothere
expect_fail 1 '^zpz: mid: unknown suffix' "-d without a suffix" "${wrap[@]}" "$zpz" -d mid
expect_fail 1 '^zpz: mid: not in gzip, zstd or lz4' "plain data to -d" "${wrap[@]}" "$zpz" -dc mid
expect_fail 1 '^zpz: stdin: not in gzip, zstd or lz4' "plain data on stdin to -d" "${wrap[@]}" "$zpz" -d <mid
expect_fail 1 '^zpz: stdin: .*end of file' "empty input to -d" "${wrap[@]}" "$zpz" -d </dev/null
for o in multi.zpz.gzip mid.pigz.gz mid.zstd.zst mid.lz4.lz4; do
    size=$(stat -c %s "$o")
    cp "$o" bad.gz
    printf '\xa5\x5a\xa5\x5a' | dd of=bad.gz bs=1 seek=$((size / 2)) conv=notrunc status=none
    expect_fail 1 '^zpz: bad.gz: ' "corrupt $o" "${wrap[@]}" "$zpz" -d bad.gz
    [[ -e bad.gz && ! -e bad ]] || fail "corrupt $o: bad.gz must stay and bad must not exist"
    head -c $((size - 5)) "$o" >bad.gz
    expect_fail 1 '^zpz: bad.gz: ' "truncated $o" "${wrap[@]}" "$zpz" -d bad.gz
    [[ ! -e bad ]] || fail "truncated $o: bad must not exist"
    rm -f bad.gz
done
cp multi.zpz.gzip bad.gz
printf '\x00\x00\x10\x00' | dd of=bad.gz bs=1 seek=16 conv=notrunc status=none
expect_fail 1 '^zpz: bad.gz: ' "zpz member size too large" "${wrap[@]}" "$zpz" -d bad.gz
rm -f bad.gz

if [[ $failures -gt 0 ]]; then
    echo "test_zpz: $failures failures" >&2
    exit 1
fi
echo "test_zpz: all passed"
exit 0
