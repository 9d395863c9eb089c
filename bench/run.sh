#!/usr/bin/env bash
# bench/run.sh — runs the zeropool benchmark suite and reports it.
#
# usage: bench/run.sh BUILD_DIR [options]
#   --quick              short repetitions, fewer of them: under a minute
#   --json FILE          also write the merged results to FILE
#   --out DIR            results folder (default BUILD_DIR/bench-results/<time>)
#   --scenarios LIST     hot,touch,cold,scale,handoff,mixed,counts,bulk,burst,spread,
#                        zeropool-only batch,stats_cost,budget_cost,debug_cost,
#                        depth,huge,objects,async,codec,uring (default all)
#   --allocators LIST    glibc,jemalloc,mimalloc,tcmalloc,dpdk (default all found)
#   --icount             only the instruction-count mode (callgrind)
#   --no-icount          skip the instruction counts (on by default, not in --quick)
#   --no-plots           no PNG plots
#   --reps N             repetitions per figure (default 7; --quick: 5)
#   --sizes LIST         buffer sizes (default 4k,64k,1m,4m)
#
# The driver (BUILD_DIR/bench/zp_bench) runs once per allocator: glibc (it
# also measures zeropool and the naive mutex free list), then jemalloc,
# mimalloc and tcmalloc through LD_PRELOAD, then DPDK's rte_mempool
# (zp_bench_dpdk, columns dpdk32 and dpdk256; built only when libdpdk was
# found). An allocator that is not installed, or a DPDK that is not built
# or whose EAL cannot start, is skipped with a note. zp_bench_twin (zeropool with and without
# its counters in one program) measures stats_cost right after the glibc
# run, then zp_bench_objects (object pools vs malloc + init + free),
# zp_bench_async (async acquisition latencies), zp_bench_codec (the codec
# library's MB/s, zpz against pigz, gzip and zstd) and zp_bench_uring
# (io_uring echo, pool-fed ring vs static ring) measure their families once.
# bench/report.py merges everything into the terminal table, results.json
# and the plots. See bench/README.md.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)

usage() {
    sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -ge 1 && $1 != -h && $1 != --help ]] || usage
build=$1
shift
quick=0 json="" out="" scenarios="" allocs="glibc,jemalloc,mimalloc,tcmalloc,dpdk"
icount=auto plots=1 reps="" sizes_opt=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) quick=1 ;;
        --json) json=${2:?--json needs a file}; shift ;;
        --out) out=${2:?--out needs a folder}; shift ;;
        --scenarios) scenarios=${2:?}; shift ;;
        --allocators) allocs=${2:?}; shift ;;
        --icount) icount=only ;;
        --no-icount) icount=no ;;
        --no-plots) plots=0 ;;
        --reps) reps=${2:?}; shift ;;
        --sizes) sizes_opt=${2:?}; shift ;;
        -h | --help) usage ;;
        *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done

bin=$build/bench/zp_bench
icount_bin=$build/bench/zp_icount
twin_bin=$build/bench/zp_bench_twin
icount_twin=$build/bench/zp_icount_twin
icount_dpdk=$build/bench/zp_icount_dpdk
objects_bin=$build/bench/zp_bench_objects
async_bin=$build/bench/zp_bench_async
uring_bin=$build/bench/zp_bench_uring
dpdk_bin=$build/bench/zp_bench_dpdk
codec_bin=$build/bench/zp_bench_codec
if [[ ! -x $bin ]]; then
    echo "run.sh: $bin not found; configure with -DZP_BUILD_BENCH=ON and build" \
         "(make bench does both)" >&2
    exit 1
fi
[[ -n $out ]] || out=$build/bench-results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out/raw" || exit 1
out=$(cd "$out" && pwd)
raw=$out/raw
: >"$raw/runs.tsv"

# ------------------------------------------------------- finding allocators

# Path of a shared object by soname: the dynamic linker's cache first, then
# the usual library folders. Prints nothing if absent.
find_so() {
    local name p
    for name in "$@"; do
        p=$( (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null |
            awk -v n="$name" '$1 == n { print $NF; exit }')
        if [[ -n $p && -e $p ]]; then echo "$p"; return; fi
        for d in /usr/lib/*-linux-gnu /usr/lib64 /usr/lib /usr/local/lib \
                 /usr/local/lib64; do
            if [[ -e $d/$name ]]; then echo "$d/$name"; return; fi
        done
    done
}

# allocator -> sonames to try, the symbol that proves it is loaded, package
declare -A sonames=(
    [jemalloc]="libjemalloc.so.2 libjemalloc.so"
    [mimalloc]="libmimalloc.so.2 libmimalloc.so"
    [tcmalloc]="libtcmalloc_minimal.so.4 libtcmalloc.so.4 libtcmalloc_minimal.so"
)
declare -A symbol=([jemalloc]=mallctl [mimalloc]=mi_malloc [tcmalloc]=tc_malloc)
declare -A package=([jemalloc]=libjemalloc-dev [mimalloc]=libmimalloc-dev
                    [tcmalloc]=libgoogle-perftools-dev)

note() { printf '%s\n' "$*" >&2; }

# Is scenario $1 selected? (no --scenarios: all are)
wanted() {
    [[ -z $scenarios || ,$scenarios, == *,all,* || ,$scenarios, == *,$1,* ]]
}

# A zeropool-only family with a driver of its own, run once (in the glibc
# run's process environment: no LD_PRELOAD): family NAME BINARY
family() {
    local name=$1 prog=$2
    wanted "$name" || return 0
    if [[ ! -x $prog ]]; then
        note "== $name: skipped, $prog not built"
        printf '%s\tskipped\t\t%s not built\n' "$name" "$(basename "$prog")" \
            >>"$raw/runs.tsv"
        return 0
    fi
    note "== $name run: $(basename "$prog")"
    local fam=()
    [[ $quick == 1 ]] && fam+=(--quick)
    [[ -n $reps ]] && fam+=(--reps "$reps")
    if "$prog" "${fam[@]}" --label "$name" >"$raw/$name.jsonl"; then
        printf '%s\tok\t\t\n' "$name" >>"$raw/runs.tsv"
    else
        printf '%s\tfailed\t\t%s exited %s\n' "$name" "$(basename "$prog")" \
            "$?" >>"$raw/runs.tsv"
        note "== $name: $(basename "$prog") failed"
    fi
}

# ---------------------------------------------------------------- the runs

common=()
[[ $quick == 1 ]] && common+=(--quick)
[[ -n $reps ]] && common+=(--reps "$reps")
[[ -n $scenarios ]] && common+=(--scenarios "$scenarios")
[[ -n $sizes_opt ]] && common+=(--sizes "$sizes_opt")

start=$(date +%s)
preloads=()  # name=path of each allocator that ran, for icount
if [[ $icount != only ]]; then
    IFS=, read -ra alist <<<"$allocs"
    for a in "${alist[@]}"; do
        if [[ $a == glibc ]]; then
            note "== glibc run: zeropool, naive free list, glibc malloc"
            if "$bin" "${common[@]}" --label glibc \
                   --backends zeropool,naive,malloc >"$raw/glibc.jsonl"; then
                printf 'glibc\tok\t\t\n' >>"$raw/runs.tsv"
            else
                printf 'glibc\tfailed\t\tzp_bench exited %s\n' "$?" >>"$raw/runs.tsv"
                note "run.sh: the glibc run failed (it measures zeropool): stopping"
                exit 1
            fi
            # the counters' cost: both builds of the library in one program
            if wanted stats_cost; then
                if [[ -x $twin_bin ]]; then
                    note "== stats_cost run: zeropool with and without its counters"
                    tw=("${common[@]}")
                    for i in "${!tw[@]}"; do
                        [[ ${tw[$i]} == --scenarios ]] && tw[i + 1]=stats_cost
                    done
                    [[ -n $scenarios ]] || tw+=(--scenarios stats_cost)
                    if "$twin_bin" "${tw[@]}" --label stats_cost \
                           --backends zeropool >"$raw/stats_cost.jsonl"; then
                        printf 'stats_cost\tok\t\t\n' >>"$raw/runs.tsv"
                    else
                        printf 'stats_cost\tfailed\t\tzp_bench_twin exited %s\n' \
                            "$?" >>"$raw/runs.tsv"
                        note "== stats_cost: zp_bench_twin failed"
                    fi
                else
                    note "== stats_cost: skipped, $twin_bin not built (needs nm and objcopy)"
                    printf 'stats_cost\tskipped\t\tzp_bench_twin not built\n' \
                        >>"$raw/runs.tsv"
                fi
            fi
            # object pools and async acquisition: their own drivers, once
            family objects "$objects_bin"
            family async "$async_bin"
            # compression: the codec library and zpz (built with the codec library)
            family codec "$codec_bin"
            family uring "$uring_bin"
            continue
        fi
        if [[ $a == dpdk ]]; then
            # DPDK's mempool: its own program (libdpdk's compile flags stay
            # out of zp_bench) and process (the EAL starts once in it)
            if [[ ! -x $dpdk_bin ]]; then
                why="zp_bench_dpdk not built: libdpdk not found by pkg-config at configure time (Debian: apt-get install libdpdk-dev)"
                note "== dpdk: skipped, $why"
                printf 'dpdk\tskipped\t\t%s\n' "$why" >>"$raw/runs.tsv"
                continue
            fi
            note "== dpdk run: rte_mempool, per-lcore cache 32 and 256"
            "$dpdk_bin" "${common[@]}" --label dpdk --backends dpdk32,dpdk256 \
                >"$raw/dpdk.jsonl"
            rc=$?
            if [[ $rc == 0 ]]; then
                printf 'dpdk\tok\t\t\n' >>"$raw/runs.tsv"
            else
                why="zp_bench_dpdk exited $rc"
                if [[ $rc == 4 ]]; then  # the EAL did not start: why, on stdout
                    why=$(sed -n 's/^{"skipped_run":"\(.*\)"}$/\1/p' "$raw/dpdk.jsonl")
                    st=skipped
                else
                    st=failed
                fi
                note "== dpdk: $st, $why"
                printf 'dpdk\t%s\t\t%s\n' "$st" "$why" >>"$raw/runs.tsv"
                rm -f "$raw/dpdk.jsonl"
            fi
            continue
        fi
        if [[ -z ${sonames[$a]:-} ]]; then
            note "run.sh: unknown allocator '$a' (glibc, jemalloc, mimalloc, tcmalloc, dpdk)"
            exit 2
        fi
        # ZP_BENCH_JEMALLOC=/path/libjemalloc.so overrides the search
        var=ZP_BENCH_${a^^}
        so=${!var:-$(find_so ${sonames[$a]})}
        if [[ -z $so || ! -e $so ]]; then
            note "== $a: skipped, not installed (Debian: apt-get install ${package[$a]})"
            printf '%s\tskipped\t\tnot installed (package %s)\n' "$a" \
                "${package[$a]}" >>"$raw/runs.tsv"
            continue
        fi
        note "== $a run: LD_PRELOAD=$so"
        LD_PRELOAD=$so "$bin" "${common[@]}" --label "$a" --backends malloc \
            --verify-symbol "${symbol[$a]}" >"$raw/$a.jsonl"
        rc=$?
        if [[ $rc == 0 ]]; then
            printf '%s\tok\t%s\t\n' "$a" "$so" >>"$raw/runs.tsv"
            preloads+=("$a=$so")
        else
            why="zp_bench exited $rc"
            [[ $rc == 3 ]] && why="preloading $so did not replace malloc"
            note "== $a: skipped, $why"
            printf '%s\tfailed\t%s\t%s\n' "$a" "$so" "$why" >>"$raw/runs.tsv"
            rm -f "$raw/$a.jsonl"
        fi
    done
else
    IFS=, read -ra alist <<<"$allocs"
    for a in "${alist[@]}"; do
        [[ $a == glibc || $a == dpdk || -z ${sonames[$a]:-} ]] && continue
        var=ZP_BENCH_${a^^}
        so=${!var:-$(find_so ${sonames[$a]})}
        [[ -n $so && -e $so ]] && preloads+=("$a=$so")
    done
fi

# ------------------------------------------------- instruction counts

# Instructions per get+put pair: callgrind counts zpb_icount_loop's
# instructions (callees included) for two loop lengths; the difference over
# the difference in iterations drops start-up, warm-up and the loop's entry.
# icount_one BACKEND SIZE PRELOAD [CONFIG [BINARY [N1 N2]]]
icount_one() { # -> prints instructions per iteration
    local be=$1 size=$2 pre=$3 cfg=${4:-default} prog=${5:-$icount_bin}
    local n1=${6:-2000} n2=${7:-12000} n f ir
    local -a irs
    for n in $n1 $n2; do
        f=$raw/callgrind.$be.$size.$n.out
        if ! env ${pre:+LD_PRELOAD=$pre} valgrind --tool=callgrind \
                --collect-atstart=no --toggle-collect=zpb_icount_loop \
                --callgrind-out-file="$f" "$prog" "$be" "$size" "$n" "$cfg" \
                >/dev/null 2>&1; then
            rm -f "$f"
            return 1
        fi
        ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
        rm -f "$f"
        [[ -n $ir ]] || return 1
        irs+=("$ir")
    done
    awk -v a="${irs[0]}" -v b="${irs[1]}" -v n=$((n2 - n1)) \
        'BEGIN { printf "%.1f", (b - a) / n }'
}

: >"$raw/icount.tsv"
: >"$raw/icount_variants.tsv"
if [[ $icount == only || ( $icount == auto && $quick == 0 ) ]]; then
    if ! command -v valgrind >/dev/null; then
        note "== instruction counts: skipped, valgrind not installed (apt-get install valgrind)"
        printf '#skipped\tvalgrind not installed\n' >>"$raw/icount.tsv"
    elif [[ ! -x $icount_bin ]]; then
        note "== instruction counts: skipped, $icount_bin not built"
        printf '#skipped\tzp_icount not built\n' >>"$raw/icount.tsv"
    else
        note "== instruction counts (valgrind --tool=callgrind)"
        sizes="4096 65536 1048576 4194304"
        # the loop and the byte write alone (no allocator), subtracted below
        base=$(icount_one none 4096 "") || base=nan
        note "  icount loop alone: $base instructions per iteration"
        # zeropool_handle: the same loop through a cache handle (zp_cache_get
        # / zp_cache_put), reported beside zeropool's thread cache
        targets=("zeropool:zeropool:" "zeropool_handle:zeropool_handle:"
                 "naive:naive:" "glibc:malloc:")
        for p in "${preloads[@]}"; do
            targets+=("${p%%=*}:malloc:${p#*=}")
        done
        for t in "${targets[@]}"; do
            IFS=: read -r comp be pre <<<"$t"
            for s in $sizes; do
                if v=$(icount_one "$be" "$s" "$pre"); then
                    alloc=$(awk -v t="$v" -v b="$base" \
                        'BEGIN { if (b == "nan") print "nan"; else printf "%.1f", t - b }')
                    printf '%s\t%s\t%s\t%s\t%s\n' "$comp" "$be" "$s" "$v" \
                        "$alloc" >>"$raw/icount.tsv"
                    note "  icount $comp $s: $alloc instructions per" \
                         "get+put in the allocator ($v per loop iteration)"
                else
                    note "  icount $comp $s: callgrind failed"
                fi
            done
        done

        # DPDK's rte_mempool_get / _put: zp_icount_dpdk (built with libdpdk's
        # flags), minus its own loop alone
        if [[ ,$allocs, == *,dpdk,* ]]; then
            if [[ -x $icount_dpdk ]]; then
                base_dpdk=$(icount_one none 4096 "" default "$icount_dpdk") ||
                    base_dpdk=nan
                for comp in dpdk32 dpdk256; do
                    for s in $sizes; do
                        if v=$(icount_one "$comp" "$s" "" default "$icount_dpdk"); then
                            alloc=$(awk -v t="$v" -v b="$base_dpdk" \
                                'BEGIN { if (b == "nan") print "nan"; else printf "%.1f", t - b }')
                            printf '%s\t%s\t%s\t%s\t%s\n' "$comp" "$comp" "$s" \
                                "$v" "$alloc" >>"$raw/icount.tsv"
                            note "  icount $comp $s: $alloc instructions per" \
                                 "get+put in the allocator ($v per loop iteration)"
                        else
                            note "  icount $comp $s: callgrind failed (EAL?)"
                        fi
                    done
                done
            else
                note "  icount dpdk32/dpdk256: skipped, $icount_dpdk not built"
            fi
        fi

        # bulk32: instructions per buffer of one bulk get of 32 and one bulk
        # put (ZPB_ICOUNT_BULK, see zp_icount.c), the loop's own writes
        # subtracted; zeropool, its cache handle and DPDK's mempool
        : >"$raw/icount_bulk.tsv"
        bulk_targets=("zeropool:zeropool:$icount_bin" "zeropool_handle:zeropool_handle:$icount_bin")
        if [[ ,$allocs, == *,dpdk,* && -x $icount_dpdk ]]; then
            bulk_targets+=("dpdk32:dpdk32:$icount_dpdk" "dpdk256:dpdk256:$icount_dpdk")
        fi
        declare -A bulk_base=()
        for t in "${bulk_targets[@]}"; do
            IFS=: read -r comp be prog <<<"$t"
            if [[ -z ${bulk_base[$prog]:-} ]]; then
                bulk_base[$prog]=$(ZPB_ICOUNT_BULK=32 icount_one none 4096 "" default "$prog" 200 1200) ||
                    bulk_base[$prog]=nan
            fi
            for s in 4096 65536 1048576; do
                if v=$(ZPB_ICOUNT_BULK=32 icount_one "$be" "$s" "" default "$prog" 200 1200); then
                    per=$(awk -v t="$v" -v b="${bulk_base[$prog]}" \
                        'BEGIN { if (b == "nan") print "nan"; else printf "%.1f", (t - b) / 32 }')
                    printf '%s\t%s\t%s\t%s\n' "$comp" "$s" "$v" "$per" >>"$raw/icount_bulk.tsv"
                    note "  icount bulk32 $comp $s: $per instructions per buffer"
                else
                    note "  icount bulk32 $comp $s: callgrind failed"
                fi
            done
        done

        # the zeropool-only families: one line per scenario, variant, size
        # (debug=2 fills and scans whole buffers: fewer iterations)
        variants=()
        if wanted stats_cost && [[ -x $icount_twin ]]; then
            for s in 4096 65536; do
                variants+=("stats_cost:no_counters:$s:zeropool_nc:default:twin"
                           "stats_cost:counters:$s:zeropool:default:twin"
                           "stats_cost:counters_copy:$s:zeropool_copy:default:twin")
            done
        fi
        if wanted budget_cost; then
            variants+=("budget_cost:no_budget:65536:zeropool:default:"
                       "budget_cost:budget_1GiB:65536:zeropool:max_bytes=1g:")
            # (no_budget_2 is the same program and config as no_budget)
        fi
        if wanted debug_cost; then
            for s in 4096 65536; do
                for d in 0 1 2; do
                    variants+=("debug_cost:debug$d:$s:zeropool:debug=$d:")
                done
            done
        fi
        base_twin=""
        for v in "${variants[@]}"; do
            IFS=: read -r sc var s be cfg which <<<"$v"
            prog=$icount_bin b=$base
            if [[ $which == twin ]]; then
                prog=$icount_twin
                [[ -n $base_twin ]] ||
                    base_twin=$(icount_one none 4096 "" default "$prog") || base_twin=nan
                b=$base_twin
            fi
            iters=(2000 12000)
            [[ $cfg == debug=2 ]] && iters=(50 250)
            if t=$(icount_one "$be" "$s" "" "$cfg" "$prog" "${iters[@]}"); then
                alloc=$(awk -v t="$t" -v b="$b" \
                    'BEGIN { if (b == "nan") print "nan"; else printf "%.1f", t - b }')
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$var" "$s" "$cfg" "$t" \
                    "$alloc" >>"$raw/icount_variants.tsv"
                note "  icount $sc $var $s: $alloc instructions per get+put" \
                     "in the allocator ($t per loop iteration)"
            else
                note "  icount $sc $var $s: callgrind failed"
            fi
        done
    fi
fi

# ------------------------------------------------------------------ report

rargs=(--raw "$raw" --out "$out" --seconds $(( $(date +%s) - start )))
[[ -n $json ]] && rargs+=(--json "$json")
[[ $plots == 0 ]] && rargs+=(--no-plots)
[[ $quick == 1 ]] && rargs+=(--quick)
python3 "$here/report.py" "${rargs[@]}"
