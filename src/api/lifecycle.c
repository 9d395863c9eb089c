/*
 * lifecycle.c — creating and destroying pools.
 */
#include "api/api.h"
#include "core/depot.h"
#include "core/fork.h"
#include "core/object.h"
#include "core/registry.h"
#include "core/slab.h"
#include "debug/debug.h"
#include "os/os.h"
#include "policy/trim.h"
#include "stats/stats.h"

#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- lifecycle */

static _Atomic uint64_t pool_ids;

/* Buffers a cache keeps per class: cache_depth, capped by cache_bytes. */
static uint32_t cache_cap(const zp_config *cfg, size_t stride)
{
    uint32_t cap = cfg->cache_depth;
    if (cfg->cache_bytes && cap > 0) {
        size_t by_bytes = cfg->cache_bytes / stride;
        if (by_bytes < 1)
            by_bytes = 1;
        if (by_bytes < cap)
            cap = (uint32_t)by_bytes;
    }
    return cap;
}

/* A slab for objects of stride bytes: at least 256 KiB and one object, in
 * whole grains, lengthened (up to 4x) until at most 1/16 of it is left
 * over after the last object. */
static size_t object_slab_len(size_t stride)
{
    size_t min = stride > ZP__SLAB_MIN_BYTES ? stride : ZP__SLAB_MIN_BYTES;
    min = (min + ZP__GRAIN - 1) & ~(ZP__GRAIN - 1);
    size_t best = min;
    for (size_t len = min; len <= 4 * min; len += ZP__GRAIN) {
        if ((len % stride) * 16 <= len)
            return len;
        if ((len % stride) * best < (best % stride) * len)
            best = len; /* smaller share left over */
    }
    return best;
}

/* The part of creation both kinds share: cfg is validated; obj NULL for a
 * buffer pool (classes min_class .. max_class), else one class of stride
 * bytes for objects of obj->size. */
static int pool_new(const char *fn, const zp_config *cfg, const zp__objtype *obj,
                    size_t stride, zp_pool **out)
{
    zp_pool *p = aligned_alloc(ZP_CACHELINE, (sizeof(*p) + ZP_CACHELINE - 1) &
                                                 ~(size_t)(ZP_CACHELINE - 1));
    if (p == NULL)
        return zp__error(-ENOMEM, "%s: out of memory for the pool", fn);
    memset(p, 0, sizeof(*p));
    bool checked = (cfg->flags & (ZP_ZERO_ON_GET | ZP_WIPE_ON_PUT)) || cfg->debug;
    if (obj == NULL) {
        p->min_shift = (uint32_t)__builtin_ctzll(cfg->min_class);
        p->nclasses = (uint32_t)__builtin_ctzll(cfg->max_class) - p->min_shift + 1;
        p->max_class = cfg->max_class;
        p->put_mask_open = checked ? 0 : UINTPTR_MAX;
    } else {
        /* one class: every size 1 .. obj->size maps to class 0 */
        unsigned bits = obj->size > 1 ? 64u - (unsigned)__builtin_clzll(obj->size - 1) : 0;
        p->min_shift = bits > ZP__MIN_CLASS_SHIFT ? bits : ZP__MIN_CLASS_SHIFT;
        p->nclasses = 1;
        p->max_class = obj->size;
        p->obj = *obj;
        /* the bare put's interior check is a mask: a power-of-two stride */
        bool mask_ok = (stride & (stride - 1)) == 0;
        p->put_mask_open = checked || obj->reset || !mask_ok ? 0 : UINTPTR_MAX;
    }
    p->min_mask = ((size_t)1 << p->min_shift) - 1;
    p->class_bias = p->min_shift - 1;
    p->flags = cfg->flags;
    p->debug = cfg->debug;
    p->cache_depth = cfg->cache_depth;
    p->hot_get = checked ? 0 : p->max_class;
    atomic_init(&p->put_mask, p->put_mask_open);
    p->max_cached = cfg->max_cached_bytes;
    p->decay_ms = cfg->decay_ms;
    p->page_size = zp__os_page_size();
    p->huge_size = (cfg->flags & ZP_HUGE_PAGES) ? zp__os_huge_page_size() : 0;
    p->provider = cfg->provider.map ? cfg->provider
                  : p->huge_size  ? zp__huge_provider
                                  : zp__default_provider;
    p->id = atomic_fetch_add_explicit(&pool_ids, 1, memory_order_relaxed) + 1;
    p->slot = ZP__NO_SLOT;
    if (cfg->name)
        snprintf(p->name, sizeof p->name, "%s", cfg->name);
    else
        snprintf(p->name, sizeof p->name, "pool%llu", (unsigned long long)p->id);
    p->gate.word = &p->put_mask;
    p->gate.open = p->put_mask_open;
    /* NUMA: per-node depots only where they can matter */
    const zp__os_topology *topo = zp__os_topology_get();
    p->numa = cfg->numa;
    p->bind_node = cfg->numa == ZP_NUMA_BIND ? cfg->numa_node : -1;
    p->nnodes = cfg->numa == ZP_NUMA_LOCAL && topo->nnodes > 1 ? (uint32_t)topo->nnodes : 1;
    for (unsigned n = 0; n < p->nnodes; n++)
        p->node_ids[n] = topo->ids[n];
    if (cfg->numa == ZP_NUMA_BIND)
        p->node_ids[0] = cfg->numa_node;
    size_t ndepots = (size_t)p->nnodes * p->nclasses;
    p->depot = aligned_alloc(ZP_CACHELINE, ndepots * sizeof(zp__depot));
    p->node_baseline = calloc(p->nnodes, sizeof(zp_stats));
    if (p->depot == NULL || p->node_baseline == NULL) {
        free(p->depot);
        free(p->node_baseline);
        free(p);
        return zp__error(-ENOMEM, "%s: out of memory for the depots", fn);
    }
    if (cfg->debug >= 1 && (p->released = calloc(ZP__RELEASED_MAX, sizeof(uintptr_t))) == NULL) {
        free(p->depot);
        free(p->node_baseline);
        free(p);
        return zp__error(-ENOMEM, "%s: out of memory for the debug records", fn);
    }
    int rc;
    if ((rc = -pthread_mutex_init(&p->lock, NULL)) != 0) {
        free(p->released);
        free(p->depot);
        free(p->node_baseline);
        free(p);
        return zp__error(rc, "%s: cannot initialise the pool lock", fn);
    }
    if ((rc = -pthread_mutex_init(&p->stats_lock, NULL)) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p->released);
        free(p->depot);
        free(p->node_baseline);
        free(p);
        return zp__error(rc, "%s: cannot initialise the stats lock", fn);
    }
    unsigned c;
    for (c = 0; c < ndepots; c++) {
        unsigned cls = c % p->nclasses;
        size_t csize = obj ? stride : (size_t)1 << (p->min_shift + cls);
        size_t slab_len = obj ? object_slab_len(stride)
                              : csize > ZP__SLAB_MIN_BYTES ? csize : ZP__SLAB_MIN_BYTES;
        slab_len = zp__slab_len_huge(p, slab_len); /* ZP_HUGE_PAGES: whole huge pages */
        /* a bin holds up to ZP__CACHE_START buffers, and grows towards
         * cap while bursts do not fit (core/cache.c); exchanges with the
         * depot move half the starting size */
        uint32_t cap = cache_cap(cfg, csize);
        uint32_t start = cap < ZP__CACHE_START ? cap : ZP__CACHE_START;
        uint32_t batch = start / 2 ? start / 2 : 1;
        if ((rc = zp__depot_init(&p->depot[c], csize, slab_len, batch, start, cap)) != 0)
            break;
        /* Two threads writing the pages of buffers less than ~128 KiB
         * apart slow each other down, up to 2x per page write (measured
         * outside the project: shared/notes/two-thread-touch.md; the cause
         * is below the allocator). With a first refill of one buffer, two
         * threads starting on a class of 64 KiB hold neighbours of one slab
         * (their addresses, printed: 64 KiB apart); a first refill spanning
         * 128 KiB keeps them 128 KiB apart. Smaller classes keep 1: their
         * buffers are one page or a few, and a short-lived thread should
         * not take a magazine of them. */
        uint32_t first = 1;
        if (csize >= ((size_t)32 << 10) && csize < ((size_t)128 << 10))
            first = (uint32_t)(((size_t)128 << 10) / csize);
        p->depot[c].first_refill = first < batch ? first : batch;
    }
    bool own_budget = false, decay = false;
    if (rc == 0 && cfg->max_bytes) {
        rc = zp_budget_create(cfg->max_bytes, &p->budget);
        own_budget = rc == 0;
    } else if (rc == 0 && cfg->budget) {
        p->budget = cfg->budget;
    }
    if (rc == 0)
        decay = (rc = zp__decay_start(p)) == 0;
    if (rc == 0) {
        zp__fork_handlers_install();
        rc = zp__registry_add(p, cfg->cache_depth > 0);
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
        free(p->depot);
        free(p->node_baseline);
        free(p);
        return rc < 0 ? rc : -ENOMEM;
    }
    *out = p;
    return 0;
}

int zp_pool_create(const zp_config *in, zp_pool **out)
{
    if (out == NULL)
        return zp__error(-EINVAL, "zp_pool_create: out is NULL");
    *out = NULL;
    zp_config cfg;
    int rc = zp__config_load("zp_pool_create", in, &cfg, false);
    return rc ? rc : pool_new("zp_pool_create", &cfg, NULL, 0, out);
}

/* Where a zp_obj_type of each layout this library knows ends. */
#define TYPE_END(f) (offsetof(zp_obj_type, f) + sizeof(((zp_obj_type *)0)->f))

int zp_objpool_create(const zp_config *in, const zp_obj_type *type, zp_pool **out)
{
    static const char fn[] = "zp_objpool_create";
    if (out == NULL)
        return zp__error(-EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (type == NULL)
        return zp__error(-EINVAL, "%s: type is NULL", fn);
    if (type->struct_size != TYPE_END(arg) && type->struct_size != sizeof(zp_obj_type))
        return zp__error(-EINVAL,
                         "%s: type struct_size %zu is not sizeof(zp_obj_type) (%zu)", fn,
                         type->struct_size, sizeof(zp_obj_type));
    size_t align = type->align ? type->align : alignof(max_align_t);
    if ((align & (align - 1)) != 0 || align > zp__os_page_size())
        return zp__error(-EINVAL, "%s: align %zu is not a power of two up to the page size "
                                  "(%zu)", fn, type->align, zp__os_page_size());
    if (type->size == 0 || type->size > ((size_t)1 << ZP__MAX_CLASS_SHIFT))
        return zp__error(-EINVAL, "%s: object size %zu is outside 1 .. %zu", fn, type->size,
                         (size_t)1 << ZP__MAX_CLASS_SHIFT);
    zp_config cfg;
    int rc = zp__config_load(fn, in, &cfg, true);
    if (rc)
        return rc;
    zp__objtype obj = {type->size, type->init, type->reset, type->fini, type->arg,
                       type->init != NULL || type->fini != NULL};
    if ((obj.init || obj.reset || obj.fini) && (cfg.flags & (ZP_ZERO_ON_GET | ZP_WIPE_ON_PUT)))
        return zp__error(-EINVAL, "%s: ZP_ZERO_ON_GET and ZP_WIPE_ON_PUT would destroy the "
                                  "state init, reset and fini keep; use them without", fn);
    size_t stride = (type->size + align - 1) & ~(align - 1);
    return pool_new(fn, &cfg, &obj, stride, out);
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
            if (p->obj.size)
                snprintf(what, sizeof what, "objects of %zu bytes", p->obj.size);
            else
                snprintf(what, sizeof what, "class %zu", zp__class_size(p, c));
            report_line(p, total == 0, what, n, b);
            total += n;
            bytes += b;
        }
    }
    uint64_t over_live = 0, over_bytes = 0;
    for (unsigned n = 0; n < p->nnodes; n++) {
        over_live += p->over[n].live;
        over_bytes += p->over[n].bytes;
    }
    if (over_live) {
        report_line(p, total == 0, "oversize", over_live, over_bytes);
        total += over_live;
        bytes += over_bytes;
    }
    if (total)
        fprintf(stderr, "zeropool:   total: %llu buffers, %llu bytes (now invalid)\n",
                (unsigned long long)total, (unsigned long long)bytes);
}

static void fini_one(void *obj, void *arg)
{
    zp__object_fini(arg, obj);
}

void zp_pool_destroy(zp_pool *p)
{
    if (p == NULL)
        return;
    /* Every cache (threads' and handles') is drained into the depots and
     * detached; what is idle there is finalised (object pools), what is
     * outstanding is reported; then every slab is unmapped. */
    zp__decay_stop(p);
    zp__detached detached;
    zp__registry_remove(p, &detached);
    /* an exiting thread may still be trimming for budget waiters */
    while (atomic_load_explicit(&p->pins, memory_order_acquire) != 0)
        zp__os_yield();
    report_outstanding(p, &detached);
    zp__debug_leak_report(p);
    if (p->obj.fini)
        for (unsigned c = 0; c < p->nnodes * p->nclasses; c++)
            zp__depot_each_idle(&p->depot[c], fini_one, p);
    zp__slabs_destroy_all(p);
    if (p->budget)
        zp__budget_detach(p->budget, &p->gate);
    for (unsigned c = 0; c < p->nnodes * p->nclasses; c++)
        zp__depot_fini(&p->depot[c]);
    pthread_mutex_destroy(&p->stats_lock);
    pthread_mutex_destroy(&p->lock);
    free(p->released);
    free(p->depot);
    free(p->node_baseline);
    free(p);
}

const char *zp_pool_name(const zp_pool *p)
{
    return p ? p->name : NULL;
}
