/*
 * Helpers for the budget, zp_get_timed, trim, retention and decay tests:
 * clocks, resident memory (process RSS and per-range residency), budget
 * reads, polling, and a provider wrapper that proves the bytes mapped never
 * exceed a bound, not even for a moment.
 *
 * Like test_util.h, nothing here uses cmocka: safe from worker threads.
 */
#ifndef ZP_BUDGET_UTIL_H
#define ZP_BUDGET_UTIL_H

#include "test_util.h"

#include <sched.h>
#include <time.h>

/* ------------------------------------------------------------------ time */

/* Monotonic nanoseconds (the clock zp_get_timed's deadline uses). */
static inline uint64_t zbt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double zbt_ms_since(uint64_t start_ns)
{
    return (double)(zbt_now_ns() - start_ns) / 1e6;
}

static inline void zbt_sleep_ms(unsigned ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---------------------------------------------------------------- memory */

/* Resident bytes of the whole process (/proc/self/statm), 0 if unknown. */
static inline size_t zbt_rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * zpt_page_size();
}

/* Resident bytes of [p, p+n) by mincore (page granularity); SIZE_MAX if
 * mincore failed (e.g. the range is not mapped). */
static inline size_t zbt_resident_in(const void *p, size_t n)
{
    size_t page = zpt_page_size();
    uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)p + n + page - 1) & ~(uintptr_t)(page - 1);
    size_t pages = (end - start) / page, i, res = 0;
    unsigned char *vec = (unsigned char *)malloc(pages ? pages : 1);
    if (vec == NULL)
        return SIZE_MAX;
    if (mincore((void *)start, end - start, vec) != 0) {
        free(vec);
        return SIZE_MAX;
    }
    for (i = 0; i < pages; i++)
        res += (vec[i] & 1) ? page : 0;
    free(vec);
    return res;
}

/* Writes every page of a buffer so it is resident. */
static inline void zbt_touch(void *p, size_t n, unsigned char byte)
{
    memset(p, byte, n);
}

/*
 * Whether the process RSS can be held to what the pool released. Under
 * ASan it cannot: the shadow of a released range (1/8 of it) stays
 * resident after the range is unmapped, so RSS assertions are skipped
 * there (and say so); the figures are still printed.
 */
#if defined(ZPT_ASAN)
#define ZBT_RSS_RELIABLE 0
#define ZBT_RSS_WHY "ASan keeps the shadow of released memory resident"
#else
#define ZBT_RSS_RELIABLE 1
#define ZBT_RSS_WHY ""
#endif

/* 1 if RSS dropped from peak to after by at least share x released. */
static inline int zbt_rss_dropped(size_t peak, size_t after, uint64_t released,
                                  double share)
{
    size_t drop = peak > after ? peak - after : 0;
    return (double)drop >= share * (double)released;
}

static inline double zbt_mib(uint64_t bytes)
{
    return (double)bytes / (double)ZPT_MiB;
}

/* ---------------------------------------------------------------- budget */

static inline int zbt_budget(zp_budget *b, zp_budget_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    return zp_budget_read(b, s);
}

/* Waiting right now (0 if the read fails). */
static inline uint64_t zbt_waiters(zp_budget *b)
{
    zp_budget_stats s;
    return zbt_budget(b, &s) == 0 ? s.waiters : 0;
}

/* Polls until the budget has at least n waiters or timeout_ms passed;
 * returns 1 if it got there. */
static inline int zbt_wait_waiters(zp_budget *b, uint64_t n, unsigned timeout_ms)
{
    uint64_t start = zbt_now_ns();
    while (zbt_waiters(b) < n) {
        if (zbt_ms_since(start) > timeout_ms)
            return 0;
        zbt_sleep_ms(1);
    }
    return 1;
}

/* Polls until *counter >= n or timeout_ms passed; 1 if it got there. */
static inline int zbt_wait_count(atomic_int *counter, int n, unsigned timeout_ms)
{
    uint64_t start = zbt_now_ns();
    while (atomic_load(counter) < n) {
        if (zbt_ms_since(start) > timeout_ms)
            return 0;
        zbt_sleep_ms(1);
    }
    return 1;
}

/* Thread body: gets up to four 1 MiB buffers of the pool `arg`, puts them
 * back into its cache and returns (exits) with them there; returns how
 * many it got, as an intptr_t. */
static inline void *zbt_get_put_exit(void *arg)
{
    zp_pool *pool = (zp_pool *)arg;
    void *bufs[4];
    int i, n = 0;
    for (i = 0; i < 4; i++)
        if ((bufs[n] = zp_get(pool, ZPT_MiB)) != NULL)
            n++;
    for (i = 0; i < n; i++)
        zp_put(pool, bufs[i]);
    return (void *)(intptr_t)n;
}

/* bytes_reserved of a pool (UINT64_MAX if the read fails). */
static inline uint64_t zbt_reserved(zp_pool *pool)
{
    zp_stats s;
    return zpt_stats(pool, &s) == 0 ? s.bytes_reserved : UINT64_MAX;
}

/* Index of the class of `size` in zp_stats.classes (min_class a power of
 * two). */
static inline unsigned zbt_class_index(size_t min_class, size_t size)
{
    unsigned i = 0;
    while ((min_class << i) < size)
        i++;
    return i;
}

/* ----------------------------------------------- bounded provider wrapper */

/*
 * Wraps a counting zpt_provider and charges every region to `charged`
 * BEFORE it is mapped and discharges it only AFTER it is unmapped: an upper
 * bound of what is mapped at any instant. If that bound ever exceeds
 * `bound` (the budget's max), `over` counts it: the pools reserved too late
 * or released too early.
 */
typedef struct zbt_bounded {
    zpt_provider *pv;
    uint64_t bound;
    atomic_uint_fast64_t charged;
    atomic_uint_fast64_t peak;
    atomic_int over;
} zbt_bounded;

static inline void *zbt_bounded_map(size_t size, size_t align, void *ctx)
{
    zbt_bounded *bp = (zbt_bounded *)ctx;
    uint64_t now = atomic_fetch_add(&bp->charged, size) + size;
    uint64_t peak = atomic_load(&bp->peak);
    void *m;
    while (now > peak && !atomic_compare_exchange_weak(&bp->peak, &peak, now))
        ;
    if (now > bp->bound)
        atomic_fetch_add(&bp->over, 1);
    m = zpt_provider_map(size, align, bp->pv);
    if (m == NULL)
        atomic_fetch_sub(&bp->charged, size);
    return m;
}

static inline void zbt_bounded_unmap(void *ptr, size_t size, void *ctx)
{
    zbt_bounded *bp = (zbt_bounded *)ctx;
    zpt_provider_unmap(ptr, size, bp->pv);
    atomic_fetch_sub(&bp->charged, size);
}

static inline void zbt_bounded_init(zbt_bounded *bp, zpt_provider *pv, uint64_t bound)
{
    bp->pv = pv;
    bp->bound = bound;
    atomic_init(&bp->charged, 0);
    atomic_init(&bp->peak, 0);
    atomic_init(&bp->over, 0);
}

static inline void zbt_bounded_attach(zp_config *cfg, zbt_bounded *bp)
{
    cfg->provider.map = zbt_bounded_map;
    cfg->provider.unmap = zbt_bounded_unmap;
    cfg->provider.ctx = bp;
}

#endif /* ZP_BUDGET_UTIL_H */
