/*
 * Shared helpers for the zeropool tests: pattern fill/check, a recording
 * misuse handler, a counting (and failure-injecting) provider, stats reading.
 *
 * Everything here is safe to call from worker threads: nothing uses cmocka.
 * Tests assert on the results from the main thread.
 */
#ifndef ZP_TEST_UTIL_H
#define ZP_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zeropool.h"

#define ZPT_KiB ((size_t)1024)
#define ZPT_MiB ((size_t)1024 * 1024)
#define ZPT_GiB ((size_t)1024 * 1024 * 1024)

/* Sanitizer detection (gcc defines the macros, clang has __has_feature). */
#if defined(__SANITIZE_ADDRESS__)
#define ZPT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define ZPT_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(ZPT_ASAN)
#define ZPT_ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(ZPT_TSAN)
#define ZPT_TSAN 1
#endif
#endif
#if defined(ZPT_ASAN) || defined(ZPT_TSAN)
#define ZPT_SANITIZED 1
#endif

/* The debug level ZEROPOOL_DEBUG imposes on every pool created (0 when
 * unset). Debug 2 fills and scans whole buffers on every get and put, so
 * tests that loop a lot scale their counts down with zpt_scaled(). */
static inline int zpt_env_debug(void)
{
    const char *e = getenv("ZEROPOOL_DEBUG");
    return e && *e ? atoi(e) : 0;
}

static inline unsigned long zpt_scaled(unsigned long n)
{
    return zpt_env_debug() >= 2 ? (n / 100 ? n / 100 : 1) : n;
}

/* ------------------------------------------------------------ small math */

static inline size_t zpt_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static inline size_t zpt_min_sz(size_t a, size_t b) { return a < b ? a : b; }

static inline int zpt_is_pow2(size_t x) { return x && !(x & (x - 1)); }

/* Largest power of two dividing the address (its natural alignment). */
static inline size_t zpt_alignment_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (a == 0)
        return (size_t)1 << (sizeof(size_t) * 8 - 1);
    return (size_t)(a & (~a + 1));
}

/* Smallest power of two >= x, at least lo (x <= 2^62 assumed). */
static inline size_t zpt_class_for(size_t x, size_t lo)
{
    size_t c = lo;
    while (c < x)
        c <<= 1;
    return c;
}

/* splitmix64: deterministic per-thread randomness. */
static inline uint64_t zpt_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---------------------------------------------------------------- pattern */

/* The 64-bit word expected at word index i of a buffer filled with seed. */
static inline uint64_t zpt_word(uint64_t seed, size_t i)
{
    uint64_t x = seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return x;
}

/* Fills n bytes at p with the pattern for seed. */
static inline void zpt_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = (unsigned char *)p;
    size_t words = n / 8, i;
    for (i = 0; i < words; i++) {
        uint64_t w = zpt_word(seed, i);
        memcpy(b + i * 8, &w, 8);
    }
    if (n % 8) {
        uint64_t w = zpt_word(seed, words);
        memcpy(b + words * 8, &w, n % 8);
    }
}

/* Returns the offset of the first byte that differs from the pattern for
 * seed, or SIZE_MAX if all n bytes are intact. */
static inline size_t zpt_check(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t words = n / 8, i, j;
    for (i = 0; i < words; i++) {
        uint64_t w = zpt_word(seed, i), got;
        memcpy(&got, b + i * 8, 8);
        if (got != w) {
            const unsigned char *e = (const unsigned char *)&w;
            for (j = 0; j < 8; j++)
                if (b[i * 8 + j] != e[j])
                    return i * 8 + j;
        }
    }
    if (n % 8) {
        uint64_t w = zpt_word(seed, words);
        const unsigned char *e = (const unsigned char *)&w;
        for (j = 0; j < n % 8; j++)
            if (b[words * 8 + j] != e[j])
                return words * 8 + j;
    }
    return SIZE_MAX;
}

/* Like zpt_fill/zpt_check, but above 1 MiB under a sanitizer (where every
 * access is instrumented) only the first and last 64 KiB and 64 bytes of
 * every other page are patterned: still every page, at a fraction of the
 * cost. */
#define ZPT_SPARSE_ABOVE (1 * ZPT_MiB)
#define ZPT_SPARSE_EDGE ((size_t)64 * 1024)

static inline int zpt_use_sparse(size_t n)
{
#if defined(ZPT_SANITIZED)
    return n > ZPT_SPARSE_ABOVE;
#else
    (void)n;
    return 0;
#endif
}

static inline void zpt_fill_big(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = (unsigned char *)p;
    size_t off;
    if (!zpt_use_sparse(n)) {
        zpt_fill(p, n, seed);
        return;
    }
    zpt_fill(b, ZPT_SPARSE_EDGE, seed);
    zpt_fill(b + n - ZPT_SPARSE_EDGE, ZPT_SPARSE_EDGE, ~seed);
    for (off = ZPT_SPARSE_EDGE; off + 64 <= n - ZPT_SPARSE_EDGE; off += 4096)
        zpt_fill(b + off, 64, seed ^ off);
}

/* SIZE_MAX if intact, else the offset of a changed byte. */
static inline size_t zpt_check_big(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t off, bad;
    if (!zpt_use_sparse(n))
        return zpt_check(p, n, seed);
    if ((bad = zpt_check(b, ZPT_SPARSE_EDGE, seed)) != SIZE_MAX)
        return bad;
    if ((bad = zpt_check(b + n - ZPT_SPARSE_EDGE, ZPT_SPARSE_EDGE, ~seed)) !=
        SIZE_MAX)
        return n - ZPT_SPARSE_EDGE + bad;
    for (off = ZPT_SPARSE_EDGE; off + 64 <= n - ZPT_SPARSE_EDGE; off += 4096)
        if ((bad = zpt_check(b + off, 64, seed ^ off)) != SIZE_MAX)
            return off + bad;
    return SIZE_MAX;
}

/* 1 if all n bytes at p are zero. */
static inline int zpt_all_zero(const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* Lower-case hex of a pointer without "0x" (how a message names it, give or
 * take the prefix and leading zeros). */
static inline void zpt_hex(const void *p, char out[32])
{
    snprintf(out, 32, "%llx", (unsigned long long)(uintptr_t)p);
}

/* 1 if msg mentions pointer p in hex (any case, with or without 0x). */
static inline int zpt_mentions_ptr(const char *msg, const void *p)
{
    char hex[32], low[1024];
    size_t i;
    if (!msg)
        return 0;
    zpt_hex(p, hex);
    for (i = 0; msg[i] && i < sizeof(low) - 1; i++)
        low[i] = (char)((msg[i] >= 'A' && msg[i] <= 'F') ? msg[i] - 'A' + 'a'
                                                         : msg[i]);
    low[i] = 0;
    return strstr(low, hex) != NULL;
}

/* ------------------------------------------------------------------ stats */

/* Reads the pool's stats; returns zp_stats_read()'s result. */
static inline int zpt_stats(zp_pool *pool, zp_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    return zp_stats_read(pool, s);
}

/* 1 if gets == cache_hits + depot_hits + allocations + oversize. */
static inline int zpt_stats_sum_ok(const zp_stats *s)
{
    return s->gets == s->cache_hits + s->depot_hits + s->allocations +
                          s->oversize;
}

/* 1 if the per-class figures add up: each class's gets is the sum of its
 * parts, and the classes plus oversize make the totals. */
static inline int zpt_stats_classes_ok(const zp_stats *s)
{
    uint64_t gets = 0, puts = 0, hits = 0, depot = 0, alloc = 0;
    uint32_t c;
    if (s->nclasses > ZP_MAX_CLASSES)
        return 0;
    for (c = 0; c < s->nclasses; c++) {
        const zp_class_stats *k = &s->classes[c];
        if (k->gets != k->cache_hits + k->depot_hits + k->allocations)
            return 0;
        if (c > 0 && k->size != 2 * s->classes[c - 1].size)
            return 0;
        gets += k->gets;
        puts += k->puts;
        hits += k->cache_hits;
        depot += k->depot_hits;
        alloc += k->allocations;
    }
    return gets + s->oversize == s->gets && puts + s->discards == s->puts &&
           hits == s->cache_hits && depot == s->depot_hits &&
           alloc == s->allocations;
}

static inline void zpt_stats_print(const char *what, const zp_stats *s)
{
    fprintf(stderr,
            "# %s: gets %llu puts %llu cache_hits %llu depot_hits %llu "
            "allocations %llu oversize %llu discards %llu misuse %llu "
            "reserved %llu outstanding %llu cached %llu peak %llu\n",
            what, (unsigned long long)s->gets, (unsigned long long)s->puts,
            (unsigned long long)s->cache_hits,
            (unsigned long long)s->depot_hits,
            (unsigned long long)s->allocations,
            (unsigned long long)s->oversize, (unsigned long long)s->discards,
            (unsigned long long)s->misuse,
            (unsigned long long)s->bytes_reserved,
            (unsigned long long)s->bytes_outstanding,
            (unsigned long long)s->bytes_cached,
            (unsigned long long)s->peak_reserved);
}

/* ------------------------------------------------- recording misuse handler */

typedef struct zpt_misuse_log {
    pthread_mutex_t lock;
    int count;
    int kind;          /* of the last report */
    const void *ptr;   /* of the last report */
    zp_pool *pool;     /* of the last report */
    char msg[512];     /* of the last report ("" if msg was NULL) */
    int msg_was_null;
} zpt_misuse_log;

static inline void zpt_misuse_reset(zpt_misuse_log *log)
{
    pthread_mutex_lock(&log->lock);
    log->count = 0;
    log->kind = 0;
    log->ptr = NULL;
    log->pool = NULL;
    log->msg[0] = 0;
    log->msg_was_null = 0;
    pthread_mutex_unlock(&log->lock);
}

static inline void zpt_misuse_record(zp_pool *pool, int kind, const void *ptr,
                                     const char *msg, void *arg)
{
    zpt_misuse_log *log = (zpt_misuse_log *)arg;
    pthread_mutex_lock(&log->lock);
    log->count++;
    log->kind = kind;
    log->ptr = ptr;
    log->pool = pool;
    log->msg_was_null = msg == NULL;
    snprintf(log->msg, sizeof(log->msg), "%s", msg ? msg : "");
    pthread_mutex_unlock(&log->lock);
}

/* Snapshot of the log taken under its lock. */
static inline zpt_misuse_log zpt_misuse_get(zpt_misuse_log *log)
{
    zpt_misuse_log copy;
    pthread_mutex_lock(&log->lock);
    memcpy(&copy, log, sizeof(copy));
    pthread_mutex_unlock(&log->lock);
    return copy;
}

/* ------------------------------------------- counting, failing provider */

#define ZPT_MAX_REGIONS 16384

typedef struct zpt_region {
    void *ptr;
    size_t size;
} zpt_region;

typedef struct zpt_provider {
    pthread_mutex_t lock;          /* guards the region table */
    zpt_region live[ZPT_MAX_REGIONS];
    size_t nlive;
    atomic_size_t maps;            /* successful maps */
    atomic_size_t unmaps;          /* unmaps of a region we mapped */
    atomic_size_t map_calls;       /* every map call, failed or not */
    atomic_size_t injected;        /* map calls failed on purpose */
    atomic_size_t bad_unmaps;      /* unmap of unknown ptr or wrong size */
    atomic_size_t bad_args;        /* map with bad align / size 0 */
    atomic_size_t bytes_live;      /* mapped now */
    atomic_int fail_all;           /* nonzero: every map fails */
    atomic_size_t fail_nth;        /* fail the nth map call (1-based), 0 off */
} zpt_provider;

/* Maps size bytes aligned to align with mmap (trimming the excess). */
static inline void *zpt_raw_map(size_t size, size_t align)
{
    size_t page = zpt_page_size(), total;
    unsigned char *p, *start;
    if (align <= page) {
        p = (unsigned char *)mmap(NULL, size, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    total = size + align;
    if (total < size)
        return NULL;
    p = (unsigned char *)mmap(NULL, total, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    start = (unsigned char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
    if (start > p)
        munmap(p, (size_t)(start - p));
    if (p + total > start + size)
        munmap(start + size, (size_t)(p + total - (start + size)));
    return start;
}

static inline void *zpt_provider_map(size_t size, size_t align, void *ctx)
{
    zpt_provider *pv = (zpt_provider *)ctx;
    size_t call = atomic_fetch_add(&pv->map_calls, 1) + 1;
    size_t nth = atomic_load(&pv->fail_nth);
    void *p;
    if (size == 0 || !zpt_is_pow2(align) || align < zpt_page_size())
        atomic_fetch_add(&pv->bad_args, 1);
    if (atomic_load(&pv->fail_all) || (nth && call == nth)) {
        atomic_fetch_add(&pv->injected, 1);
        return NULL;
    }
    p = zpt_raw_map(size, align);
    if (!p)
        return NULL;
    pthread_mutex_lock(&pv->lock);
    if (pv->nlive < ZPT_MAX_REGIONS) {
        pv->live[pv->nlive].ptr = p;
        pv->live[pv->nlive].size = size;
        pv->nlive++;
    } else {
        atomic_fetch_add(&pv->bad_args, 1); /* table full: test too big */
    }
    pthread_mutex_unlock(&pv->lock);
    atomic_fetch_add(&pv->maps, 1);
    atomic_fetch_add(&pv->bytes_live, size);
    return p;
}

static inline void zpt_provider_unmap(void *ptr, size_t size, void *ctx)
{
    zpt_provider *pv = (zpt_provider *)ctx;
    size_t i;
    int found = 0;
    pthread_mutex_lock(&pv->lock);
    for (i = 0; i < pv->nlive; i++) {
        if (pv->live[i].ptr == ptr) {
            if (pv->live[i].size == size) {
                pv->live[i] = pv->live[--pv->nlive];
                found = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&pv->lock);
    if (!found) {
        atomic_fetch_add(&pv->bad_unmaps, 1); /* leave it mapped: unknown */
        return;
    }
    munmap(ptr, size);
    atomic_fetch_add(&pv->unmaps, 1);
    atomic_fetch_sub(&pv->bytes_live, size);
}

/* 1 if p lies inside a region this provider mapped and has not unmapped. */
static inline int zpt_provider_owns(zpt_provider *pv, const void *p)
{
    size_t i;
    int owns = 0;
    uintptr_t a = (uintptr_t)p;
    pthread_mutex_lock(&pv->lock);
    for (i = 0; i < pv->nlive && !owns; i++) {
        uintptr_t s = (uintptr_t)pv->live[i].ptr;
        owns = a >= s && a < s + pv->live[i].size;
    }
    pthread_mutex_unlock(&pv->lock);
    return owns;
}

/* Finds the live region holding p: 1 and *base, *size set, or 0. */
static inline int zpt_provider_region(zpt_provider *pv, const void *p,
                                      unsigned char **base, size_t *size)
{
    size_t i;
    int found = 0;
    uintptr_t a = (uintptr_t)p;
    pthread_mutex_lock(&pv->lock);
    for (i = 0; i < pv->nlive && !found; i++) {
        uintptr_t s = (uintptr_t)pv->live[i].ptr;
        if (a >= s && a < s + pv->live[i].size) {
            *base = (unsigned char *)pv->live[i].ptr;
            *size = pv->live[i].size;
            found = 1;
        }
    }
    pthread_mutex_unlock(&pv->lock);
    return found;
}

/* Allocates and initializes a provider (free with zpt_provider_free). */
static inline zpt_provider *zpt_provider_new(void)
{
    zpt_provider *pv = (zpt_provider *)calloc(1, sizeof(*pv));
    if (!pv)
        abort();
    pthread_mutex_init(&pv->lock, NULL);
    return pv;
}

static inline void zpt_provider_free(zpt_provider *pv)
{
    if (!pv)
        return;
    pthread_mutex_destroy(&pv->lock);
    free(pv);
}

/* Makes cfg use the counting provider pv. */
static inline void zpt_provider_attach(zp_config *cfg, zpt_provider *pv)
{
    cfg->provider.map = zpt_provider_map;
    cfg->provider.unmap = zpt_provider_unmap;
    cfg->provider.ctx = pv;
}

#endif /* ZP_TEST_UTIL_H */
