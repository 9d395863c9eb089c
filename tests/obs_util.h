/*
 * Helpers for the batch and observability tests (test_batch*, test_obs_*):
 * reading stats in one call, finding a class, comparing two snapshots, and
 * checking the invariants every snapshot must satisfy.
 *
 * Nothing here uses cmocka: the checks return 0 and describe the first
 * violation in a caller's buffer, so worker and reader threads can use them.
 */
#ifndef ZP_OBS_UTIL_H
#define ZP_OBS_UTIL_H

#include "test_util.h"

#include <inttypes.h>
#include <stdarg.h>

/* Reads the pool's stats; aborts if the read itself fails (a test bug or an
 * engine bug either way, and never expected here). */
static inline zp_stats zpo_read(zp_pool *pool)
{
    zp_stats s;
    if (zpt_stats(pool, &s) != 0) {
        fprintf(stderr, "zp_stats_read failed\n");
        abort();
    }
    return s;
}

/* Index of the class of exactly `size` bytes, or -1. */
static inline int zpo_class(const zp_stats *s, size_t size)
{
    uint32_t c;
    for (c = 0; c < s->nclasses && c < ZP_MAX_CLASSES; c++)
        if (s->classes[c].size == size)
            return (int)c;
    return -1;
}

static inline int zpo_why(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int zpo_why(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return 0;
}

/* The invariants every single snapshot satisfies, quiet or not: gets is the
 * sum of its parts per class and in total, the classes add up to the
 * totals, a class's idle plus outstanding buffers fit in its slabs, the
 * gauges are multiples of the class size, and no oversize buffer is
 * released before it was handed out. Returns 1, or 0 with the reason. */
static inline int zpo_snapshot_ok(const zp_stats *s, char *why, size_t len)
{
    uint32_t c;
    if (s->nclasses == 0 || s->nclasses > ZP_MAX_CLASSES)
        return zpo_why(why, len, "nclasses %u", (unsigned)s->nclasses);
    if (!zpt_stats_sum_ok(s))
        return zpo_why(why, len,
                       "gets %" PRIu64 " != cache_hits %" PRIu64 " + depot_hits %" PRIu64
                       " + allocations %" PRIu64 " + oversize %" PRIu64,
                       s->gets, s->cache_hits, s->depot_hits, s->allocations, s->oversize);
    if (!zpt_stats_classes_ok(s))
        return zpo_why(why, len, "per-class figures do not add up to the totals");
    for (c = 0; c < s->nclasses; c++) {
        const zp_class_stats *k = &s->classes[c];
        if (k->bytes_outstanding % k->size || k->bytes_cached % k->size)
            return zpo_why(why, len, "class %" PRIu64 ": gauges not multiples of the size",
                           k->size);
        if (k->bytes_outstanding + k->bytes_cached > k->bytes_reserved)
            return zpo_why(why, len,
                           "class %" PRIu64 ": outstanding %" PRIu64 " + cached %" PRIu64
                           " > reserved %" PRIu64,
                           k->size, k->bytes_outstanding, k->bytes_cached, k->bytes_reserved);
    }
    if (s->discards > s->oversize)
        return zpo_why(why, len, "discards %" PRIu64 " > oversize gets %" PRIu64, s->discards,
                       s->oversize);
    if (s->peak_reserved < s->bytes_reserved)
        return zpo_why(why, len, "peak_reserved %" PRIu64 " < bytes_reserved %" PRIu64,
                       s->peak_reserved, s->bytes_reserved);
    return 1;
}

/* The pool-wide gauge invariant: what is out plus what is idle fits in what
 * is mapped (the rest is uncarved slab space). */
static inline int zpo_gauges_ok(const zp_stats *s, char *why, size_t len)
{
    uint64_t class_reserved = 0;
    uint32_t c;
    for (c = 0; c < s->nclasses && c < ZP_MAX_CLASSES; c++)
        class_reserved += s->classes[c].bytes_reserved;
    if (s->bytes_outstanding + s->bytes_cached > s->bytes_reserved)
        return zpo_why(why, len,
                       "outstanding %" PRIu64 " + cached %" PRIu64 " > reserved %" PRIu64,
                       s->bytes_outstanding, s->bytes_cached, s->bytes_reserved);
    if (class_reserved > s->bytes_reserved)
        return zpo_why(why, len,
                       "the classes' reserved bytes (%" PRIu64 ") exceed the pool's (%" PRIu64
                       ")",
                       class_reserved, s->bytes_reserved);
    return 1;
}

/* 1 if no counter of b is below a's (b read after a, no reset between). */
static inline int zpo_monotonic(const zp_stats *a, const zp_stats *b, char *why, size_t len)
{
    uint32_t c;
#define ZPO_MONO(f)                                                                    \
    if (b->f < a->f)                                                                   \
        return zpo_why(why, len, #f " went back from %" PRIu64 " to %" PRIu64, a->f, b->f);
    ZPO_MONO(gets) ZPO_MONO(puts) ZPO_MONO(cache_hits) ZPO_MONO(depot_hits)
    ZPO_MONO(allocations) ZPO_MONO(oversize) ZPO_MONO(discards) ZPO_MONO(contention)
    ZPO_MONO(misuse) ZPO_MONO(peak_reserved)
#undef ZPO_MONO
    for (c = 0; c < a->nclasses && c < ZP_MAX_CLASSES; c++) {
        const zp_class_stats *x = &a->classes[c], *y = &b->classes[c];
        if (y->gets < x->gets || y->puts < x->puts || y->cache_hits < x->cache_hits ||
            y->depot_hits < x->depot_hits || y->allocations < x->allocations ||
            y->contention < x->contention)
            return zpo_why(why, len, "a counter of class %" PRIu64 " went back", x->size);
    }
    return 1;
}

/* Prints the non-empty classes of a snapshot on stderr. */
static inline void zpo_print_classes(const char *what, const zp_stats *s)
{
    uint32_t c;
    zpt_stats_print(what, s);
    for (c = 0; c < s->nclasses && c < ZP_MAX_CLASSES; c++) {
        const zp_class_stats *k = &s->classes[c];
        if (!k->gets && !k->puts && !k->bytes_reserved)
            continue;
        fprintf(stderr,
                "#   class %8" PRIu64 ": gets %" PRIu64 " puts %" PRIu64 " hits %" PRIu64
                " depot %" PRIu64 " alloc %" PRIu64 " contention %" PRIu64 " out %" PRIu64
                " cached %" PRIu64 " reserved %" PRIu64 "\n",
                k->size, k->gets, k->puts, k->cache_hits, k->depot_hits, k->allocations,
                k->contention, k->bytes_outstanding, k->bytes_cached, k->bytes_reserved);
    }
}

/* ------------------------------------------------------ arena provider */

/*
 * A provider that serves regions of exactly ZPO_CHUNK bytes from one
 * arena mapped up front, without system calls, and anything else with
 * mmap. Slabs of classes up to 256 KiB are such chunks, so a workload that
 * maps and unmaps them in a loop (get, put, trim) churns at memory speed:
 * what a concurrent stats reader sees while slabs come and go is then
 * exercised thousands of times per second instead of hundreds.
 */
#define ZPO_CHUNK (256 * ZPT_KiB)
#define ZPO_NCHUNKS 256

typedef struct zpo_arena {
    pthread_mutex_t lock;
    unsigned char *base;
    unsigned char used[ZPO_NCHUNKS];
    atomic_size_t bad_unmaps;
} zpo_arena;

static inline void *zpo_arena_map(size_t size, size_t align, void *ctx)
{
    zpo_arena *a = (zpo_arena *)ctx;
    size_t i;
    if (size == ZPO_CHUNK && align <= ZPO_CHUNK) {
        pthread_mutex_lock(&a->lock);
        for (i = 0; i < ZPO_NCHUNKS; i++) {
            if (!a->used[i]) {
                a->used[i] = 1;
                pthread_mutex_unlock(&a->lock);
                return a->base + i * ZPO_CHUNK;
            }
        }
        pthread_mutex_unlock(&a->lock);
    }
    return zpt_raw_map(size, align);
}

static inline void zpo_arena_unmap(void *ptr, size_t size, void *ctx)
{
    zpo_arena *a = (zpo_arena *)ctx;
    unsigned char *p = (unsigned char *)ptr;
    if (p >= a->base && p < a->base + (size_t)ZPO_NCHUNKS * ZPO_CHUNK) {
        size_t i = (size_t)(p - a->base) / ZPO_CHUNK;
        pthread_mutex_lock(&a->lock);
        if (size != ZPO_CHUNK || p != a->base + i * ZPO_CHUNK || !a->used[i])
            atomic_fetch_add(&a->bad_unmaps, 1);
        else
            a->used[i] = 0;
        pthread_mutex_unlock(&a->lock);
        return;
    }
    munmap(ptr, size);
}

/* Allocates an arena and makes cfg use it (free with zpo_arena_free once
 * the pool is destroyed). */
static inline zpo_arena *zpo_arena_attach(zp_config *cfg)
{
    zpo_arena *a = (zpo_arena *)calloc(1, sizeof(*a));
    if (!a)
        abort();
    pthread_mutex_init(&a->lock, NULL);
    a->base = (unsigned char *)zpt_raw_map((size_t)ZPO_NCHUNKS * ZPO_CHUNK, ZPO_CHUNK);
    if (!a->base)
        abort();
    cfg->provider.map = zpo_arena_map;
    cfg->provider.unmap = zpo_arena_unmap;
    cfg->provider.ctx = a;
    return a;
}

static inline void zpo_arena_free(zpo_arena *a)
{
    munmap(a->base, (size_t)ZPO_NCHUNKS * ZPO_CHUNK);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

#endif /* ZP_OBS_UTIL_H */
