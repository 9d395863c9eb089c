#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/seed-*) for zp_fuzz.

Each seed is a small program in the target's input language (see
zp_fuzz.c): a byte choosing one or two pools (bit 0) and a budget they
share (bit 1, size in bits 2..7 as MiB - 1), six bytes of configuration per
pool, then operations. Together they reach every operation under every
debug level and flag, budgets, retention caps and both cache modes.
Deterministic: running it again rewrites the same files.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

# operation codes: the low 7 bits pick the operation (zp_fuzz.c), the top
# bit the pool
GET, PUT, GET_BATCH, PUT_BATCH, TIMED, XPUT, XGET = 0, 20, 40, 50, 60, 66, 72
STATS, TRIM, FAIL_MAP, FOREIGN, DOUBLE_PUT, RECREATE = 78, 90, 96, 100, 110, 120


def size_code(shift, extra=0):
    """u16 for rd_size: base 64 << shift, plus a little."""
    return struct.pack("<H", ((shift % 12) << 12) | (extra & 0x7FF))


IMPOSSIBLE = struct.pack("<H", 0xFFFF)


def config(min_shift=6, span=6, depth_idx=6, cache_bytes_idx=0, flags=0,
           debug=0, budget=0, retention=None):
    b0 = min_shift - 6
    b1 = span
    b2 = depth_idx | (cache_bytes_idx << 3)
    b3 = flags | (debug << 2)
    b4 = 0 if budget == 0 else (budget - 1) * 4 + 1  # MiB, 1..64
    b5 = 0 if retention is None else (retention << 1) | 1  # 64 KiB units
    return bytes([b0, b1, b2, b3, b4, b5])


def op(code, *args, pool=0):
    out = bytes([code | (pool << 7)])
    for a in args:
        out += a if isinstance(a, bytes) else bytes([a])
    return out


def workload(pool=0, debug=0):
    """Every operation once or more on one pool."""
    w = b""
    for shift in (0, 3, 6, 7, 9, 11):
        w += op(GET, size_code(shift, shift * 37), pool=pool)
    w += op(GET, b"\x00\x00", pool=pool)             # size 0
    w += op(GET, IMPOSSIBLE, pool=pool)              # EOVERFLOW
    w += op(GET_BATCH, 12, size_code(6), pool=pool)
    w += op(GET_BATCH, 40, size_code(2), pool=pool)  # beyond the cache
    w += op(TIMED, size_code(8), pool=pool)
    w += op(PUT, 3, pool=pool) + op(PUT, 0, pool=pool)
    w += op(PUT_BATCH, 6, 0x05, 1, 2, 3, 4, 5, 6, pool=pool)
    w += op(XPUT, 4, 0, 1, 2, 3, pool=pool)
    w += op(XGET, 5, size_code(4), pool=pool)
    w += op(STATS, 1, pool=pool) + op(STATS, 9, pool=pool) + op(STATS, 17, pool=pool)
    w += op(FOREIGN, 0, pool=pool) + op(FOREIGN, 1, 3, pool=pool)
    w += op(FOREIGN, 2, 0, 7, 0, pool=pool)
    w += op(DOUBLE_PUT, 0, 1, pool=pool) + op(DOUBLE_PUT, 1, 0, pool=pool)
    w += op(TRIM, 0, pool=pool)
    w += op(FAIL_MAP, 0, pool=pool) + op(GET, size_code(11), pool=pool)
    w += op(FAIL_MAP, 1, pool=pool) + op(GET_BATCH, 8, size_code(9), pool=pool)
    w += op(GET_BATCH, 3, size_code(11, 0x7FF), pool=pool)  # oversize batch
    w += op(STATS, 0, pool=pool)                      # reset
    w += op(GET, size_code(5), pool=pool) + op(PUT, 0, pool=pool)
    w += op(RECREATE, pool=pool)
    w += op(GET, size_code(6), pool=pool) + op(DOUBLE_PUT, 0, 1, pool=pool)
    w += op(TRIM, 2, pool=pool)
    return w


def seeds():
    yield "basic", bytes([0]) + config() + workload()
    for debug in (1, 2):
        yield "debug%d" % debug, bytes([0]) + config(debug=debug) + workload(debug=debug)
    yield "zero-wipe", bytes([0]) + config(flags=3) + workload()
    yield "wipe-debug1", bytes([0]) + config(flags=2, debug=1) + workload()
    yield "no-cache", bytes([0]) + config(depth_idx=0) + workload()
    yield "tiny-cache", bytes([0]) + config(depth_idx=1, cache_bytes_idx=2) + workload()
    yield "budget", bytes([0]) + config(budget=2, span=9) + workload()
    yield "retention", bytes([0]) + config(retention=2, min_shift=12) + workload()
    yield "big-min", bytes([0]) + config(min_shift=13, span=7, debug=1) + workload()
    # two pools: wrong-pool puts both ways, recreate of one while the
    # other lives
    two = bytes([1]) + config(debug=1) + config(debug=0, min_shift=12, flags=1)
    two += workload(pool=0) + workload(pool=1)
    two += op(GET, size_code(6), pool=1) + op(FOREIGN, 3, 0, pool=0)
    two += op(GET, size_code(6), pool=0) + op(FOREIGN, 3, 0, pool=1)
    yield "two-pools", two
    # two pools on one shared budget of 4 MiB: budget failures and reclaim
    shared = bytes([1 | 2 | (3 << 2)]) + config(span=9) + config(min_shift=12, span=8)
    shared += workload(pool=0) + workload(pool=1)
    for i in range(12):
        shared += op(GET, size_code(9 + i % 3), pool=i % 2)
    shared += op(TRIM, 0, pool=0) + op(GET_BATCH, 8, size_code(10), pool=1)
    yield "shared-budget", shared
    # many buffers held at once (the model's cap) and churned
    churn = bytes([0]) + config(debug=1, depth_idx=3)
    for i in range(70):
        churn += op(GET, size_code(i % 8, i * 13))
    for i in range(30):
        churn += op(PUT, i * 7 % 64) + op(XGET, 3, size_code(i % 5))
    churn += op(TRIM, 0) + op(STATS, 1)
    yield "churn", churn


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(OUT, "seed-" + name), "wb") as f:
            f.write(data)
    print("wrote", len(list(seeds())), "seeds to", OUT)


if __name__ == "__main__":
    main()
