/*
 * lifecycle.c — creating and destroying pools.
 */
#include "api/api.h"
#include "core/depot.h"
#include "core/fork.h"
#include "core/registry.h"
#include "core/slab.h"
#include "debug/debug.h"
#include "os/os.h"
#include "policy/trim.h"
#include "stats/stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- lifecycle */

static _Atomic uint64_t pool_ids;

int zp_pool_create(const zp_config *in, zp_pool **out)
{
    if (out == NULL)
        return zp__error(-EINVAL, "zp_pool_create: out is NULL");
    *out = NULL;
    zp_config cfg;
    int rc = zp__config_load(in, &cfg);
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
    p->page_size = zp__os_page_size();
    p->provider = cfg.provider.map ? cfg.provider : zp__default_provider;
    p->id = atomic_fetch_add_explicit(&pool_ids, 1, memory_order_relaxed) + 1;
    p->slot = ZP__NO_SLOT;
    if (cfg.name)
        snprintf(p->name, sizeof p->name, "%s", cfg.name);
    else
        snprintf(p->name, sizeof p->name, "pool%llu", (unsigned long long)p->id);

    p->gate.word = &p->hot_classes;
    p->gate.open = p->hot_default;
    if (cfg.debug >= 1 && cfg.max_class < ZP__MAX_REQUEST &&
        (p->released = calloc(ZP__RELEASED_MAX, sizeof(uintptr_t))) == NULL) {
        free(p);
        return zp__error(-ENOMEM, "zp_pool_create: out of memory for the debug records");
    }
    if ((rc = -pthread_mutex_init(&p->lock, NULL)) != 0) {
        free(p->released);
        free(p);
        return zp__error(rc, "zp_pool_create: cannot initialise the pool lock");
    }
    if ((rc = -pthread_mutex_init(&p->stats_lock, NULL)) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p->released);
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
    if (rc == 0) {
        zp__fork_handlers_install();
        rc = zp__registry_add(p, cfg.cache_depth > 0);
    }
    if (rc == 0 && p->budget) {
        zp__budget_attach(p->budget, &p->gate);
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
        free(p->released);
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

static void report_outstanding(zp_pool *p, const zp__detached *d)
{
    if (d->handles)
        fprintf(stderr,
                "zeropool: pool %s (%p) destroyed with %llu cache handle%s still alive "
                "(their %llu cached buffers are reclaimed; the handles are now invalid: "
                "zp_cache_destroy them before the pool)\n",
                p->name, (const void *)p, (unsigned long long)d->handles,
                d->handles == 1 ? "" : "s", (unsigned long long)d->handle_buffers);
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
    /* Detach every cache (threads' and handles'): their buffers are
     * reclaimed below with the slabs that hold them. */
    zp__decay_stop(p);
    zp__detached detached;
    zp__registry_remove(p, &detached);
    report_outstanding(p, &detached);
    zp__debug_leak_report(p);
    zp__slabs_destroy_all(p);
    if (p->budget)
        zp__budget_detach(p->budget, &p->gate);
    for (unsigned c = 0; c < p->nclasses; c++)
        zp__depot_fini(&p->depot[c]);
    pthread_mutex_destroy(&p->stats_lock);
    pthread_mutex_destroy(&p->lock);
    free(p->released);
    free(p);
}

const char *zp_pool_name(const zp_pool *p)
{
    return p ? p->name : NULL;
}
