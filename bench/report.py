#!/usr/bin/env python3
"""bench/report.py — merges the zp_bench runs into a table, JSON and plots.

usage: report.py --raw DIR --out DIR [--json FILE] [--no-plots] [--quick]
                 [--seconds N]

DIR holds what bench/run.sh collected: one <run>.jsonl per allocator run
(the driver's output), runs.tsv (which runs happened or were skipped, why)
and icount.tsv (callgrind instruction counts). Writes OUT/results.json,
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

# Column order: zeropool first, then the allocators, the floor last.
COMPETITORS = ["zeropool", "glibc", "jemalloc", "mimalloc", "tcmalloc", "naive"]

# Rows of the time table, in this order; unit per scenario.
TIME_SCENARIOS = [
    ("hot", "get, write 1 byte, put"),
    ("touch", "get, write 1 byte per page, put"),
    ("mixed_hot", "Zipf sizes 512 B-4 MiB, 1 byte"),
    ("mixed_touch", "Zipf sizes 512 B-4 MiB, every page"),
    ("cold", "first gets of a fresh process"),
    ("cold_prefill", "first gets after a prefill"),
    ("handoff", "get on A, put on B (ring subtracted)"),
    ("scale_hot", "hot, per thread"),
    ("scale_touch", "touch, per thread"),
]
UNITS = {
    "hot": "ns/op", "touch": "ns/op", "mixed_hot": "ns/op",
    "mixed_touch": "ns/op", "cold": "ns/get", "cold_prefill": "ns/get",
    "handoff": "ns/buffer", "scale_hot": "ns/op/thread",
    "scale_touch": "ns/op/thread",
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
    icount, icount_note = [], None
    path = os.path.join(raw, "icount.tsv")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if parts[0] == "#skipped":
                    icount_note = parts[1] if len(parts) > 1 else "skipped"
                    continue
                if len(parts) < 4:
                    continue
                alloc = float(parts[4]) if len(parts) > 4 else float("nan")
                icount.append({"competitor": parts[0], "backend": parts[1],
                               "size": int(parts[2]),
                               "instructions_per_pair": float(parts[3]),
                               "allocator_instructions_per_pair":
                               None if alloc != alloc else alloc})
    return runs, records, icount, icount_note


def index(records):
    """(scenario, size, threads) -> {competitor: record}"""
    out = {}
    for r in records:
        key = (r["scenario"], int(r["size"]), int(r["threads"]))
        out.setdefault(key, {})[r["competitor"]] = r
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
    if best is None:
        return None, None
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


def build_report(runs, records, icount, icount_note, quick, seconds):
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

    # ---- notes
    notes = []
    for name in ["glibc", "jemalloc", "mimalloc", "tcmalloc"]:
        r = runs.get(name)
        if r is None:
            continue
        if r["status"] != "ok":
            notes.append("%s: %s, %s" % (name, r["status"], r["note"]))
    refused = [r for r in records if r.get("refused")]
    for r in refused:
        notes.append("%s %s x%s %s: %s" % (r["scenario"], size_name(r["size"]),
                                          r["threads"], r["competitor"],
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
    return "\n".join(out), summary, cols


# ------------------------------------------------------------------ plots

PLOT_STYLE = {
    "zeropool": 'lc rgb "#d62728" lw 3 pt 7',
    "glibc": 'lc rgb "#1f77b4" lw 2 pt 5',
    "jemalloc": 'lc rgb "#2ca02c" lw 2 pt 9',
    "mimalloc": 'lc rgb "#9467bd" lw 2 pt 11',
    "tcmalloc": 'lc rgb "#ff7f0e" lw 2 pt 13',
    "naive": 'lc rgb "#7f7f7f" lw 2 pt 3 dt 2',
}


def gp_quote(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def plots(out_dir, records, icount, cols):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return None, "gnuplot not installed (Debian: apt-get install gnuplot-nox)"
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

    runs, records, icount, icount_note = load(a.raw)
    if not records and not icount:
        print("report.py: no results in %s" % a.raw, file=sys.stderr)
        return 1
    text, summary, cols = build_report(runs, records, icount, icount_note,
                                       a.quick, a.seconds)
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
