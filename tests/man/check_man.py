#!/usr/bin/env python3
"""Checks the manual pages in man/ (man1, man3, man7).

  check_man.py render MANDIR --version X.Y.Z
      Every page renders with groff -man -Tutf8 -ww without one warning;
      every .so link points at a page that exists; every page's .TH names
      its own file and section and carries "zeropool X.Y.Z".

  check_man.py coverage MANDIR --header LIB=INCLUDE_ROOT/NAME.h ...
                               [--map LIB=FILE.map ...] [--zpz BINARY]
      For every header given (LIB: zeropool, zeropool-codec, zeropool-uring):
      each function it declares (a line starting with a ZP_..._API macro),
      each typedef and each function-like ZP_ macro has man3/<name>.3 (a
      page or a .so link); the page it resolves to lists the name under
      NAME, declares it under SYNOPSIS, names the header that declares it
      (#include <...>) and the library to link (-l<lib>). Every name a page
      of such a header lists under NAME is declared there and has its own
      man3 file. A version script given with --map exports exactly the
      header's functions. With --zpz, every option `zpz --help` prints is
      documented in man1/zpz.1.

Exit status: 0 pass, 1 fail, 77 skip (groff missing, for render).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

SECTIONS = ("man1", "man3", "man7")


def pages(mandir):
    for sec in SECTIONS:
        d = os.path.join(mandir, sec)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if not f.startswith("."):
                yield os.path.join(sec, f)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def so_target(text):
    """The target of a page that is only a .so link, or None."""
    lines = [l for l in text.splitlines() if l.strip() and not l.startswith('.\\"')]
    if len(lines) == 1 and lines[0].startswith(".so "):
        return lines[0][4:].strip()
    return None


def resolve(mandir, rel, seen=()):
    """(relative path of the real page, its text), following .so links."""
    text = read(os.path.join(mandir, rel))
    target = so_target(text)
    if target is None:
        return rel, text
    if target in seen or len(seen) > 4:
        raise ValueError(f"{rel}: .so loop")
    if not os.path.exists(os.path.join(mandir, target)):
        raise ValueError(f"{rel}: .so {target}: no such page")
    return resolve(mandir, target, seen + (rel,))


def section(text, name):
    """The lines of section .SH <name> (up to the next .SH)."""
    out, on = [], False
    for line in text.splitlines():
        if line.startswith(".SH"):
            on = line[3:].strip().strip('"') == name
            continue
        if on:
            out.append(line)
    return "\n".join(out)


def plain(roff):
    """roff source with the escapes that matter here undone."""
    s = roff.replace("\\-", "-").replace("\\(dq", '"').replace("\\e", "\\")
    s = re.sub(r"\\f[BIRP]", "", s)
    s = s.replace("\\c", "").replace("\\&", "")
    return s


def names_of(text):
    """The names a page lists under NAME (before the \\- and its summary)."""
    head = plain(section(text, "NAME")).split(" - ", 1)[0]
    return [n.strip() for n in head.replace("\n", " ").split(",") if n.strip()]


# ------------------------------------------------------------------ render

def render(args):
    groff = shutil.which("groff")
    if groff is None:
        print("SKIP: groff not found (Debian: groff-base)")
        return 77
    failures = []
    count = 0
    for rel in pages(args.mandir):
        count += 1
        path = os.path.join(args.mandir, rel)
        text = read(path)
        target = so_target(text)
        if target is not None:
            if not os.path.exists(os.path.join(args.mandir, target)):
                failures.append(f"{rel}: .so {target}: no such page")
            continue
        base, ext = os.path.splitext(os.path.basename(rel))
        sec = ext[1:]
        th = [l for l in text.splitlines() if l.startswith(".TH ")]
        if not th:
            failures.append(f"{rel}: no .TH line")
        else:
            want = f'.TH {base.upper()} {sec} '
            if not th[0].startswith(want):
                failures.append(f"{rel}: .TH should start with '{want}': {th[0]}")
            if f'"zeropool {args.version}"' not in th[0]:
                failures.append(f'{rel}: .TH does not carry "zeropool {args.version}" '
                                f"(the project's version): {th[0]}")
        r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", "-I", args.mandir, rel],
                           cwd=args.mandir, capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            failures.append(f"{rel}: groff -man -Tutf8 -ww (exit {r.returncode}):\n"
                            + r.stderr.rstrip())
    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"{count} pages render without warnings")
    return 0


# ---------------------------------------------------------------- coverage

def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r"//[^\n]*", " ", src)


def parse_header(path):
    """(functions, types, macros) a public header declares."""
    src = strip_comments(read(path))
    funcs, types, macros = [], [], []
    # functions: from a ZP_*API macro at the start of a line to the ';'
    for m in re.finditer(r"^[ \t]*ZP_(?:[A-Z0-9]+_)?API\b([^;]*);", src, flags=re.M):
        decl = m.group(1)
        f = re.search(r"([A-Za-z_]\w*)\s*\(", decl)
        if f:
            funcs.append(f.group(1))
    # typedefs: up to the ';' at brace depth 0
    for m in re.finditer(r"\btypedef\b", src):
        depth, i = 0, m.end()
        while i < len(src):
            c = src[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == ";" and depth == 0:
                break
            i += 1
        stmt = src[m.end():i]
        fp = re.search(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)", stmt.split("{")[0])
        if fp and "{" not in stmt:
            types.append(fp.group(1))
        else:
            tail = stmt.rsplit("}", 1)[-1]
            ids = re.findall(r"[A-Za-z_]\w*", tail)
            if ids:
                types.append(ids[-1])
    # function-like public macros (ZP_OBJPOOL_DEFINE)
    for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+(ZP_[A-Z0-9_]+)\(", src, flags=re.M):
        if not m.group(1).endswith("_API"):
            macros.append(m.group(1))
    return funcs, types, macros


def map_names(path):
    """(explicit names, globs) exported by the global: parts of a version script."""
    src = strip_comments(read(path))
    names, globs = [], []
    for block in re.findall(r"global:(.*?)(?:local:|\})", src, flags=re.S):
        for tok in re.findall(r"([^\s;]+)\s*;", block):
            (globs if any(c in tok for c in "*?[") else names).append(tok)
    return names, globs


def coverage(args):
    mandir = args.mandir
    failures = []
    headers = {}
    for spec in args.header:
        lib, _, path = spec.partition("=")
        inc = path.replace(os.sep, "/")
        inc = inc[inc.rindex("/include/") + len("/include/"):] if "/include/" in inc else \
            os.path.basename(inc)
        headers[inc] = (lib, path)
    declared = {}  # name -> (include name, lib, kind)
    for inc, (lib, path) in headers.items():
        funcs, types, macros = parse_header(path)
        if not funcs:
            failures.append(f"{inc}: no ZP_*API declaration found (parser out of step?)")
        for kind, names in (("function", funcs), ("type", types), ("macro", macros)):
            for n in names:
                declared[n] = (inc, lib, kind)
        print(f"{inc}: {len(funcs)} functions, {len(types)} types, {len(macros)} macros")

    for name, (inc, lib, kind) in sorted(declared.items()):
        rel = f"man3/{name}.3"
        if not os.path.exists(os.path.join(mandir, rel)):
            failures.append(f"{kind} {name} ({inc}) has no page: man/{rel}")
            continue
        try:
            page, text = resolve(mandir, rel)
        except ValueError as e:
            failures.append(str(e))
            continue
        if name not in names_of(text):
            failures.append(f"{name}: {page} (via man/{rel}) does not list it under NAME")
        syn = plain(section(text, "SYNOPSIS"))
        if f"#include <{inc}>" not in syn:
            failures.append(f"{name}: {page} does not name its header "
                            f"(#include <{inc}> under SYNOPSIS)")
        if kind == "function" and not re.search(r"\b" + re.escape(name) + r"\(", syn):
            failures.append(f"{name}: {page} does not declare it under SYNOPSIS")
        if kind == "function" and f"-l{lib}" not in plain(syn):
            failures.append(f"{name}: {page} does not say to link with -l{lib}")

    # the other way: what a page of a checked header lists must exist there
    for rel in pages(mandir):
        if not rel.startswith("man3/"):
            continue
        text = read(os.path.join(mandir, rel))
        if so_target(text) is not None:
            continue
        syn = plain(section(text, "SYNOPSIS"))
        incs = re.findall(r"#include <([^>]+)>", syn)
        own = [i for i in incs if i in headers]
        if not own:
            continue
        for n in names_of(text):
            if n not in declared or declared[n][0] not in own:
                failures.append(f"{rel} lists {n} under NAME, which "
                                f"{' / '.join(own)} does not declare")
            elif not os.path.exists(os.path.join(mandir, f"man3/{n}.3")):
                failures.append(f"{rel} lists {n} under NAME but man/man3/{n}.3 "
                                "does not exist (add a .so link)")

    for spec in args.map or []:
        lib, _, path = spec.partition("=")
        names, globs = map_names(path)
        funcs = {n for n, (_, l, k) in declared.items() if l == lib and k == "function"}
        if globs:
            failures.append(f"{path}: exports by pattern ({' '.join(globs)}): list the "
                            "header's functions one by one")
        for n in sorted(funcs - set(names)):
            failures.append(f"{path}: {n} is declared by the header but not exported")
        for n in sorted(set(names) - funcs):
            failures.append(f"{path}: exports {n}, which the header does not declare")

    if args.zpz:
        r = subprocess.run([args.zpz, "--help"], capture_output=True, text=True)
        page = os.path.join(mandir, "man1", "zpz.1")
        if r.returncode != 0:
            failures.append(f"zpz --help exited {r.returncode}")
        elif not os.path.exists(page):
            failures.append("zpz is built but man/man1/zpz.1 does not exist")
        else:
            doc = plain(read(page))
            opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z0-9])\b", r.stdout))
            for o in sorted(opts):
                if not re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", doc):
                    failures.append(f"zpz --help prints {o}, which man1/zpz.1 does not document")
            print(f"zpz: {len(opts)} options of --help, checked against man1/zpz.1")

    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"{len(declared)} public names, each with its page naming its header")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("mandir")
    r.add_argument("--version", required=True)
    c = sub.add_parser("coverage")
    c.add_argument("mandir")
    c.add_argument("--header", action="append", required=True)
    c.add_argument("--map", action="append")
    c.add_argument("--zpz")
    args = ap.parse_args()
    return render(args) if args.cmd == "render" else coverage(args)


if __name__ == "__main__":
    sys.exit(main())
