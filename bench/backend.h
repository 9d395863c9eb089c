/*
 * bench/backend.h — the three "backends" every benchmark runs against, as
 * always-inline get/put pairs so each measured loop is compiled once per
 * backend with direct calls (no function pointer in the timed path):
 *
 *   BE_ZEROPOOL  zp_get / zp_put on one pool with the default config;
 *   BE_ZPCACHE   zp_cache_get / zp_cache_put: the same pool served through a
 *                caller-owned cache handle (zp_cache_create) instead of the
 *                calling thread's cache. Owner-only, like any handle: the
 *                driver uses it on one thread at a time (hot, batch), never
 *                as a --backends entry;
 *   BE_MALLOC    malloc / free of whichever allocator the process runs with
 *                (glibc, or the one LD_PRELOADed by bench/run.sh);
 *   BE_NAIVE     one global mutex over power-of-two free lists, refilled
 *                from malloc and never trimmed: the floor a pool must beat.
 *
 * Built with -DZPB_HAVE_DPDK (zp_bench_dpdk, when CMake finds libdpdk:
 * see CMakeLists.txt and backend_dpdk.c), there are two more, DPDK's
 * rte_mempool with a per-lcore cache of 32 and of 256 objects:
 *
 *   BE_DPDK32    rte_mempool_get / rte_mempool_put (and _get_bulk /
 *   BE_DPDK256   _put_bulk for the bulk row) on one mempool per buffer size,
 *                made once per process and bound before each figure
 *                (zpb_mp): the pool pointer is in hand, as a DPDK program
 *                holds it. Threads other than the EAL main thread register
 *                with rte_thread_register (be_thread_enter) to get a cache.
 *
 * Built with -DZPB_TWIN (zp_bench_twin, zp_icount_twin: see
 * CMakeLists.txt), there are two more, linked into the same program with
 * every global symbol renamed; BE_ZEROPOOL is then the static library:
 *
 *   BE_ZPNC      zeropool compiled with -DZP_BENCH_NO_COUNTERS (no per-thread
 *                hit/put counters), symbols zp_* -> zpnc_zp_*: differs from
 *                BE_ZEROPOOL in the counters only;
 *   BE_ZPAA      a second copy of BE_ZEROPOOL's library itself (zp_* ->
 *                zpaa_zp_*): the same code at other addresses, the control
 *                that shows what placement alone moves.
 *
 * The zeropool pool is created from zpb_cfg when it is set (see
 * zpb_config_parse), with the defaults otherwise.
 *
 * Shared by zp_bench.c and zp_icount.c. Not part of the library.
 */
#ifndef ZP_BENCH_BACKEND_H
#define ZP_BENCH_BACKEND_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zeropool.h"

#define ZPB_INLINE static inline __attribute__((always_inline))

/* Keeps p alive and all memory writes before this point in place. */
#define ZPB_ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

#ifdef ZPB_TWIN
enum { BE_ZEROPOOL, BE_MALLOC, BE_NAIVE, BE_ZPCACHE, BE_ZPNC, BE_ZPAA,
       BE_COUNT };
static const char *const be_names[BE_COUNT] = {
    "zeropool", "malloc", "naive", "zeropool_handle", "zeropool_nc",
    "zeropool_copy"};

/* the renamed copies of the library (CMakeLists.txt) */
#define ZPB_TWIN_DECLARE(P)                                                    \
    int P##zp_pool_create(const zp_config *cfg, zp_pool **out);               \
    void P##zp_pool_destroy(zp_pool *pool);                                    \
    void *P##zp_get(zp_pool *pool, size_t size);                               \
    void P##zp_put(zp_pool *pool, void *buf);
ZPB_TWIN_DECLARE(zpnc_)
ZPB_TWIN_DECLARE(zpaa_)
#elif defined(ZPB_HAVE_DPDK)
enum { BE_ZEROPOOL, BE_MALLOC, BE_NAIVE, BE_ZPCACHE, BE_DPDK32, BE_DPDK256,
       BE_COUNT };
static const char *const be_names[BE_COUNT] = {
    "zeropool", "malloc", "naive", "zeropool_handle", "dpdk32", "dpdk256"};
#else
enum { BE_ZEROPOOL, BE_MALLOC, BE_NAIVE, BE_ZPCACHE, BE_COUNT };
static const char *const be_names[BE_COUNT] = {"zeropool", "malloc", "naive",
                                               "zeropool_handle"};
#endif

#include "backend_dpdk.h"

#ifdef ZPB_HAVE_DPDK
static inline unsigned be_dpdk_cache(int be)
{
    return be == BE_DPDK32 ? 32 : 256;
}
#endif

/* Is be one of DPDK's mempools? */
static inline int be_is_dpdk(int be)
{
#ifdef ZPB_HAVE_DPDK
    return be == BE_DPDK32 || be == BE_DPDK256;
#else
    (void)be;
    return 0;
#endif
}

static inline int be_parse(const char *s)
{
    for (int i = 0; i < BE_COUNT; i++)
        if (strcmp(s, be_names[i]) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------ zeropool */

static zp_pool *zpb_pool;
#ifdef ZPB_TWIN
static zp_pool *zpb_nc_pool, *zpb_aa_pool;
#endif
static zp_cache *zpb_cache;      /* BE_ZPCACHE's handle, on zpb_pool */
static const zp_config *zpb_cfg; /* NULL: defaults */

/*
 * A pool config from a spec: "default", or a comma-separated list of
 * depth=N (cache_depth), max_bytes=N[k|m|g] (a private budget), debug=N,
 * huge=0|1 (ZP_HUGE_PAGES) and locked=0|1 (ZP_LOCKED), e.g. "max_bytes=1g"
 * or "depth=16,debug=1". Returns 0, or -1 on a bad spec.
 */
static inline int zpb_config_parse(const char *spec, zp_config *cfg)
{
    char buf[256], *save = NULL;
    zp_config_init(cfg);
    if (spec == NULL || strcmp(spec, "default") == 0)
        return 0;
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *end;
        if (eq == NULL)
            return -1;
        *eq = 0;
        unsigned long long v = strtoull(eq + 1, &end, 0);
        if (end == eq + 1)
            return -1;
        if (*end == 'k' || *end == 'K')
            v <<= 10, end++;
        else if (*end == 'm' || *end == 'M')
            v <<= 20, end++;
        else if (*end == 'g' || *end == 'G')
            v <<= 30, end++;
        if (*end)
            return -1;
        if (strcmp(tok, "depth") == 0)
            cfg->cache_depth = (unsigned)v;
        else if (strcmp(tok, "max_bytes") == 0)
            cfg->max_bytes = (size_t)v;
        else if (strcmp(tok, "debug") == 0)
            cfg->debug = (int)v;
        else if (strcmp(tok, "huge") == 0)
            cfg->flags = v ? cfg->flags | ZP_HUGE_PAGES : cfg->flags & ~ZP_HUGE_PAGES;
        else if (strcmp(tok, "locked") == 0)
            cfg->flags = v ? cfg->flags | ZP_LOCKED : cfg->flags & ~ZP_LOCKED;
        else
            return -1;
    }
    return 0;
}

/* ------------------------------------------------ naive mutex free list */

#define NAIVE_HDR 64 /* header before each buffer: keeps it 64-aligned */
#define NAIVE_MIN_SHIFT 12
#define NAIVE_CLASSES 48

typedef struct naive_hdr {
    struct naive_hdr *next;
    unsigned cls;
} naive_hdr;

static pthread_mutex_t naive_mu = PTHREAD_MUTEX_INITIALIZER;
static naive_hdr *naive_free[NAIVE_CLASSES];

ZPB_INLINE unsigned naive_class(size_t size)
{
    if (size <= ((size_t)1 << NAIVE_MIN_SHIFT))
        return NAIVE_MIN_SHIFT;
    return (unsigned)(64 - __builtin_clzll((unsigned long long)(size - 1)));
}

ZPB_INLINE void *naive_get(size_t size)
{
    unsigned cls = naive_class(size);
    naive_hdr *h;
    pthread_mutex_lock(&naive_mu);
    h = naive_free[cls];
    if (h)
        naive_free[cls] = h->next;
    pthread_mutex_unlock(&naive_mu);
    if (!h) {
        h = malloc(((size_t)1 << cls) + NAIVE_HDR);
        if (!h)
            return NULL;
        h->cls = cls;
    }
    return (char *)h + NAIVE_HDR;
}

ZPB_INLINE void naive_put(void *p)
{
    naive_hdr *h = (naive_hdr *)((char *)p - NAIVE_HDR);
    pthread_mutex_lock(&naive_mu);
    h->next = naive_free[h->cls];
    naive_free[h->cls] = h;
    pthread_mutex_unlock(&naive_mu);
}

static void naive_drain(void)
{
    pthread_mutex_lock(&naive_mu);
    for (unsigned c = 0; c < NAIVE_CLASSES; c++) {
        while (naive_free[c]) {
            naive_hdr *h = naive_free[c];
            naive_free[c] = h->next;
            free(h);
        }
    }
    pthread_mutex_unlock(&naive_mu);
}

/* ------------------------------------------------------------ dispatch */

ZPB_INLINE void *be_get(int be, size_t size)
{
    switch (be) {
    case BE_ZEROPOOL:
        return zp_get(zpb_pool, size);
    case BE_ZPCACHE:
        return zp_cache_get(zpb_cache, size);
    case BE_MALLOC:
        return malloc(size);
#ifdef ZPB_HAVE_DPDK
    case BE_DPDK32:
    case BE_DPDK256: { /* the bound pool: size is the one it was bound for */
        void *p;
        return rte_mempool_get(zpb_mp, &p) == 0 ? p : NULL;
    }
#endif
#ifdef ZPB_TWIN
    case BE_ZPNC:
        return zpnc_zp_get(zpb_nc_pool, size);
    case BE_ZPAA:
        return zpaa_zp_get(zpb_aa_pool, size);
#endif
    default:
        return naive_get(size);
    }
}

ZPB_INLINE void be_put(int be, void *p)
{
    switch (be) {
    case BE_ZEROPOOL:
        zp_put(zpb_pool, p);
        break;
    case BE_ZPCACHE:
        zp_cache_put(zpb_cache, p);
        break;
    case BE_MALLOC:
        free(p);
        break;
#ifdef ZPB_HAVE_DPDK
    case BE_DPDK32:
    case BE_DPDK256:
        rte_mempool_put(zpb_mp, p);
        break;
#endif
#ifdef ZPB_TWIN
    case BE_ZPNC:
        zpnc_zp_put(zpb_nc_pool, p);
        break;
    case BE_ZPAA:
        zpaa_zp_put(zpb_aa_pool, p);
        break;
#endif
    default:
        naive_put(p);
        break;
    }
}

/*
 * n buffers at once: the backend's batch call where it has one
 * (zp_get_batch / zp_put_batch, zp_cache_get_batch / zp_cache_put_batch,
 * rte_mempool_get_bulk / rte_mempool_put_bulk), else n single calls (malloc,
 * naive: they have no batch call). Returns 0, or -1 with nothing got.
 */
ZPB_INLINE int be_get_bulk(int be, size_t size, void **bufs, unsigned n)
{
    switch (be) {
    case BE_ZEROPOOL:
        return zp_get_batch(zpb_pool, size, bufs, n) == 0 ? 0 : -1;
    case BE_ZPCACHE:
        return zp_cache_get_batch(zpb_cache, size, bufs, n) == 0 ? 0 : -1;
#ifdef ZPB_HAVE_DPDK
    case BE_DPDK32:
    case BE_DPDK256:
        return rte_mempool_get_bulk(zpb_mp, bufs, n) == 0 ? 0 : -1;
#endif
    default:
        for (unsigned i = 0; i < n; i++) {
            bufs[i] = be_get(be, size);
            if (__builtin_expect(bufs[i] == NULL, 0)) {
                while (i-- > 0)
                    be_put(be, bufs[i]);
                return -1;
            }
        }
        return 0;
    }
}

ZPB_INLINE void be_put_bulk(int be, void *const *bufs, unsigned n)
{
    switch (be) {
    case BE_ZEROPOOL:
        zp_put_batch(zpb_pool, bufs, n);
        break;
    case BE_ZPCACHE:
        zp_cache_put_batch(zpb_cache, bufs, n);
        break;
#ifdef ZPB_HAVE_DPDK
    case BE_DPDK32:
    case BE_DPDK256:
        rte_mempool_put_bulk(zpb_mp, bufs, n);
        break;
#endif
    default:
        for (unsigned i = 0; i < n; i++)
            be_put(be, bufs[i]);
        break;
    }
}

/* The calling thread is about to use backend be (a team thread, at the
 * start of its role): a DPDK backend registers it as an lcore once. */
static inline void be_thread_enter(int be)
{
#ifdef ZPB_HAVE_DPDK
    if (be_is_dpdk(be))
        zpb_dpdk_thread_enter();
#else
    (void)be;
#endif
}

/* The calling thread is done with backend be for now: a DPDK backend
 * returns what its cache holds to the pool, so that another thread's gets
 * can find every buffer (the pools are sized for one cache's worth held
 * elsewhere; see backend_dpdk.c). */
static inline void be_quiesce(int be)
{
#ifdef ZPB_HAVE_DPDK
    if (be_is_dpdk(be))
        zpb_dpdk_flush();
#else
    (void)be;
#endif
}

/* Is be one of the zeropool builds? */
static inline int be_is_zeropool(int be)
{
#ifdef ZPB_TWIN
    if (be == BE_ZPNC || be == BE_ZPAA)
        return 1;
#endif
    return be == BE_ZEROPOOL || be == BE_ZPCACHE;
}

/* The pool variable be_get/be_put use for a zeropool build. */
static inline zp_pool **be_pool_var(int be)
{
#ifdef ZPB_TWIN
    if (be == BE_ZPNC)
        return &zpb_nc_pool;
    if (be == BE_ZPAA)
        return &zpb_aa_pool;
#endif
    (void)be;
    return &zpb_pool;
}

/* A pool of zeropool build be (cfg NULL: defaults); 0 or a negative errno. */
static inline int be_pool_create(int be, const zp_config *cfg, zp_pool **out)
{
#ifdef ZPB_TWIN
    if (be == BE_ZPNC)
        return zpnc_zp_pool_create(cfg, out);
    if (be == BE_ZPAA)
        return zpaa_zp_pool_create(cfg, out);
#endif
    (void)be;
    return zp_pool_create(cfg, out);
}

static inline void be_pool_destroy(int be, zp_pool *pool)
{
#ifdef ZPB_TWIN
    if (be == BE_ZPNC) {
        zpnc_zp_pool_destroy(pool);
        return;
    }
    if (be == BE_ZPAA) {
        zpaa_zp_pool_destroy(pool);
        return;
    }
#endif
    (void)be;
    zp_pool_destroy(pool);
}

/*
 * A zeropool build's state for one measurement: a pool of build be (cfg
 * NULL: defaults) and, for BE_ZPCACHE, a handle on it (*cache; NULL for the
 * others). Returns 0, or a negative errno with nothing left behind.
 */
static inline int be_open(int be, const zp_config *cfg, zp_pool **pool,
                          zp_cache **cache)
{
    int rc = be_pool_create(be, cfg, pool);
    *cache = NULL;
    if (rc == 0 && be == BE_ZPCACHE) {
        rc = zp_cache_create(*pool, cache);
        if (rc != 0) {
            zp_pool_destroy(*pool);
            *pool = NULL;
        }
    }
    return rc;
}

/* Undoes be_open: the handle first (destroy it before its pool). */
static inline void be_close(int be, zp_pool *pool, zp_cache *cache)
{
    zp_cache_destroy(cache); /* NULL: nothing */
    be_pool_destroy(be, pool);
}

/* Points be_get/be_put of build be at pool (and cache, for BE_ZPCACHE). */
static inline void be_bind(int be, zp_pool *pool, zp_cache *cache)
{
    *be_pool_var(be) = pool;
    if (be == BE_ZPCACHE)
        zpb_cache = cache;
}

/* Fresh state for one measurement of buffers of size: a new pool (and
 * handle), an empty naive list; for DPDK, the mempool of that size bound
 * (made on first use, kept for the process) with the calling thread's cache
 * emptied. */
static inline int be_setup(int be, size_t size)
{
    (void)size;
#ifdef ZPB_HAVE_DPDK
    if (be_is_dpdk(be)) {
        if (zpb_dpdk_bind(be_dpdk_cache(be), size) != 0)
            return -1;
        zpb_dpdk_flush();
        return 0;
    }
#endif
    if (be_is_zeropool(be)) {
        zp_pool *pool;
        zp_cache *cache;
        int rc = be_open(be, zpb_cfg, &pool, &cache);
        if (rc != 0) {
            fprintf(stderr, "zp_bench: %s: %s: %s\n", be_names[be],
                    be == BE_ZPCACHE ? "zp_pool_create/zp_cache_create"
                                     : "zp_pool_create",
                    zp_strerror(rc));
            return -1;
        }
        be_bind(be, pool, cache);
    }
    return 0;
}

static inline void be_teardown(int be)
{
    if (be_is_zeropool(be)) {
        be_close(be, *be_pool_var(be), be == BE_ZPCACHE ? zpb_cache : NULL);
        be_bind(be, NULL, NULL);
    } else if (be == BE_NAIVE) {
        naive_drain();
    } else {
        be_quiesce(be);
    }
}

#endif /* ZP_BENCH_BACKEND_H */
