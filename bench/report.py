#!/usr/bin/env python3
"""bench/report.py — merges the zp_bench runs into a table, JSON and plots.

usage: report.py --raw DIR --out DIR [--json FILE] [--no-plots] [--quick]
                 [--seconds N]

DIR holds what bench/run.sh collected: one <run>.jsonl per allocator run
(the driver's output; stats_cost.jsonl from zp_bench_twin; objects.jsonl
async.jsonl and codec.jsonl from zp_bench_objects, zp_bench_async and
zp_bench_codec, uring.jsonl from zp_bench_uring), runs.tsv (which
runs happened or were skipped, why), icount.tsv and icount_variants.tsv
(callgrind instruction counts). Writes OUT/results.json,
OUT/table.txt and OUT/plots/*.png, and prints the table. Python 3 standard
library only; plots need gnuplot (Debian: gnuplot-nox). The JSON fields are
documented in bench/README.md.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys

SCHEMA = "zeropool-bench/1"

# Column order: zeropool first, then the allocators, DPDK's mempool (per-lcore
# cache 32 and 256), the floor last.
COMPETITORS = ["zeropool", "glibc", "jemalloc", "mimalloc", "tcmalloc",
               "dpdk32", "dpdk256", "naive"]

# Rows of the time table, in this order; unit per scenario.
TIME_SCENARIOS = [
    ("hot", "get, write 1 byte, put"),
    ("touch", "get, write 1 byte per page, put"),
    ("mixed_hot", "Zipf sizes 512 B-4 MiB, 1 byte"),
    ("mixed_touch", "Zipf sizes 512 B-4 MiB, every page"),
    ("cold", "first gets of a fresh process"),
    ("cold_prefill", "first gets after a prefill"),
    ("handoff", "get on A, put on B (ring subtracted)"),
    ("handoff_raw", "get on A, put on B, ring included"),
    ("scale_hot", "hot, per thread"),
    ("scale_touch", "touch, per thread"),
    ("bulk32", "32 gets + 32 puts, batch calls where there are"),
    ("singles32", "32 single gets, then 32 single puts"),
    ("burst16", "16 gets, then the 16 puts"),
    ("burst48", "48 gets, then the 48 puts"),
    ("burst128", "128 gets, then the 128 puts"),
    ("cold_prefill_spread", "cold_prefill, pages written off byte 0"),
    ("bulk32_spread", "bulk32, a byte off byte 0 written"),
    ("singles32_spread", "singles32, a byte off byte 0 written"),
    ("burst128_spread", "burst128, a byte off byte 0 written"),
]
UNITS = {
    "hot": "ns/op", "touch": "ns/op", "mixed_hot": "ns/op",
    "mixed_touch": "ns/op", "cold": "ns/get", "cold_prefill": "ns/get",
    "handoff": "ns/buffer", "handoff_raw": "ns/buffer",
    "scale_hot": "ns/op/thread",
    "scale_touch": "ns/op/thread", "bulk32": "ns/buffer",
    "singles32": "ns/buffer", "burst16": "ns/buffer", "burst48": "ns/buffer",
    "burst128": "ns/buffer", "cold_prefill_spread": "ns/get",
    "bulk32_spread": "ns/buffer", "singles32_spread": "ns/buffer",
    "burst128_spread": "ns/buffer",
}


def size_name(n):
    n = int(n)
    if n == 0:
        return "mix"
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return "%d %s" % (n >> shift, unit)
    return "%d B" % n


def fmt_num(v):
    """3 significant digits, compact."""
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e9:
        return "%.3gG" % (v / 1e9)
    if a >= 1e6:
        return "%.3gM" % (v / 1e6)
    if a >= 1e4:
        return "%.3gk" % (v / 1e3)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def fmt_time(ns):
    """Nanoseconds with a unit that keeps 3 significant digits."""
    if ns is None:
        return "-"
    a = abs(ns)
    if a >= 1e6:
        return "%.3g ms" % (ns / 1e6)
    if a >= 1e4:
        return "%.3g us" % (ns / 1e3)
    return fmt_num(ns)


def cell(r):
    """median (min-max) of a timed record, or why there is none. One unit
    and one precision per cell, chosen from the median."""
    if r is None:
        return "-"
    if r.get("refused"):
        return "refused"
    med, lo, hi = r["median"], r["min"], r["max"]
    if med is None:
        return "-"
    div, unit = 1, ""
    if abs(med) >= 1e6:
        div, unit = 1e6, " ms"
    elif abs(med) >= 1e4:
        div, unit = 1e3, " us"
    m = abs(med) / div
    prec = 2 if m < 10 else 1 if m < 100 else 0
    f = "%%.%df" % prec
    return (f + " (" + f + "-" + f + ")%s") % (med / div, lo / div, hi / div,
                                               unit)


def load(raw):
    runs, records, metas = {}, [], {}
    tsv = os.path.join(raw, "runs.tsv")
    if os.path.exists(tsv):
        with open(tsv) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 2:
                    continue
                while len(parts) < 4:
                    parts.append("")
                runs[parts[0]] = {"status": parts[1],
                                  "preload": parts[2] or None,
                                  "note": parts[3]}
    for name in sorted(os.listdir(raw)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(raw, name)) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    print("report.py: bad line in %s: %s" % (name, line[:80]),
                          file=sys.stderr)
                    continue
                if "meta" in obj:
                    metas[obj["meta"]["run"]] = obj["meta"]
                else:
                    records.append(obj)
    for run, meta in metas.items():
        runs.setdefault(run, {"status": "ok", "preload": None, "note": ""})
        runs[run]["meta"] = meta
    icount, icount_note, icount_var = [], None, []
    for parts in tsv_rows(raw, "icount_variants.tsv"):
        if len(parts) < 6:
            continue
        icount_var.append({"scenario": parts[0], "variant": parts[1],
                           "size": int(parts[2]), "config": parts[3],
                           "instructions_per_pair": float(parts[4]),
                           "allocator_instructions_per_pair":
                           number_or_none(parts[5])})
    for parts in tsv_rows(raw, "icount.tsv"):
        if parts[0] == "#skipped":
            icount_note = parts[1] if len(parts) > 1 else "skipped"
            continue
        if len(parts) < 4:
            continue
        icount.append({"competitor": parts[0], "backend": parts[1],
                       "size": int(parts[2]),
                       "instructions_per_pair": float(parts[3]),
                       "allocator_instructions_per_pair":
                       number_or_none(parts[4] if len(parts) > 4 else "nan")})
    return runs, records, icount, icount_note, icount_var


def tsv_rows(raw, name):
    """The tab-separated fields of each line of raw/name (none if absent)."""
    path = os.path.join(raw, name)
    if not os.path.exists(path):
        return
    with open(path) as f:
        for line in f:
            yield line.rstrip("\n").split("\t")


def number_or_none(text):
    """A float, or None for "nan" (a count that could not be made)."""
    v = float(text)
    return None if v != v else v


def handoff_raw(r):
    """The handoff figure with the ring included (its median is raw_median;
    min and max were lowered by the ring's median, ring_ns): a row of its
    own, because the ring alone, timed apart, can cost more than the ring
    beside a fast get/put (its two threads then contend on every slot), which
    makes the subtracted figure meaningless (even negative) for the fastest
    pools."""
    out = {k: v for k, v in r.items()}
    out["scenario"] = "handoff_raw"
    ring = r.get("ring_ns")
    if r.get("refused") or ring is None or r.get("raw_median") is None:
        return out
    out["median"] = r["raw_median"]
    out["min"] = r["min"] + ring
    out["max"] = r["max"] + ring
    return out


def index(records):
    """(scenario, size, threads) -> {competitor: record}; the zeropool-only
    families (records with a "variant") are left out. Each handoff record
    also gives a handoff_raw one (handoff_raw)."""
    out = {}
    for r in records:
        if "variant" in r:
            continue
        for x in ([r, handoff_raw(r)] if r["scenario"] == "handoff" else [r]):
            key = (x["scenario"], int(x["size"]), int(x["threads"]))
            out.setdefault(key, {})[x["competitor"]] = x
    return out


def present(records):
    seen = {r["competitor"] for r in records}
    cols = [c for c in COMPETITORS if c in seen]
    cols += sorted(seen - set(cols))
    return cols


def ratio_of(row, time_like=True):
    """(ratio, best competitor): best other / zeropool; > 1: zeropool ahead."""
    zp = row.get("zeropool")
    if not zp or zp.get("refused") or zp.get("median") in (None, 0):
        return None, None
    best, who = None, None
    for comp, r in row.items():
        if comp == "zeropool" or r.get("refused") or r.get("median") is None:
            continue
        if best is None or r["median"] < best:
            best, who = r["median"], comp
    if best is None or best <= 0 or zp["median"] <= 0:
        return None, None  # a subtracted handoff figure at or below 0
    return best / zp["median"], who


def render_table(headers, rows, aligns=None):
    widths = [len(h) for h in headers]
    for row in rows:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    aligns = aligns or ["<"] + [">"] * (len(headers) - 1)
    lines = []
    fmt = "  ".join("{:%s%d}" % (a, w) for a, w in zip(aligns, widths))
    lines.append(fmt.format(*headers).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(fmt.format(*row).rstrip())
    return "\n".join(lines)


# ------------------------------------------- zeropool-only families

BATCH_MODES = [
    ("batch_st", "1 thread"),
    ("batch_mt", "2 threads, each its own"),
    ("batch_xthread", "2 threads, A gets, B puts"),
]
COST_SCENARIOS = [
    ("stats_cost", "per-thread counters compiled in vs out (zp_bench_twin)"),
    ("budget_cost", "private budget config.max_bytes = 1 GiB vs none"),
    ("debug_cost", "config.debug = 0, 1, 2"),
    ("huge_cold", "cold gets (fresh process), ZP_HUGE_PAGES vs not"),
    ("huge_touch", "touch loop (every page written), ZP_HUGE_PAGES vs not"),
]
# the issues' targets: (scenario, variant) costs at most this many ns per
# get+put pair more than the baseline
COST_TARGET_NS = {("stats_cost", "counters"): 0.5,
                  ("budget_cost", "budget_1GiB"): 0.5}
# placement controls: the same build as another variant, linked again
# placement controls: the same build and config as another variant, in a
# second copy of the library or a second pool
COST_CONTROL = {("stats_cost", "counters_copy"): "counters",
                ("budget_cost", "no_budget_2"): "no_budget"}
CONFIG_ORDER = {"default": 0, "depth=16": 1}
# the batch variants per cache: (variant prefix, JSON "cache")
BATCH_CACHES = [("", "thread"), ("handle_", "handle")]


def fmt_delta(d):
    """+median (+min .. +max) of a difference in ns, one unit for all."""
    if not d or d.get("median") is None:
        return "-"
    div, unit, a = 1, "", abs(d["median"])
    if a >= 1e4:
        div, unit, a = 1e3, " us", a / 1e3
    prec = 2 if a < 10 else 1 if a < 100 else 0
    f = "%%+.%df" % prec
    return (f + " (" + f + " .. " + f + ")%s") % (
        d["median"] / div, d["min"] / div, d["max"] / div, unit)


def ok_median(r):
    return r is not None and not r.get("refused") and r.get("median") is not None


def per1k(v):
    return "-" if v is None else fmt_num(v) if v >= 10 or v == 0 else "%.2f" % v


def build_families(records, icount_var):
    """Tables for batch, the hot-path costs and the depth sweep; returns
    (text lines, derived rows for the JSON)."""
    fam = [r for r in records if "variant" in r]
    out, derived = [], {}
    if not fam and not icount_var:
        return out, derived

    def find(sc, size, variant, config=None):
        for r in fam:
            if r["scenario"] == sc and int(r["size"]) == size and \
                    r["variant"] == variant and \
                    (config is None or r.get("config") == config):
                return r
        return None

    # ---- batch
    rows, drows = [], []
    for sc, what in BATCH_MODES:
        keys = sorted({(int(r["size"]), r.get("config", "default"))
                       for r in fam if r["scenario"] == sc},
                      key=lambda k: (k[0], CONFIG_ORDER.get(k[1], 9), k[1]))
        for (size, cfg), (pre, cache) in ((k, c) for k in keys
                                          for c in BATCH_CACHES):
            one = find(sc, size, pre + "single", cfg)
            bat = find(sc, size, pre + "batch", cfg)
            if one is None and bat is None:
                continue  # a run from before the handle rows
            speed = None
            if ok_median(one) and ok_median(bat) and bat["median"] > 0:
                speed = one["median"] / bat["median"]
            c1 = one.get("contention_per_1k_ops") if ok_median(one) else None
            c2 = bat.get("contention_per_1k_ops") if ok_median(bat) else None
            d1 = one.get("depot_per_1k_ops") if ok_median(one) else None
            d2 = bat.get("depot_per_1k_ops") if ok_median(bat) else None
            rows.append(["%s, %s%s" % (what, size_name(size),
                                       ", handle" if pre else ""), cfg,
                         cell(one),
                         cell(bat),
                         "-" if speed is None else "%.2fx" % speed,
                         "%s / %s" % (per1k(c1), per1k(c2)),
                         "%s / %s" % (per1k(d1), per1k(d2))])
            drows.append({
                "scenario": sc, "size": size, "config": cfg, "cache": cache,
                "threads": 1 if sc == "batch_st" else 2,
                "single_median": one["median"] if ok_median(one) else None,
                "batch_median": bat["median"] if ok_median(bat) else None,
                "speedup": None if speed is None else round(speed, 4),
                "contention_per_1k_ops_single": c1,
                "contention_per_1k_ops_batch": c2,
                "depot_per_1k_ops_single": d1, "depot_per_1k_ops_batch": d2})
    if rows:
        derived["batch"] = drows
        out.append("Batch: 32 buffers per zp_get_batch/zp_put_batch vs 32 "
                   "zp_get/zp_put calls; ns per buffer (its get")
        out.append("and its put), median (min-max); speed-up = singles / "
                   "batch (> 1: the batch calls are faster).")
        out.append("Per 1,000 buffers, singles / batch: contention = depot "
                   "lock acquisitions that found the lock")
        out.append("held; depot = gets served by the depot (or fresh "
                   "memory). depth=16: a batch of 32 is larger than the")
        out.append("thread cache and goes to the depot directly. \", handle\": "
                   "the same through one cache handle per thread")
        out.append("(zp_cache_get/_put, zp_cache_get_batch/_put_batch) "
                   "instead of the threads' caches.")
        out.append(render_table(
            ["mode, size", "config", "singles ns/buffer", "batch ns/buffer",
             "speed-up", "contention/1k", "depot/1k"], rows,
            ["<", "<", ">", ">", ">", ">", ">"]))
        out.append("")

    # ---- hot-path costs
    def icount_of(sc, variant, size):
        for i in icount_var:
            if i["scenario"] == sc and i["variant"] == variant and \
                    i["size"] == size:
                return i
        return None

    rows, drows, verdicts = [], [], []
    for sc, what in COST_SCENARIOS:
        recs = [r for r in fam if r["scenario"] == sc]
        sizes = sorted({int(r["size"]) for r in recs} |
                       {i["size"] for i in icount_var if i["scenario"] == sc})
        for size in sizes:
            variants = [r["variant"] for r in recs if int(r["size"]) == size]
            for i in icount_var:
                if i["scenario"] == sc and i["size"] == size and \
                        i["variant"] not in variants:
                    variants.append(i["variant"])
            base_ic = icount_of(sc, variants[0], size) if variants else None
            for vi, var in enumerate(variants):
                r = find(sc, size, var)
                ic = icount_of(sc, var, size)
                ins = ic and (ic["allocator_instructions_per_pair"]
                              if ic["allocator_instructions_per_pair"]
                              is not None else ic["instructions_per_pair"])
                bins = base_ic and (base_ic["allocator_instructions_per_pair"]
                                    if base_ic["allocator_instructions_per_pair"]
                                    is not None
                                    else base_ic["instructions_per_pair"])
                dins = None if vi == 0 or ins is None or bins is None \
                    else ins - bins
                delta = r.get("delta") if r and not r.get("refused") else None
                rows.append(["%s %s" % (sc, size_name(size)), var,
                             cell(r) if r else "-",
                             "baseline" if vi == 0 else fmt_delta(delta),
                             "-" if ins is None else
                             ("%.0f" if ins >= 1000 else "%.1f") % ins,
                             "-" if dins is None else
                             ("%+.0f" if abs(dins) >= 1000 else "%+.1f") % dins])
                target = COST_TARGET_NS.get((sc, var))
                twin = COST_CONTROL.get((sc, var))
                met = None
                if target is not None and vi > 0 and delta:
                    met = delta["median"] <= target
                    lay = r.get("delta_by_layout") or []
                    verdicts.append(
                        "%s %s, %s vs %s: %+.2f ns per pair (median of %d "
                        "paired rounds in %d heap layouts, layout medians "
                        "%s): target <= %.1f ns %s" % (
                            sc, size_name(size), var, variants[0],
                            delta["median"], r.get("reps", 0), len(lay),
                            "/".join("%+.2f" % x for x in lay) or "-",
                            target, "met" if met else "NOT met"))
                if twin and delta:
                    ref = find(sc, size, twin)
                    rd = {"median": 0.0} if twin == variants[0] else \
                        ref.get("delta") if ref and not ref.get("refused") \
                        else None
                    what = "a second pool like %s" % twin \
                        if twin == variants[0] else \
                        "the %s build linked a second time" % twin
                    if rd:
                        verdicts.append(
                            "%s %s, control: %s (%s) vs %s: %+.2f ns, %.2f ns "
                            "from %s: what placement alone moves in this run"
                            % (sc, size_name(size), var, what, variants[0],
                               delta["median"],
                               abs(delta["median"] - rd["median"]), twin))
                drows.append({
                    "scenario": sc, "size": size, "variant": var,
                    "role": "baseline" if vi == 0 else
                    "control" if twin else "variant",
                    "config": (r or ic or {}).get("config"),
                    "baseline": variants[0],
                    "delta_ns_by_layout": r.get("delta_by_layout")
                    if r and vi > 0 else None,
                    "median": r["median"] if ok_median(r) else None,
                    "min": r["min"] if ok_median(r) else None,
                    "max": r["max"] if ok_median(r) else None,
                    "delta_ns": delta if vi > 0 else None,
                    "instructions_per_pair": ins,
                    "delta_instructions": dins,
                    "target_ns": target if vi > 0 else None,
                    "target_met": met})
    if rows:
        derived["costs"] = drows
        out.append("Hot-path costs: get, write 1 byte, put on one thread; "
                   "the variants of a row group run in")
        out.append("alternating rounds. vs baseline = median (min .. max) "
                   "of the per-round differences to the")
        out.append("group's first variant. instr/pair: callgrind, in the "
                   "allocator (the loop's own subtracted).")
        out.append(render_table(
            ["scenario size", "variant", "ns/pair", "vs baseline ns",
             "instr/pair", "vs baseline instr"], rows,
            ["<", "<", ">", ">", ">", ">"]))
        for v in verdicts:
            out.append("  " + v)
        out.append("")

    # ---- depth sweep
    recs = [r for r in fam if r["scenario"] == "depth"]
    if recs:
        depths = sorted({r["cache_depth"] for r in recs})
        ks = sorted({r["burst"] for r in recs})
        rows, drows = [], []
        for d in depths:
            row = ["%d" % d]
            for k in ks:
                r = [x for x in recs if x["cache_depth"] == d and
                     x["burst"] == k]
                r = r[0] if r else None
                row.append(cell(r))
                drows.append({"cache_depth": d, "burst": k,
                              "median": r["median"] if ok_median(r) else None,
                              "min": r["min"] if ok_median(r) else None,
                              "max": r["max"] if ok_median(r) else None,
                              "depot_per_1k_ops": r.get("depot_per_1k_ops")
                              if r else None})
            rows.append(row)
        derived["depth"] = drows
        out.append("Depth sweep: 64 KiB buffers, bursts of k gets then k "
                   "puts on one thread; ns per buffer (get")
        out.append("+ put), median (min-max) of %d repetitions, by "
                   "cache_depth (rows) and k (columns)."
                   % (recs[0].get("reps") or 5))
        out.append(render_table(["cache_depth"] + ["k=%d" % k for k in ks],
                                rows))
        out.append("")
    return out, derived


# ---------------------------------- object pools and async acquisition

OBJECT_ROWS = [
    ("objects_trivial", "%d B struct, trivial init"),
    ("objects_zlib", "%d B z_stream: deflateInit2 / deflateReset / deflateEnd"),
]
ASYNC_TARGET_US = 50.0


def fmt_us(v):
    if v is None:
        return "-"
    return "%.1f" % v if v >= 100 else "%.2f" % v


def spread(d):
    """median (min-max) of a {median, min, max} object, or -."""
    if not d or d.get("median") is None:
        return "-"
    return "%s (%s-%s)" % (fmt_us(d["median"]), fmt_us(d["min"]),
                           fmt_us(d["max"]))


def build_objects_async(records):
    """Tables for zp_bench_objects (object pools vs malloc + init + free,
    packing) and zp_bench_async (wake-up latency, longest loop call).
    Returns (text lines, derived rows for the JSON)."""
    out, derived = [], {}

    def find(sc, variant=None, competitor=None):
        for r in records:
            if r.get("scenario") == sc and \
                    (variant is None or r.get("variant") == variant) and \
                    (competitor is None or r.get("competitor") == competitor):
                return r
        return None

    # ---- objects
    rows, drows = [], []
    mname = "malloc"
    for sc, what in OBJECT_ROWS:
        pool, mal = find(sc, "pool"), find(sc, "malloc")
        if pool is None and mal is None:
            continue
        if mal is not None:
            mname = mal.get("competitor", "malloc")
        skipped = bool((pool or {}).get("skipped") or (mal or {}).get("skipped"))
        ratio = (pool or {}).get("ratio") if ok_median(pool) and \
            ok_median(mal) else None
        flt = (pool or mal or {}).get("minflt_per_op") or {}
        size = int((pool or mal)["size"])
        rows.append([
            what % size if size else what.replace("%d B ", ""),
            "skipped" if skipped else cell(pool),
            "skipped" if skipped else cell(mal),
            "-" if not ratio else "%.2fx (%.2f-%.2f)" % (
                ratio["median"], ratio["min"], ratio["max"]),
            "-" if skipped or not flt else "%.3g / %.3g" % (
                flt.get("pool", 0), flt.get("malloc", 0))])
        drows.append({
            "scenario": sc, "object_size": size, "skipped": skipped,
            "note": (pool or mal).get("note") if skipped else None,
            "pool_median": pool["median"] if ok_median(pool) else None,
            "pool_min": pool["min"] if ok_median(pool) else None,
            "pool_max": pool["max"] if ok_median(pool) else None,
            "malloc_competitor": (mal or {}).get("competitor"),
            "malloc_median": mal["median"] if ok_median(mal) else None,
            "malloc_min": mal["min"] if ok_median(mal) else None,
            "malloc_max": mal["max"] if ok_median(mal) else None,
            "ratio": ratio, "minflt_per_op": flt or None})
    pk_zp = find("objects_packing", competitor="zeropool")
    pk_m = [r for r in records if r.get("scenario") == "objects_packing" and
            r.get("competitor") != "zeropool"]
    pk_m = pk_m[0] if pk_m else None
    if rows or pk_zp:
        out.append("Object pools: one object got and put back through "
                   "zp_objpool_create's typed wrappers (init once,")
        out.append("reset on every put) vs malloc + init + free (+ fini) "
                   "per object; ns per object, median (min-max)")
        out.append("over 4 heap layouts, the two in alternating rounds. "
                   "malloc / pool: median (min-max) of the")
        out.append("per-round ratios (> 1: the pool is faster). faults/op: "
                   "page faults per object, pool / malloc.")
        if rows:
            out.append(render_table(
                ["object", "pool ns/op", "%s ns/op" % mname, "malloc / pool",
                 "faults/op"], rows, ["<", ">", ">", ">", ">"]))
        for r in [x for x in (find("objects_zlib", "pool"),) if x and
                  x.get("skipped")]:
            out.append("  objects_zlib: %s" % r.get("note"))
        if pk_zp:
            line = ("Packing, {:,} live %d-byte objects (align 8): zeropool "
                    "bytes_reserved / bytes of objects = %s (%s bytes)".format(
                        pk_zp.get("live_objects", 0)) % (
                        pk_zp.get("object_size", 0),
                        "%.3f" % pk_zp["median"] if ok_median(pk_zp) else "-",
                        "{:,}".format(pk_zp.get("bytes_reserved", 0))))
            out.append(line)
            if pk_m:
                out.append("  %s, as many malloc(%d), bytes in use / bytes of "
                           "objects (mallinfo2) = %s (%s bytes)" % (
                               pk_m.get("competitor"),
                               pk_m.get("object_size", 0),
                               "%.3f" % pk_m["median"] if ok_median(pk_m)
                               else "- (%s)" % pk_m.get("note", ""),
                               "{:,}".format(int(pk_m.get("bytes_used", 0)))))
            derived["objects_packing"] = {
                "live_objects": pk_zp.get("live_objects"),
                "object_size": pk_zp.get("object_size"),
                "align": pk_zp.get("align"),
                "bytes_reserved": pk_zp.get("bytes_reserved"),
                "ratio": pk_zp["median"] if ok_median(pk_zp) else None,
                "malloc_competitor": pk_m.get("competitor") if pk_m else None,
                "malloc_bytes_used": pk_m.get("bytes_used") if pk_m else None,
                "malloc_ratio": pk_m["median"] if ok_median(pk_m) else None}
        out.append("")
    if drows:
        derived["objects"] = drows

    # ---- async: wake-up latency
    wake = [r for r in records if r.get("scenario") == "async_wake"]
    if wake:
        rows, drows = [], []
        for r in wake:
            ok = ok_median(r)
            rows.append([r.get("variant", ""),
                         "refused" if r.get("refused") else spread(r.get("p50")),
                         "refused" if r.get("refused") else spread(r.get("p99")),
                         str(r.get("rounds", "-"))])
            drows.append({"variant": r.get("variant"),
                          "p50_us": r.get("p50") if ok else None,
                          "p99_us": r.get("p99") if ok else None,
                          "rounds": r.get("rounds")})
        derived["async_wake"] = drows
        out.append("Async wake-up: thread B puts a buffer while the loop "
                   "thread A's zp_get_async waits (EINPROGRESS);")
        out.append("latency from just before B's zp_put to A's callback "
                   "(A woken through zp_loop_fd, zp_loop_dispatch), us:")
        out.append("p50 and p99 of each repetition's rounds, median (min-max) "
                   "over repetitions. poll_block: A sleeps in")
        out.append("poll() (an event loop); poll_spin: A spins on poll() "
                   "with timeout 0 (no kernel wake-up of a sleeper).")
        out.append(render_table(["A waits by", "p50 us", "p99 us",
                                 "rounds/rep"], rows))
        out.append("")

    # ---- async: the longest call on the loop thread
    stall = [r for r in records if r.get("scenario") == "async_stall"]
    if stall:
        rows, drows, lines = [], [], []
        for r in stall:
            ok = ok_median(r)
            rows.append([r.get("variant", ""),
                         "refused" if not ok else spread(r.get("p50")),
                         "refused" if not ok else spread(r.get("p99")),
                         "refused" if not ok else spread(r.get("p99.9")),
                         "refused" if not ok else spread(r.get("max")),
                         "-" if not ok else fmt_us(r.get("max_all")),
                         "%s / %s / %s" % (r.get("calls", 0),
                                           r.get("excluded_calls", 0),
                                           r.get("slept_calls", 0))])
            met = None
            if ok:
                met = r["median"] < ASYNC_TARGET_US
                lines.append(
                    "%s: p99.9 of a loop-thread call %.2f us (median of %d "
                    "repetitions): target < %g us %s" % (
                        r.get("variant"), r["median"], r.get("reps", 0),
                        ASYNC_TARGET_US, "met" if met else "NOT met"))
                per = []
                for name, d in (r.get("by_call") or {}).items():
                    if d.get("calls"):
                        per.append("%s p99.9 %s max %s (%d calls, %d slept)" % (
                            name, fmt_us(d.get("p99.9")), fmt_us(d.get("max")),
                            d["calls"], d.get("slept", 0)))
                if per:
                    lines.append("  per call, kept repetitions pooled: " +
                                 "; ".join(per))
                lines.append(
                    "  %s callbacks, %s requests queued, %s cancelled, %s "
                    "served at once; other threads %s get+put/s" % (
                        r.get("callbacks", 0), r.get("queued", 0),
                        r.get("cancels", 0), r.get("immediate", 0),
                        fmt_num(r.get("hammer_ops_per_s"))))
            drows.append({
                "variant": r.get("variant"), "hammers": r.get("hammers"),
                "p50_us": r.get("p50") if ok else None,
                "p99_us": r.get("p99") if ok else None,
                "p999_us": r.get("p99.9") if ok else None,
                "max_us": r.get("max") if ok else None,
                "max_all_us": r.get("max_all") if ok else None,
                "calls": r.get("calls"),
                "excluded_calls": r.get("excluded_calls"),
                "slept_calls": r.get("slept_calls"),
                "by_call": r.get("by_call") if ok else None,
                "target_us": ASYNC_TARGET_US, "target_met": met})
        derived["async_stall"] = drows
        out.append("Async, longest loop call: every zp_get_async, "
                   "zp_loop_dispatch, zp_cancel and zp_put on the loop")
        out.append("thread timed alone while its requests wait and the "
                   "other threads get and put 4 KiB at full speed")
        out.append("on the same pool and budget; us, per repetition, median "
                   "(min-max) over repetitions. calls: timed /")
        out.append("excluded (the thread was preempted without sleeping) / "
                   "slept (went to sleep inside the call).")
        out.append(render_table(
            ["other threads", "p50 us", "p99 us", "p99.9 us", "max us",
             "max, all", "calls / excl / slept"], rows,
            ["<", ">", ">", ">", ">", ">", ">"]))
        out.extend("  " + x for x in lines)
        out.append("")
    return out, derived


def build_uring(records):
    """The io_uring echo rows of zp_bench_uring: pool-fed ring vs a static
    ring of the same memory, per connection count. Returns (text lines,
    derived rows for the JSON)."""
    recs = [r for r in records if r.get("scenario") == "uring_echo"]
    if not recs:
        return [], []
    rows, drows = [], []
    by = {}
    for r in recs:
        by[(r.get("connections") or r.get("threads"), r.get("variant"))] = r
    for conns in sorted({k[0] for k in by if k[0]}):
        pool, stat = by.get((conns, "pool")), by.get((conns, "static"))
        for name, r in (("pool", pool), ("static", stat)):
            if r is None:
                continue
            ok = ok_median(r)
            p99 = r.get("p99_us") or {}
            p50 = r.get("p50_us") or {}
            rows.append([
                str(conns), name,
                "refused" if not ok else "%s (%s-%s)" % (
                    fmt_num(r["median"]), fmt_num(r["min"]), fmt_num(r["max"])),
                "-" if not ok else spread(p50),
                "-" if not ok else spread(p99),
                "%.1f" % (r.get("maxrss_kib", 0) / 1024.0),
                "%.2f" % (r.get("peak_reserved", 0) / 1048576.0),
                str(r.get("exhaustions", "-"))])
            drows.append({
                "connections": conns, "variant": name,
                "msgs_per_s": r["median"] if ok else None,
                "msgs_per_s_min": r["min"] if ok else None,
                "msgs_per_s_max": r["max"] if ok else None,
                "p50_us": p50 if ok else None, "p99_us": p99 if ok else None,
                "maxrss_kib": r.get("maxrss_kib"),
                "peak_reserved": r.get("peak_reserved"),
                "memory": r.get("memory"),
                "exhaustions": r.get("exhaustions"),
                "note": r.get("note")})
        if ok_median(pool) and ok_median(stat):
            for d in drows:
                if d["connections"] == conns and d["variant"] == "pool":
                    d["pool_over_static"] = pool["median"] / stat["median"]
    mem = recs[0].get("memory", 0)
    out = ["io_uring echo, loopback: one %d-byte message in flight per "
           "connection, echoed from the receive's" % recs[0].get("message", 0),
           "buffer. pool: libzeropool-uring ring of 4 KiB buffers from a pool "
           "with a %s MiB budget; static: %d" % (
               "%.0f" % (mem / 1048576.0), mem // 4096),
           "malloc'd 4 KiB buffers registered once. msgs/s and round-trip "
           "us: median (min-max) over repetitions;",
           "RSS: the child's peak (client included); ENOBUFS: receives that "
           "ended with the ring dry.",
           render_table(["conns", "ring", "msgs/s", "p50 us", "p99 us",
                         "max RSS MiB", "pool peak MiB", "ENOBUFS"], rows,
                        ["<", "<", ">", ">", ">", ">", ">", ">"]),
           ""]
    return out, drows


# ---------------------------------------------- compression: codec and zpz

def build_codec(records):
    """Tables for zp_bench_codec: the codec library's MB/s against the
    engines' libraries (fresh and reused contexts, zlib), and zpz against
    pigz, gzip and zstd (whole process). Returns (text lines, derived)."""
    out, derived = [], {}

    def mbs(r):
        if r is None:
            return "-"
        if r.get("skipped"):
            return "skipped"
        if not ok_median(r):
            return "refused"
        return "%.0f (%.0f-%.0f)" % (r["median"], r["min"], r["max"])

    codec = [r for r in records if r.get("scenario") == "codec"]
    if codec:
        keys = []
        for r in codec:
            k = (r.get("codec"), r.get("level"), r.get("direction"), int(r["size"]))
            if k not in keys:
                keys.append(k)
        rows, drows = [], []
        for k in keys:
            by = {r["variant"]: r for r in codec
                  if (r.get("codec"), r.get("level"), r.get("direction"),
                      int(r["size"])) == k}
            zp, fr, ru, zl = (by.get(v) for v in ("zeropool", "fresh", "reused", "zlib"))
            eng = (ru or fr or {}).get("engine", "-")
            ratio = zp["median"] / ru["median"] if ok_median(zp) and ok_median(ru) \
                and ru["median"] else None
            zratio = zp["median"] / zl["median"] if ok_median(zp) and ok_median(zl) \
                and zl["median"] else None
            rows.append(["%s -%s %s" % (k[0], k[1], k[2]), size_name(k[3]), mbs(zp),
                         mbs(fr), mbs(ru), eng,
                         "-" if ratio is None else "%.2f" % ratio, mbs(zl),
                         "-" if zratio is None else "%.2f" % zratio])
            drows.append({"codec": k[0], "level": k[1], "direction": k[2],
                          "chunk": k[3], "engine": eng,
                          "zeropool_mbs": zp["median"] if ok_median(zp) else None,
                          "fresh_mbs": fr["median"] if ok_median(fr) else None,
                          "reused_mbs": ru["median"] if ok_median(ru) else None,
                          "zlib_mbs": zl["median"] if ok_median(zl) else None,
                          "zeropool_vs_reused": ratio, "zeropool_vs_zlib": zratio})
        derived["codec"] = drows
        out.append("Codec library: MB/s of uncompressed data, one thread, median "
                   "(min-max) over repetitions; 16 MiB")
        out.append("of the corpus in chunks. zeropool: zp_compress / zp_decompress; "
                   "fresh: the engine's library with a")
        out.append("new context and malloc'd output per chunk; reused: its best call "
                   "with one context and one buffer;")
        out.append("zp/reused: the goal is >= 0.97. zlib: a reused z_stream "
                   "(deflateReset / inflateReset).")
        out.append(render_table(
            ["codec level direction", "chunk", "zeropool", "fresh", "reused",
             "engine", "zp/reused", "zlib", "zp/zlib"], rows,
            ["<", ">", ">", ">", ">", "<", ">", ">", ">"]))
        out.append("")

    proc = [r for r in records if r.get("scenario") == "zpz"]
    if proc:
        keys = []
        for r in proc:
            k = (r.get("format"), r.get("level"), r.get("direction"))
            if k not in keys:
                keys.append(k)
        tools = ["zpz", "pigz", "gzip", "zstd"]
        rows, drows = [], []
        for k in keys:
            by = {r["competitor"]: r for r in proc
                  if (r.get("format"), r.get("level"), r.get("direction")) == k}
            cells = []
            for t in tools:
                r = by.get(t)
                if r is None:
                    cells.append("")
                elif r.get("skipped"):
                    cells.append("skipped")
                elif not ok_median(r):
                    cells.append("failed")
                else:
                    cells.append("%.3f (%.3f-%.3f)" % (r["median"], r["min"], r["max"]))
            z = by.get("zpz")
            others = [by[t] for t in tools[1:] if ok_median(by.get(t))]
            best = min(others, key=lambda r: r["median"]) if others else None
            sp = best["median"] / z["median"] if ok_median(z) and best else None
            rss = "%.1f" % (z["max_rss_kib"] / 1024.0) if z and z.get("max_rss_kib") else "-"
            ratio = "-"
            if z and z.get("output_bytes", -1) > 0 and z.get("direction") == "compress":
                ratio = "%.3f" % (z["output_bytes"] / float(z["input_bytes"]))
            cpu = "-"
            if z and best and (z.get("cpu_s") or -1) > 0 and (best.get("cpu_s") or -1) > 0:
                cpu = "%.2f / %.2f" % (z["cpu_s"], best["cpu_s"])
            rows.append(["%s -%s %s" % k] + cells +
                        ["-" if sp is None else "%.2fx %s" % (sp, best["competitor"]),
                         cpu, rss, ratio])
            drows.append({"format": k[0], "level": k[1], "direction": k[2],
                          "seconds": {t: by[t]["median"] for t in tools
                                      if ok_median(by.get(t))},
                          "speedup_vs_best": sp,
                          "best_other": best["competitor"] if best else None,
                          "cpu_s": {t: by[t].get("cpu_s") for t in tools
                                    if ok_median(by.get(t))},
                          "zpz_max_rss_kib": z.get("max_rss_kib") if z else None,
                          "zpz_output_bytes": z.get("output_bytes") if z else None})
        derived["zpz"] = drows
        out.append("zpz against pigz, gzip and zstd: whole process, 2 threads "
                   "(-p 2 / -T2; gzip has one), the 64 MiB")
        out.append("corpus on stdin, output to /dev/null; seconds, median (min-max) "
                   "of 3 runs. speed-up: the fastest other")
        out.append("tool's median / zpz's. CPU s: median user + sys seconds, zpz / "
                   "that tool (steadier on a busy")
        out.append("machine). RSS: zpz's peak, MiB. ratio: zpz's compressed / "
                   "uncompressed size.")
        out.append(render_table(["format level direction"] + tools +
                                ["zpz speed-up", "CPU s", "zpz RSS", "ratio"], rows,
                                ["<"] + [">"] * (len(tools) + 4)))
        out.append("")
    return out, derived


def build_handle(records, icount):
    """The cache handle next to the thread cache: the hot loop (scenario
    hot_handle: ns, and the icount rows of zeropool_handle vs zeropool) and
    the batch modes (their handle_ variants). Returns (text lines, derived
    rows for the JSON)."""
    fam = [r for r in records if "variant" in r]

    def find(sc, size, variant, config=None):
        for r in fam:
            if r["scenario"] == sc and int(r["size"]) == size and \
                    r["variant"] == variant and \
                    (config is None or r.get("config") == config):
                return r
        return None

    def instr(comp, size):
        for i in icount:
            if i["competitor"] == comp and i["size"] == size:
                a = i.get("allocator_instructions_per_pair")
                return a if a is not None else i["instructions_per_pair"]
        return None

    def ratio(a, b):
        return None if a is None or b in (None, 0) else a / b

    def fmt_ratio(x):
        return "-" if x is None else "%.2fx" % x

    def fmt_ins(x):
        return "-" if x is None else ("%.0f" if x >= 1000 else "%.1f") % x

    rows, drows, verdicts = [], [], []
    sizes = sorted({int(r["size"]) for r in fam
                    if r["scenario"] == "hot_handle"} |
                   {i["size"] for i in icount
                    if i["competitor"] == "zeropool_handle"})
    for size in sizes:
        tls, hdl = find("hot_handle", size, "thread_cache"), \
            find("hot_handle", size, "handle")
        ctl = find("hot_handle", size, "thread_cache_2")
        delta = hdl.get("delta") if ok_median(hdl) else None
        cdelta = ctl.get("delta") if ok_median(ctl) else None
        ti, hi = instr("zeropool", size), instr("zeropool_handle", size)
        tm = tls["median"] if ok_median(tls) else None
        hm = hdl["median"] if ok_median(hdl) else None
        ok_ns = None if delta is None or cdelta is None else \
            delta["median"] <= abs(cdelta["median"])
        ok_ins = None if ti is None or hi is None else hi <= ti
        rows.append(["hot %s" % size_name(size), "ns/pair",
                     cell(tls) if tls else "-", cell(hdl) if hdl else "-",
                     fmt_ratio(ratio(hm, tm)), fmt_delta(delta),
                     "-" if cdelta is None else "%+.2f" % cdelta["median"],
                     fmt_ins(ti), fmt_ins(hi), fmt_ratio(ratio(hi, ti))])
        drows.append({
            "scenario": "hot", "size": size, "config": "default",
            "variant": None, "unit": "ns/pair", "thread_cache_median": tm,
            "handle_median": hm, "ratio": ratio(hm, tm), "delta_ns": delta,
            "delta_ns_by_layout": hdl.get("delta_by_layout")
            if ok_median(hdl) else None,
            "control_delta_ns": cdelta,
            "thread_cache_instructions": ti, "handle_instructions": hi,
            "instructions_ratio": ratio(hi, ti),
            "no_slower_ns": ok_ns, "no_slower_instructions": ok_ins})
        parts = []
        if delta is not None:
            lay = hdl.get("delta_by_layout") or []
            parts.append(
                "%+.2f ns per pair (median of %d paired rounds in %d heap "
                "layouts, layout medians %s)" % (
                    delta["median"], hdl.get("reps", 0), len(lay),
                    "/".join("%+.2f" % x for x in lay) or "-"))
            if cdelta is not None:
                parts.append("control %+.2f ns: %s" % (
                    cdelta["median"], "no slower" if ok_ns else "SLOWER"))
        if ok_ins is not None:
            parts.append("%s vs %s instructions: %s" % (
                fmt_ins(hi), fmt_ins(ti), "no more" if ok_ins else "MORE"))
        if parts:
            verdicts.append("hot %s, handle vs thread cache: %s" % (
                size_name(size), "; ".join(parts)))

    for sc, what in BATCH_MODES:
        keys = sorted({(int(r["size"]), r.get("config", "default"))
                       for r in fam if r["scenario"] == sc and
                       r["variant"].startswith("handle_")},
                      key=lambda k: (k[0], CONFIG_ORDER.get(k[1], 9), k[1]))
        for size, cfg in keys:
            for var in ("batch", "single"):
                tls, hdl = find(sc, size, var, cfg), \
                    find(sc, size, "handle_" + var, cfg)
                tm = tls["median"] if ok_median(tls) else None
                hm = hdl["median"] if ok_median(hdl) else None
                rows.append(["%s %s %s, %s" % (sc, size_name(size), cfg,
                                               "batch calls" if var == "batch"
                                               else "singles"),
                             "ns/buffer", cell(tls) if tls else "-",
                             cell(hdl) if hdl else "-",
                             fmt_ratio(ratio(hm, tm)), "-", "-", "-", "-",
                             "-"])
                drows.append({
                    "scenario": sc, "size": size, "config": cfg,
                    "variant": var, "unit": "ns/buffer",
                    "thread_cache_median": tm, "handle_median": hm,
                    "ratio": ratio(hm, tm), "delta_ns": None,
                    "delta_ns_by_layout": None, "control_delta_ns": None,
                    "thread_cache_instructions": None,
                    "handle_instructions": None, "instructions_ratio": None,
                    "no_slower_ns": None, "no_slower_instructions": None})
    if not rows:
        return [], []
    out = ["Cache handle vs thread cache: the same loops through one warm "
           "cache handle per thread",
           "(zp_cache_get/_put, zp_cache_get_batch/_put_batch) and through "
           "the thread's cache (zp_get/_put, ...).",
           "hot: get, write 1 byte, put, both in alternating rounds over 4 "
           "heap layouts (their own pools,",
           "so the thread-cache figure can differ from the hot row above); "
           "batch rows: from the batch table.",
           "handle/TLS = handle median / thread-cache median (> 1: the "
           "handle is slower). handle - TLS =",
           "median (min .. max) of the per-round differences; control = a "
           "second thread-cache pool minus the",
           "first: what placement alone moves. instr: callgrind, per get+put "
           "pair in the allocator."]
    out.append(render_table(
        ["row", "unit", "thread cache", "handle", "handle/TLS",
         "handle - TLS ns", "control ns", "TLS instr", "handle instr",
         "instr ratio"], rows,
        ["<", "<", ">", ">", ">", ">", ">", ">", ">", ">"]))
    for v in verdicts:
        out.append("  " + v)
    out.append("")
    return out, drows


def load_bulk(raw):
    """icount_bulk.tsv: competitor, size, loop instructions, per buffer."""
    bulk = []
    for parts in tsv_rows(raw, "icount_bulk.tsv"):
        if len(parts) < 4:
            continue
        bulk.append({"competitor": parts[0], "size": int(parts[1]),
                     "instructions_per_iteration": float(parts[2]),
                     "instructions_per_buffer": number_or_none(parts[3])})
    return bulk


def render_bulk(bulk):
    """The bulk32 instruction table (empty string when there is none)."""
    if not bulk:
        return ""
    comps = []
    for b in bulk:
        if b["competitor"] not in comps:
            comps.append(b["competitor"])
    rows = []
    for size in sorted({b["size"] for b in bulk}):
        row = ["bulk32 " + size_name(size)]
        for c in comps:
            v = [b for b in bulk if b["competitor"] == c and b["size"] == size]
            row.append("-" if not v or v[0]["instructions_per_buffer"] is None
                       else "%.1f" % v[0]["instructions_per_buffer"])
        rows.append(row)
    return ("Instructions per buffer of a bulk get of 32 and a bulk put of "
            "them (callgrind, the loop's\nbyte writes subtracted):\n" +
            render_table(["scenario size"] + comps, rows) + "\n")


def build_report(runs, records, icount, icount_note, quick, seconds,
                 icount_var=()):
    idx = index(records)
    cols = present(records)
    out, summary = [], []

    # ---- time per operation
    rows = []
    for sc, what in TIME_SCENARIOS:
        keys = sorted(k for k in idx if k[0] == sc)
        for key in keys:
            row = idx[key]
            label = "%s %s" % (sc, size_name(key[1]))
            if sc.startswith("scale"):
                label += " x%d" % key[2]
            ratio, who = ratio_of(row)
            rtxt = "-" if ratio is None else "%.2fx %s" % (ratio, who)
            rows.append([label, UNITS.get(sc, "")] +
                        [cell(row.get(c)) for c in cols] + [rtxt])
            zp = row.get("zeropool")
            summary.append({
                "scenario": sc, "size": key[1], "threads": key[2],
                "unit": UNITS.get(sc, ""),
                "zeropool_median": None if not zp or zp.get("refused")
                else zp.get("median"),
                "best_competitor": who,
                "best_median": None if who is None else row[who]["median"],
                "ratio": None if ratio is None else round(ratio, 4)})
    if rows:
        out.append("Time per operation: median (min-max) over the kept "
                   "repetitions; lower is better.")
        out.append("ratio = best competitor / zeropool (> 1: zeropool is "
                   "ahead by that factor).")
        out.append(render_table(["scenario size", "unit"] + cols +
                                ["ratio best/zp"], rows))
        out.append("")

    # ---- scaling throughput
    rows = []
    for sc in ("scale_hot", "scale_touch"):
        for key in sorted(k for k in idx if k[0] == sc):
            row = idx[key]
            cells = []
            for c in cols:
                r = row.get(c)
                t = r.get("total_ops_per_s") if r else None
                if r is None:
                    cells.append("-")
                elif r.get("refused") or not t:
                    cells.append("refused")
                else:
                    cells.append("%s (%s-%s)" % (fmt_num(t["median"] / 1e6),
                                                 fmt_num(t["min"] / 1e6),
                                                 fmt_num(t["max"] / 1e6)))
            rows.append(["%s %s x%d" % (sc, size_name(key[1]), key[2])] + cells)
    if rows:
        out.append("Scaling: total throughput, million get+put pairs per "
                   "second (all threads); higher is better.")
        out.append(render_table(["scenario size threads"] + cols, rows))
        out.append("")

    # ---- counts per operation
    rows = []
    for sc in ("counts_cold", "counts_steady"):
        for key in sorted(k for k in idx if k[0] == sc):
            row = idx[key]
            cells = []
            for c in cols:
                r = row.get(c)
                if r is None:
                    cells.append("-")
                    continue
                if r.get("refused"):
                    cells.append("failed")
                    continue
                vals = [r.get("minflt_per_op"), r.get("syscalls_per_op"),
                        r.get("malloc_calls_per_op")]
                cells.append(" / ".join("?" if v is None else fmt_num(v)
                                        for v in vals))
            rows.append(["%s %s" % (sc, size_name(key[1]))] + cells)
    if rows:
        out.append("Per operation: page faults / system calls / malloc calls "
                   "(cold: the first gets, every page written;")
        out.append("steady: get, write every page, put after warm-up).")
        out.append(render_table(["scenario size"] + cols, rows))
        out.append("")

    # ---- instruction counts
    if icount:
        comps = [c for c in COMPETITORS if any(i["competitor"] == c
                                               for i in icount)]
        sizes = sorted({i["size"] for i in icount})
        rows = []
        for s in sizes:
            row = ["hot " + size_name(s)]
            for c in comps:
                v = [i for i in icount if i["competitor"] == c and i["size"] == s]
                if not v:
                    row.append("-")
                elif v[0].get("allocator_instructions_per_pair") is None:
                    row.append("%.1f" % v[0]["instructions_per_pair"])
                else:
                    row.append("%.1f (%.1f)" % (
                        v[0]["allocator_instructions_per_pair"],
                        v[0]["instructions_per_pair"]))
            rows.append(row)
        out.append("Instructions per get+put pair in the allocator, PLT stubs "
                   "included (in brackets: the whole")
        out.append("loop iteration with the byte write); callgrind, the same "
                   "from run to run.")
        out.append(render_table(["scenario size"] + comps, rows))
        out.append("")
    elif icount_note:
        out.append("Instruction counts: skipped (%s)." % icount_note)
        out.append("")

    # ---- zeropool against itself
    handle_text, handle_rows = build_handle(records, icount)
    out.extend(handle_text)
    fam_text, derived = build_families(records, list(icount_var))
    out.extend(fam_text)
    if handle_rows:
        derived["handle"] = handle_rows
    oa_text, oa_derived = build_objects_async(records)
    out.extend(oa_text)
    derived.update(oa_derived)
    ur_text, ur_rows = build_uring(records)
    out.extend(ur_text)
    if ur_rows:
        derived["uring_echo"] = ur_rows
    cz_text, cz_derived = build_codec(records)
    out.extend(cz_text)
    derived.update(cz_derived)

    # ---- notes
    notes = []
    for name in ["glibc", "stats_cost", "objects", "async", "codec", "uring", "jemalloc",
                 "mimalloc", "tcmalloc", "dpdk"]:
        r = runs.get(name)
        if r is None:
            continue
        if r["status"] != "ok":
            what = " (the dpdk32 and dpdk256 columns)" if name == "dpdk" else ""
            notes.append("%s%s: %s, %s" % (name, what, r["status"], r["note"]))
    if (runs.get("dpdk") or {}).get("status") == "ok":
        notes.append("dpdk32, dpdk256: DPDK rte_mempool, per-lcore cache 32 / "
                     "256, one pool per size (zp_bench_dpdk, its own run); no "
                     "mixed, cold or counts rows (see bench/README.md).")
    if any(k[0] == "bulk32" for k in idx):
        notes.append("bulk32: zeropool zp_get_batch/zp_put_batch, DPDK "
                     "rte_mempool_get_bulk/put_bulk; malloc and naive have no "
                     "batch call and make 32 single calls.")
    for r in records:
        if r.get("skipped"):
            notes.append("%s %s (%s): %s" % (r["scenario"], r.get("variant", ""),
                                             r["competitor"], r.get("note", "")))
    refused = [r for r in records if r.get("refused")]
    for r in refused:
        who = r["competitor"]
        if "variant" in r:
            who = "%s %s (%s)" % (who, r["variant"], r.get("config", ""))
        notes.append("%s %s x%s %s: %s" % (r["scenario"], size_name(r["size"]),
                                          r["threads"], who,
                                          r.get("note", "")))
    if refused:
        try:
            load = "%.1f" % os.getloadavg()[0]
        except OSError:
            load = "?"
        notes.append("%d figures refused: other processes took the CPU (load "
                     "average now %s on %d CPUs); rerun on an idle machine."
                     % (len(refused), load, os.cpu_count() or 0))
    notes.append("zeropool and naive are measured in the glibc run; each "
                 "allocator column comes from its own run (LD_PRELOAD).")
    if quick:
        notes.append("--quick: short repetitions; figures are indicative.")
    out.append("Notes:")
    out.extend("  - " + n for n in notes)
    return "\n".join(out), summary, cols, derived


# ------------------------------------------------------------------ plots

PLOT_STYLE = {
    "zeropool": 'lc rgb "#d62728" lw 3 pt 7',
    "glibc": 'lc rgb "#1f77b4" lw 2 pt 5',
    "jemalloc": 'lc rgb "#2ca02c" lw 2 pt 9',
    "mimalloc": 'lc rgb "#9467bd" lw 2 pt 11',
    "tcmalloc": 'lc rgb "#ff7f0e" lw 2 pt 13',
    "dpdk32": 'lc rgb "#8c564b" lw 2 pt 15',
    "dpdk256": 'lc rgb "#e377c2" lw 2 pt 17',
    "naive": 'lc rgb "#7f7f7f" lw 2 pt 3 dt 2',
}


def gp_quote(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def plots(out_dir, records, icount, cols):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return [], "gnuplot not installed (Debian: apt-get install gnuplot-nox)"
    pdir = os.path.join(out_dir, "plots")
    ddir = os.path.join(pdir, "data")
    os.makedirs(ddir, exist_ok=True)
    term = "pngcairo size 1100,750 font ',11'"
    if subprocess.run([gnuplot, "-e", "set terminal pngcairo"],
                      stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        term = "png size 1100,750"
    idx = index(records)
    made = []

    def series_file(sc, comp, threads=1):
        rows = []
        for (s, size, t), row in sorted(idx.items()):
            if s != sc or t != threads:
                continue
            r = row.get(comp)
            if r and not r.get("refused") and r.get("median") is not None:
                rows.append((size, r["median"], r["min"], r["max"]))
        if not rows:
            return None
        path = os.path.join(ddir, "%s_%s_%d.dat" % (sc, comp, threads))
        with open(path, "w") as f:
            f.write("# size median min max (%s)\n" % UNITS.get(sc, ""))
            for row in rows:
                f.write("%d %.6g %.6g %.6g\n" % row)
        return path

    def xtics():
        sizes = sorted({k[1] for k in idx if k[1] > 0})
        return "set xtics (%s)" % ", ".join(
            "%s %d" % (gp_quote(size_name(z).replace(" ", "")), z)
            for z in sizes)

    def latency_panel(sc, title, threads=1):
        plot = []
        for comp in cols:
            p = series_file(sc, comp, threads)
            if p:
                plot.append("%s using 1:2:3:4 with yerrorlines title %s %s" %
                            (gp_quote(p), gp_quote(comp),
                             PLOT_STYLE.get(comp, "lw 2")))
        if not plot:
            return None
        return "\n".join([
            "set title %s" % gp_quote(title),
            "set logscale xy 2", "set logscale y 10",
            "set xlabel 'buffer size (bytes)'",
            "set ylabel %s" % gp_quote(UNITS.get(sc, "")),
            xtics(), "set grid", "set key left top",
            "plot " + ", \\\n     ".join(plot)])

    def render(name, panels, layout):
        panels = [p for p in panels if p]
        if not panels:
            return
        png = os.path.join(pdir, name + ".png")
        script = ["set terminal %s noenhanced" % term,
                  "set output %s" % gp_quote(png), "set format y '%g'"]
        if len(panels) > 1:
            script.append("set multiplot layout %s" % layout)
        for p in panels:
            script.append(p)
            script.append("unset logscale; unset title; set xtics autofreq")
        if len(panels) > 1:
            script.append("unset multiplot")
        gp = os.path.join(ddir, name + ".gp")
        with open(gp, "w") as f:
            f.write("\n".join(script) + "\n")
        res = subprocess.run([gnuplot, gp], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        if res.returncode == 0 and os.path.exists(png):
            made.append(png)
        else:
            print("report.py: gnuplot failed on %s:\n%s" % (gp, res.stdout),
                  file=sys.stderr)

    render("latency", [latency_panel("hot", "hot path: get, write 1 byte, put"),
                       latency_panel("touch", "get, write every page, put")],
           "1,2")
    render("cold", [latency_panel("cold", "cold start: first gets, fresh process"),
                    latency_panel("cold_prefill", "first gets after a prefill")],
           "1,2")
    render("handoff", [latency_panel(
        "handoff", "cross-thread: get on A, put on B (ring cost subtracted)",
        2)],
        "1,1")

    # scaling: threads vs total throughput, one panel per mode x size
    panels = []
    for sc in ("scale_hot", "scale_touch"):
        for size in (65536, 1048576):
            plot = []
            for comp in cols:
                rows = []
                for (s, sz, t), row in sorted(idx.items()):
                    r = row.get(comp)
                    if s == sc and sz == size and r and not r.get("refused") \
                            and r.get("total_ops_per_s"):
                        tot = r["total_ops_per_s"]
                        rows.append((t, tot["median"] / 1e6, tot["min"] / 1e6,
                                     tot["max"] / 1e6))
                if not rows:
                    continue
                path = os.path.join(ddir, "%s_%d_%s.dat" % (sc, size, comp))
                with open(path, "w") as f:
                    f.write("# threads Mops_median min max\n")
                    for row in rows:
                        f.write("%d %.6g %.6g %.6g\n" % row)
                plot.append("%s using 1:2:3:4 with yerrorlines title %s %s" %
                            (gp_quote(path), gp_quote(comp),
                             PLOT_STYLE.get(comp, "lw 2")))
            if plot:
                panels.append("\n".join([
                    "set title %s" % gp_quote("%s %s: total throughput" %
                                              (sc, size_name(size))),
                    "set logscale y 10", "set xlabel 'threads'",
                    "set ylabel 'million get+put per second'",
                    "set xtics 1", "set grid", "set key left top",
                    "plot " + ", \\\n     ".join(plot)]))
    render("scaling", panels, "2,2")

    # mixed sizes and instruction counts: bars per competitor
    def bars(name, title, ylabel, items):
        # a competitor with no value at all would make gnuplot fail
        keep = [i for i in range(len(items[0][1])) if items and
                any(vals[i][1] is not None for _, vals in items)] \
            if items else []
        items = [(label, [vals[i] for i in keep]) for label, vals in items]
        if not items or not keep:
            return
        path = os.path.join(ddir, name + ".dat")
        with open(path, "w") as f:
            f.write("# label " + " ".join(c for c, _ in items[0][1]) + "\n")
            for label, vals in items:
                f.write("%s %s\n" % (gp_quote(label), " ".join(
                    "NaN" if v is None else "%.6g" % v for _, v in vals)))
        comps = [c for c, _ in items[0][1]]
        plot = ", ".join(
            "%s using %d:xtic(1) title %s lc rgb %s" % (
                gp_quote(path) if i == 0 else "''", i + 2, gp_quote(c),
                PLOT_STYLE.get(c, 'lc rgb "#000000"').split()[2])
            for i, c in enumerate(comps))
        render(name, ["\n".join([
            "set title %s" % gp_quote(title), "set style data histogram",
            "set style histogram clustered gap 1", "set style fill solid 0.9",
            "set logscale y 10", "set ylabel %s" % gp_quote(ylabel),
            "set grid ytics", "set key left top", "plot " + plot])], "1,1")

    items = []
    for sc in ("mixed_hot", "mixed_touch"):
        row = idx.get((sc, 0, 1), {})
        vals = [(c, row[c]["median"] if c in row and not row[c].get("refused")
                 else None) for c in cols]
        if any(v is not None for _, v in vals):
            items.append((sc, vals))
    bars("mixed", "mixed Zipf sizes 512 B-4 MiB (ns per put+get)", "ns/op",
         items)

    if icount:
        comps = [c for c in COMPETITORS if any(i["competitor"] == c
                                               for i in icount)]
        items = []
        for s in sorted({i["size"] for i in icount}):
            vals = []
            for c in comps:
                v = [i for i in icount if i["competitor"] == c and i["size"] == s]
                vals.append((c, None if not v else
                             v[0].get("allocator_instructions_per_pair") or
                             v[0]["instructions_per_pair"]))
            items.append((size_name(s).replace(" ", ""), vals))
        bars("icount", "instructions per get+put pair inside the allocator "
             "(callgrind)",
             "instructions", items)

    # depth sweep: ns per buffer vs cache_depth, one line per burst length
    drecs = [r for r in records if r.get("scenario") == "depth" and
             "variant" in r and ok_median(r)]
    if drecs:
        plot = []
        depths = sorted({r["cache_depth"] for r in drecs})
        for k in sorted({r["burst"] for r in drecs}):
            pts = sorted((r["cache_depth"], r["median"], r["min"], r["max"])
                         for r in drecs if r["burst"] == k)
            path = os.path.join(ddir, "depth_k%d.dat" % k)
            with open(path, "w") as f:
                f.write("# cache_depth median min max (ns per buffer, k=%d)\n"
                        % k)
                for row in pts:
                    f.write("%d %.6g %.6g %.6g\n" % row)
            plot.append("%s using 1:2:3:4 with yerrorlines title %s lw 2" %
                        (gp_quote(path), gp_quote("burst k = %d" % k)))
        render("depth", ["\n".join([
            "set title %s" % gp_quote(
                "cache_depth sweep: 64 KiB, k gets then k puts, one thread"),
            "set logscale x 2", "set xlabel 'cache_depth'",
            "set xrange [%g:%g]" % (depths[0] / 1.25, depths[-1] * 1.25),
            "set ylabel 'ns per buffer (get + put)'", "set yrange [0:*]",
            "set xtics (%s)" % ", ".join("%s %d" % (gp_quote(str(d)), d)
                                         for d in depths),
            "set arrow from 32, graph 0 to 32, graph 1 nohead dt 2",
            "set label 'default' at 32, graph 0.05 offset 0.5,0",
            "set grid", "set key right top",
            "plot " + ", \\\n     ".join(plot)])], "1,1")
    return made, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--json")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float)
    a = ap.parse_args()

    runs, records, icount, icount_note, icount_var = load(a.raw)
    if not records and not icount and not icount_var:
        print("report.py: no results in %s" % a.raw, file=sys.stderr)
        return 1
    text, summary, cols, derived = build_report(runs, records, icount,
                                                icount_note, a.quick,
                                                a.seconds, icount_var)
    bulk = load_bulk(a.raw)
    if bulk:
        text = text + "\n" + render_bulk(bulk)
    made, plot_note = ([], "disabled (--no-plots)") if a.no_plots else \
        plots(a.out, records, icount, cols)

    doc = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": a.quick,
        "seconds": a.seconds,
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "kernel": platform.release(),
                 "loadavg_end": [round(x, 2) for x in os.getloadavg()]
                 if hasattr(os, "getloadavg") else None},
        "competitors": cols,
        "runs": runs,
        "results": records,
        "summary": summary,
        "icount": icount,
        "icount_note": icount_note,
        "icount_variants": icount_var,
        "icount_bulk": bulk,
        "derived": derived,
        "plots": [os.path.relpath(p, a.out) for p in made],
    }
    os.makedirs(a.out, exist_ok=True)
    res_json = os.path.join(a.out, "results.json")
    for path in [res_json] + ([a.json] if a.json else []):
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    with open(os.path.join(a.out, "table.txt"), "w") as f:
        f.write(text + "\n")

    print()
    print(text)
    print()
    print("results: %s" % a.out)
    print("  table.txt, results.json%s" % (", " + a.json if a.json else ""))
    if made:
        print("  plots: " + ", ".join(os.path.relpath(p, a.out) for p in made))
    elif plot_note:
        print("  plots: none (%s)" % plot_note)
    if a.seconds is not None:
        print("  took %.0f s" % a.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
