/*
 * pool.c — the public entry points: configuration, pool lifecycle, and the
 * get/put hot paths with their out-of-line slow paths.
 *
 * The hot paths serve a hit in the calling thread's cache with a handful of
 * loads, one store to the bin and one owner-only counter store: no lock, no
 * atomic read-modify-write, no shared cache line written. Everything else
 * (a miss, an overflow, debug checks, flags, oversize, misuse) goes to the
 * slow paths, kept out of line.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- config */

#define ZP__DEFAULT_MIN_CLASS ((size_t)4 << 10)
#define ZP__DEFAULT_MAX_CLASS ((size_t)64 << 20)
#define ZP__DEFAULT_CACHE_DEPTH 32u
#define ZP__DEFAULT_CACHE_BYTES ((size_t)64 << 20)

void zp_config_init(zp_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof(*cfg));
    cfg->struct_size = sizeof(*cfg);
    cfg->min_class = ZP__DEFAULT_MIN_CLASS;
    cfg->max_class = ZP__DEFAULT_MAX_CLASS;
    cfg->cache_depth = ZP__DEFAULT_CACHE_DEPTH;
    cfg->cache_bytes = ZP__DEFAULT_CACHE_BYTES;
    cfg->flags = 0;
    cfg->debug = 0;
    cfg->max_cached_bytes = SIZE_MAX;
}

static bool is_pow2(size_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* Copies the caller's config (which may come from a newer header) and
 * rejects anything invalid with a precise reason. */
static int config_load(const zp_config *in, zp_config *cfg)
{
    zp_config_init(cfg);
    if (in != NULL) {
        /* a config from an older header (without name) is still accepted */
        if (in->struct_size < offsetof(zp_config, provider) + sizeof(zp_provider))
            return zp__error(-EINVAL,
                             "zp_pool_create: config struct_size %zu is too small "
                             "(initialise the config with zp_config_init)",
                             in->struct_size);
        if (in->struct_size > sizeof(zp_config)) {
            const unsigned char *extra = (const unsigned char *)in + sizeof(zp_config);
            for (size_t i = 0; i < in->struct_size - sizeof(zp_config); i++)
                if (extra[i] != 0)
                    return zp__error(-EINVAL,
                                     "zp_pool_create: config sets fields unknown to "
                                     "zeropool %s (struct_size %zu > %zu)",
                                     ZP_VERSION_STRING, in->struct_size, sizeof(zp_config));
        }
        memcpy(cfg, in, in->struct_size < sizeof(*cfg) ? in->struct_size : sizeof(*cfg));
    }
    const char *env = getenv("ZEROPOOL_DEBUG");
    if (env != NULL && *env != '\0') {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end != '\0' || v < 0 || v > ZP_DEBUG_MAX)
            return zp__error(-EINVAL,
                             "zp_pool_create: ZEROPOOL_DEBUG=%s is not a debug level 0..%d",
                             env, ZP_DEBUG_MAX);
        cfg->debug = (int)v;
    }
    if (!is_pow2(cfg->min_class))
        return zp__error(-EINVAL, "zp_pool_create: min_class %zu is not a power of two",
                         cfg->min_class);
    if (!is_pow2(cfg->max_class))
        return zp__error(-EINVAL, "zp_pool_create: max_class %zu is not a power of two",
                         cfg->max_class);
    if (cfg->min_class < ((size_t)1 << ZP__MIN_CLASS_SHIFT))
        return zp__error(-EINVAL, "zp_pool_create: min_class %zu is below the minimum %zu",
                         cfg->min_class, (size_t)1 << ZP__MIN_CLASS_SHIFT);
    if (cfg->max_class > ((size_t)1 << ZP__MAX_CLASS_SHIFT))
        return zp__error(-EINVAL, "zp_pool_create: max_class %zu is above the maximum %zu",
                         cfg->max_class, (size_t)1 << ZP__MAX_CLASS_SHIFT);
    if (cfg->min_class > cfg->max_class)
        return zp__error(-EINVAL,
                         "zp_pool_create: min_class %zu is larger than max_class %zu",
                         cfg->min_class, cfg->max_class);
    if (cfg->cache_depth > ZP__MAX_CACHE_DEPTH)
        return zp__error(-EINVAL, "zp_pool_create: cache_depth %u is above the maximum %u",
                         cfg->cache_depth, ZP__MAX_CACHE_DEPTH);
    const unsigned known = ZP_ZERO_ON_GET | ZP_WIPE_ON_PUT | ZP_DECAY_THREAD;
    if (cfg->flags & ~known)
        return zp__error(-EINVAL, "zp_pool_create: flags 0x%x has unknown bits 0x%x",
                         cfg->flags, cfg->flags & ~known);
    if (cfg->budget != NULL && cfg->max_bytes != 0)
        return zp__error(-EINVAL,
                         "zp_pool_create: set either budget or max_bytes, not both");
    if ((cfg->flags & ZP_DECAY_THREAD) && cfg->decay_ms == 0)
        return zp__error(-EINVAL, "zp_pool_create: ZP_DECAY_THREAD needs decay_ms > 0");
    if (cfg->debug < 0 || cfg->debug > ZP_DEBUG_MAX)
        return zp__error(-EINVAL, "zp_pool_create: debug %d is not a debug level 0..%d",
                         cfg->debug, ZP_DEBUG_MAX);
    if ((cfg->provider.map == NULL) != (cfg->provider.unmap == NULL))
        return zp__error(-EINVAL,
                         "zp_pool_create: provider needs both map and unmap (or neither)");
    if (cfg->name != NULL) {
        size_t len = strlen(cfg->name);
        if (len == 0 || len >= ZP_NAME_MAX)
            return zp__error(-EINVAL, "zp_pool_create: name must have 1..%d characters",
                             ZP_NAME_MAX - 1);
        if (strspn(cfg->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                              "0123456789_.:-") != len)
            return zp__error(-EINVAL,
                             "zp_pool_create: name \"%s\" has characters outside "
                             "[A-Za-z0-9_.:-]",
                             cfg->name);
    }
    return 0;
}

/* ------------------------------------------------------------- lifecycle */

static _Atomic uint64_t pool_ids;

int zp_pool_create(const zp_config *in, zp_pool **out)
{
    if (out == NULL)
        return zp__error(-EINVAL, "zp_pool_create: out is NULL");
    *out = NULL;
    zp_config cfg;
    int rc = config_load(in, &cfg);
    if (rc)
        return rc;

    zp_pool *p = aligned_alloc(ZP_CACHELINE, (sizeof(*p) + ZP_CACHELINE - 1) &
                                                 ~(size_t)(ZP_CACHELINE - 1));
    if (p == NULL)
        return zp__error(-ENOMEM, "zp_pool_create: out of memory for the pool");
    memset(p, 0, sizeof(*p));
    p->min_shift = (uint32_t)__builtin_ctzll(cfg.min_class);
    p->min_mask = cfg.min_class - 1;
    p->nclasses = (uint32_t)__builtin_ctzll(cfg.max_class) - p->min_shift + 1;
    p->max_class = cfg.max_class;
    p->flags = cfg.flags;
    p->debug = cfg.debug;
    p->cache_depth = cfg.cache_depth;
    p->hot_default = ((cfg.flags & (ZP_ZERO_ON_GET | ZP_WIPE_ON_PUT)) || cfg.debug)
                         ? 0 : p->nclasses;
    atomic_init(&p->hot_classes, p->hot_default);
    p->max_cached = cfg.max_cached_bytes;
    p->decay_ms = cfg.decay_ms;
    p->page_size = (size_t)sysconf(_SC_PAGESIZE);
    p->provider = cfg.provider.map ? cfg.provider : zp__default_provider;
    p->id = atomic_fetch_add_explicit(&pool_ids, 1, memory_order_relaxed) + 1;
    p->slot = ZP__NO_SLOT;
    if (cfg.name)
        snprintf(p->name, sizeof p->name, "%s", cfg.name);
    else
        snprintf(p->name, sizeof p->name, "pool%llu", (unsigned long long)p->id);

    if ((rc = -pthread_mutex_init(&p->lock, NULL)) != 0) {
        free(p);
        return zp__error(rc, "zp_pool_create: cannot initialise the pool lock");
    }
    if ((rc = -pthread_mutex_init(&p->stats_lock, NULL)) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return zp__error(rc, "zp_pool_create: cannot initialise the stats lock");
    }
    unsigned c;
    for (c = 0; c < p->nclasses; c++) {
        size_t csize = zp__class_size(p, c);
        uint32_t cap = cfg.cache_depth;
        if (cfg.cache_bytes && cap > 0) {
            size_t by_bytes = cfg.cache_bytes / csize;
            if (by_bytes < 1)
                by_bytes = 1;
            if (by_bytes < cap)
                cap = (uint32_t)by_bytes;
        }
        uint32_t batch = cap / 2 ? cap / 2 : 1;
        if ((rc = zp__depot_init(&p->depot[c], batch, cap)) != 0)
            break;
    }
    bool own_budget = false, decay = false;
    if (rc == 0 && cfg.max_bytes) {
        rc = zp_budget_create(cfg.max_bytes, &p->budget);
        own_budget = rc == 0;
    } else if (rc == 0 && cfg.budget) {
        p->budget = cfg.budget;
    }
    if (rc == 0)
        decay = (rc = zp__decay_start(p)) == 0;
    if (rc == 0 && zp__registry_add(p, cfg.cache_depth > 0) != 0)
        rc = zp__error(-ENOMEM, "zp_pool_create: more than %u live pools with thread caches",
                       ZP__MAX_POOLS);
    if (rc == 0 && p->budget) {
        zp__budget_attach(p->budget, p);
        if (own_budget)
            zp_budget_destroy(p->budget); /* the pool's reference keeps it */
    }
    if (rc) {
        if (decay)
            zp__decay_stop(p);
        if (own_budget)
            zp_budget_destroy(p->budget);
        while (c-- > 0)
            zp__depot_fini(&p->depot[c]);
        pthread_mutex_destroy(&p->stats_lock);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return rc < 0 ? rc : -ENOMEM;
    }
    *out = p;
    return 0;
}

/* One line of the outstanding-buffers report (the heading before the
 * first). */
static void report_line(const zp_pool *p, bool first, const char *what, uint64_t n,
                        uint64_t bytes)
{
    if (first)
        fprintf(stderr, "zeropool: pool %s (%p) destroyed with buffers outstanding:\n", p->name,
                (const void *)p);
    fprintf(stderr, "zeropool:   %s: %llu buffers, %llu bytes\n", what, (unsigned long long)n,
            (unsigned long long)bytes);
}

static void report_outstanding(zp_pool *p)
{
    uint64_t total = 0, bytes = 0;
    char what[48];
    for (unsigned c = 0; c < p->nclasses; c++) {
        zp__counts k = zp__class_counts(p, c);
        uint64_t gets = zp__counts_gets(&k);
        if (gets > k.puts) {
            uint64_t n = gets - k.puts, b = n * zp__class_size(p, c);
            snprintf(what, sizeof what, "class %zu", zp__class_size(p, c));
            report_line(p, total == 0, what, n, b);
            total += n;
            bytes += b;
        }
    }
    if (p->oversize_live) {
        report_line(p, total == 0, "oversize", p->oversize_live, p->oversize_bytes);
        total += p->oversize_live;
        bytes += p->oversize_bytes;
    }
    if (total)
        fprintf(stderr, "zeropool:   total: %llu buffers, %llu bytes (now invalid)\n",
                (unsigned long long)total, (unsigned long long)bytes);
}

void zp_pool_destroy(zp_pool *p)
{
    if (p == NULL)
        return;
    /* Detach every thread's cache: their buffers are reclaimed below with
     * the slabs that hold them. */
    zp__decay_stop(p);
    zp__registry_remove(p);
    report_outstanding(p);
    zp__debug_leak_report(p);
    zp__slabs_destroy_all(p);
    if (p->budget)
        zp__budget_detach(p->budget, p);
    for (unsigned c = 0; c < p->nclasses; c++)
        zp__depot_fini(&p->depot[c]);
    pthread_mutex_destroy(&p->stats_lock);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

bool zp__put_to_waiters(zp_pool *p, unsigned cls, void *const *bufs, uint32_t n)
{
    if (p->budget == NULL || !zp__budget_has_waiters(p->budget))
        return false;
    zp__depot_give(p, cls, bufs, n, true);
    zp__trim_class(p, cls, UINT64_MAX, false);
    zp__budget_notify(p->budget);
    return true;
}

void zp__pool_after_fork_child(zp_pool *p)
{
    pthread_mutex_init(&p->stats_lock, NULL);
    /* the decay thread (if any) was waiting on these in the parent */
    pthread_mutex_init(&p->decay_lock, NULL);
    (void)zp__cond_init_monotonic(&p->decay_cv);
    p->decay_thread_on = false; /* the thread did not survive the fork */
    if (p->budget)
        zp__budget_after_fork_child(p->budget);
}

const char *zp_pool_name(const zp_pool *p)
{
    return p ? p->name : NULL;
}

/* -------------------------------------------------------------- hot path */

void *zp_get(zp_pool *p, size_t size)
{
    zp__thread *t = zp__tls;
    uint32_t slot = p->slot;
    if (ZP_LIKELY(slot < t->cap)) {
        zp__tcache *tc = t->caches[slot];
        unsigned cls = zp__class_of(p, size);
        if (ZP_LIKELY(tc != NULL && tc->pool == p && cls < atomic_load_explicit(&p->hot_classes,
                                                                      memory_order_relaxed))) {
            zp__bin *b = &tc->bins[cls];
            uint32_t n = b->count;
            if (ZP_LIKELY(n != 0)) {
                void *buf = b->items[n - 1];
                b->count = n - 1;
                zp__counter_inc(&b->hits);
                return buf;
            }
        }
    }
    return zp__get_slow(p, size, __builtin_return_address(0));
}

void zp_put(zp_pool *p, void *buf)
{
    zp__thread *t = zp__tls;
    uint32_t slot = p->slot;
    if (ZP_LIKELY(slot < t->cap)) {
        zp__tcache *tc = t->caches[slot];
        zp__slab *s = zp__hot_slab(p, buf);
        if (ZP_LIKELY(tc != NULL && tc->pool == p && s != NULL)) {
            zp__bin *b = &tc->bins[s->cls];
            uint32_t n = b->count;
            if (ZP_LIKELY(n < b->cap)) {
                b->items[n] = buf;
                b->count = n + 1;
                zp__counter_inc(&b->puts);
                return;
            }
        }
    }
    zp__put_slow(p, buf);
}

/* ------------------------------------------------------------ slow paths */

void *zp__finish_get(zp_pool *p, void *buf, unsigned cls, const void *caller)
{
    if (p->debug >= 1)
        zp__debug_on_get(p, buf, cls, caller);
    if (p->flags & ZP_ZERO_ON_GET)
        memset(buf, 0, zp__class_size(p, cls));
    return buf;
}

static void *take_one_try(zp_pool *p, unsigned cls, zp__tcache *tc)
{
    void *buf;
    bool carved;
    if (tc == NULL)
        return zp__depot_take(p, cls, &buf, 1, 1, &carved) ? buf : NULL;
    zp__bin *b = &tc->bins[cls];
    if (b->count != 0) {
        zp__counter_inc(&b->hits);
        return b->items[--b->count];
    }
    zp__bin_misses *m = &tc->misses[cls];
    uint32_t batch = p->depot[cls].batch;
    uint32_t want = m->refill ? m->refill : 1;
    uint32_t n = zp__depot_take(p, cls, b->items, want, 0, &carved);
    if (n == 0)
        return NULL;
    if (want < batch)
        m->refill = want * 2 < batch ? want * 2 : batch;
    zp__counter_inc(carved ? &tc->misses[cls].allocations : &tc->misses[cls].depot_hits);
    b->count = n - 1;
    return b->items[n - 1];
}

void zp__reclaim_for_budget(zp_pool *p, zp__tcache *tc)
{
    if (tc)
        zp__tcache_drain(p, tc);
    zp__trim_pool(p, 0, false);
}

void *zp__take_one(zp_pool *p, unsigned cls)
{
    zp__tcache *tc = p->cache_depth ? zp__tcache_get(p) : NULL;
    void *buf = take_one_try(p, cls, tc);
    if (buf == NULL && errno == ENOBUFS && zp__request_bytes(p, zp__class_size(p, cls)) <=
                                               zp__budget_max(p->budget)) {
        zp__reclaim_for_budget(p, tc);
        buf = take_one_try(p, cls, tc);
    }
    if (buf == NULL)
        zp__budget_count_failure(p, errno);
    else
        zp__idle_check(p);
    return buf;
}

ZP_NOINLINE void *zp__get_slow(zp_pool *p, size_t size, const void *caller)
{
    if (size == 0)
        size = 1;
    if (size > p->max_class) {
        void *buf = zp__oversize_get(p, size, true);
        if (buf == NULL && errno == ENOBUFS &&
            zp__request_bytes(p, size) <= zp__budget_max(p->budget)) {
            zp__reclaim_for_budget(p, p->cache_depth ? zp__tcache_get(p) : NULL);
            buf = zp__oversize_get(p, size, true);
        }
        if (buf == NULL)
            zp__budget_count_failure(p, errno);
        return buf;
    }
    unsigned cls = zp__class_of(p, size);
    void *buf = zp__take_one(p, cls);
    return buf ? zp__finish_get(p, buf, cls, caller) : NULL;
}

zp__slab *zp__accept_put(zp_pool *p, void *buf, const char *op)
{
    zp__slab *s = zp__slab_lookup(buf);
    int why = zp__classify(p, s, buf);
    if (why != ZP__PTR_OK) {
        zp__report_bad_pointer(p, s, buf, why, op);
        return NULL;
    }
    if (s->cls == ZP__CLASS_OVERSIZE) {
        zp__oversize_put(p, buf, true);
        return NULL;
    }
    if (p->debug >= 1 && !zp__debug_on_put(p, s, buf, op))
        return NULL;
    if (p->flags & ZP_WIPE_ON_PUT)
        explicit_bzero(buf, zp__class_size(p, s->cls));
    if (p->debug >= 2)
        zp__debug_poison(p, buf, s->cls);
    return s;
}

ZP_NOINLINE void zp__put_slow(zp_pool *p, void *buf)
{
    if (buf == NULL)
        return;
    zp__slab *s = zp__accept_put(p, buf, "zp_put");
    if (s == NULL)
        return;
    unsigned cls = s->cls;
    if (zp__put_to_waiters(p, cls, &buf, 1))
        return;
    zp__tcache *tc = p->cache_depth ? zp__tcache_get(p) : NULL;
    if (tc != NULL) {
        zp__bin *b = &tc->bins[cls];
        if (b->count == b->cap) {
            zp__tcache_flush(p, cls, b);
            zp__idle_check(p);
        }
        b->items[b->count++] = buf;
        zp__counter_inc(&b->puts);
    } else {
        zp__depot_give(p, cls, &buf, 1, true);
        zp__idle_check(p);
    }
}

size_t zp_capacity(const zp_pool *p, const void *buf)
{
    if (p == NULL || buf == NULL)
        return 0;
    const zp__slab *s = zp__slab_lookup(buf);
    if (zp__classify(p, s, buf) != ZP__PTR_OK)
        return 0;
    return s->cls == ZP__CLASS_OVERSIZE ? s->size : (size_t)s->mask + 1;
}
