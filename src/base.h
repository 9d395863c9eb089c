/*
 * base.h — what every engine file needs and nothing more: compiler
 * attributes, the engine's fixed limits, owner-only counters and the error
 * detail recorder. Includes no other engine header.
 */
#ifndef ZP_BASE_H
#define ZP_BASE_H

#include "zeropool.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- compiler */

#define ZP_LIKELY(x) __builtin_expect(!!(x), 1)
#define ZP_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Makes the compiler keep x (a pointer or an integer) as computed, in a
 * register, and forget what it knew of its value: the hit paths address a
 * bin's fields from one bin pointer instead of recomputing cache + class *
 * size for each (zp__cache_bin; one instruction per get or put each). */
#define ZP_KEEP_POINTER(x) __asm__("" : "+r"(x))
#define ZP_NOINLINE __attribute__((noinline))
#define ZP_COLD __attribute__((cold))
#define ZP_TLS_IE __attribute__((tls_model("initial-exec")))
#define ZP_CACHELINE 64
#define ZP_CALLER() __builtin_return_address(0)

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ZP__TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ZP__TSAN 1
#endif

/* --------------------------------------------------------------- limits */

#define ZP__MIN_CLASS_SHIFT 6   /* 64 B */
#define ZP__MAX_CLASS_SHIFT 30  /* 1 GiB */
#define ZP__MAX_CLASSES (ZP__MAX_CLASS_SHIFT - ZP__MIN_CLASS_SHIFT + 1)
#define ZP__MAX_CACHE_DEPTH 65536u
/* Buffers a cache's bin holds per class before it adapts (cache_depth,
 * if smaller, caps it): from the depth sweep, where 32 took most of the
 * gain of a deeper bin for bursts up to 32 (bench/README.md, "depth"). */
#define ZP__CACHE_START 32u
#define ZP__MAX_POOLS 65536u    /* live pools with thread caches (documented
                                   in zeropool.h, zp_pool_create) */
#define ZP__NO_SLOT UINT32_MAX

/* Slabs: every region is aligned to and sized in grains, so no two regions
 * share a grain and the radix map can key on the grain number. */
#define ZP__GRAIN_SHIFT 16
#define ZP__GRAIN ((size_t)1 << ZP__GRAIN_SHIFT)
#define ZP__SLAB_MIN_BYTES ((size_t)256 << 10)
#define ZP__ADDR_BITS 48
#define ZP__LEAF_BITS 16
#define ZP__ROOT_BITS (ZP__ADDR_BITS - ZP__GRAIN_SHIFT - ZP__LEAF_BITS)
/* Largest oversize request: beyond this no provider can serve it. */
#define ZP__MAX_REQUEST ((size_t)1 << 46)

/* ------------------------------------------------------------- counters */

/* Owner-only counter increment: a plain load and store (no lock prefix);
 * relaxed atomics only so that concurrent readers (stats) are well
 * defined. */
static inline void zp__counter_add(_Atomic uint64_t *c, uint64_t n)
{
#if defined(ZP_BENCH_NO_COUNTERS)
    /* bench/ only: measures what counting costs; stats are wrong */
    (void)c;
    (void)n;
#elif defined(__x86_64__) && !defined(ZP__TSAN)
    /* One add to memory, without a lock prefix: only the owner writes, and
     * an aligned 8-byte store is never torn on x86-64, so a concurrent
     * relaxed load sees the old or the new value. (The portable form below
     * costs a load, an add and a store, about 0.3 ns per counter more on
     * the hit path; TSan builds keep it so TSan sees the accesses.) */
    __asm__("addq %1, %0" : "+m"(*(uint64_t *)c) : "er"(n));
#else
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
#endif
}

static inline void zp__counter_inc(_Atomic uint64_t *c)
{
    zp__counter_add(c, 1);
}

/* --------------------------------------------------------------- errors */

/* Internal functions report failure by return value (0 or a negative
 * errno); only the public entry points set errno. zp__error records the
 * detail zp_strerror shows for err on this thread, and returns err. */
int zp__error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Inside the engine "the budget has no room" is its own code, never a
 * plain -ENOBUFS: a failure that makes a get reclaim, retry or wait must not
 * be confused with an ENOBUFS an object type's init returned. The front
 * doors report it as ENOBUFS. */
#define ZP__EBUDGET (-0x10000)
/* ZP_LOCKED: mlock of a fresh region was refused. The region mapping has
 * already recorded the detail (naming RLIMIT_MEMLOCK), which the callers
 * keep instead of writing their generic "no memory" over it; the front
 * doors report it as ENOMEM. */
#define ZP__ELOCK (-0x10001)
static inline int zp__public_err(int err)
{
    return err == ZP__EBUDGET ? -ENOBUFS : err == ZP__ELOCK ? -ENOMEM : err;
}

#endif /* ZP_BASE_H */
