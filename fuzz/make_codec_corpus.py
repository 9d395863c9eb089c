#!/usr/bin/env python3
"""Writes the seed corpora of the codec fuzz targets (zp_fuzz_codec.c):
fuzz/corpus-codec/<format>/seed-*, each one option byte (0x00: random
pieces up to 70000 bytes; 0x80: pieces of 1..17 bytes) then a small
compressed stream: text, empty input, two members/frames, a truncated
stream, trailing garbage. gzip, zlib and raw deflate come from python3's
zlib; zstd and lz4 from the zstd and lz4 tools (scripts/deps.sh installs
them). Deterministic: running it again rewrites the same files.
"""
import gzip
import os
import subprocess
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus-codec")

TEXT = b"".join(b"the pool hands out buffer %d of class %d, " % (i, i % 7) for i in range(40))
TEXT2 = bytes(range(256)) * 3


def deflate(data, wbits, level=6):
    o = zlib.compressobj(level, zlib.DEFLATED, wbits)
    return o.compress(data) + o.flush()


def tool(args, data):
    return subprocess.run(args, input=data, stdout=subprocess.PIPE, check=True).stdout


def streams(fmt):
    if fmt == "gzip":
        enc = lambda d: gzip.compress(d, 6, mtime=0)
    elif fmt == "zlib":
        enc = lambda d: deflate(d, 15)
    elif fmt == "deflate":
        enc = lambda d: deflate(d, -15)
    elif fmt == "zstd":
        enc = lambda d: tool(["zstd", "-q", "-c", "-3"], d)
    else:
        enc = lambda d: tool(["lz4", "-q", "-c", "-BD", "-B4"], d)
    a, b, e = enc(TEXT), enc(TEXT2), enc(b"")
    out = {"text": a, "bytes": b, "empty": e, "truncated": a[: len(a) // 2],
           "garbage": a + b"garbage!"}
    if fmt in ("gzip", "zstd", "lz4"):
        out["two"] = a + b
    return out


def main():
    for fmt in ("gzip", "deflate", "zlib", "zstd", "lz4"):
        d = os.path.join(OUT, fmt)
        os.makedirs(d, exist_ok=True)
        for name, data in sorted(streams(fmt).items()):
            for opt in (0x00, 0x80):
                with open(os.path.join(d, "seed-%s-%02x" % (name, opt)), "wb") as f:
                    f.write(bytes([opt]) + data)


if __name__ == "__main__":
    main()
