/*
 * batch.c — zp_get_batch / zp_put_batch: many buffers for the price of one
 * depot exchange.
 *
 * A batch that fits the calling thread's cache is served from it, refilled
 * with one depot lock acquisition (more only when fresh slabs must be
 * carved); a larger batch bypasses the cache and moves straight between the
 * caller's array and the depot. Gets are all or nothing: on failure every
 * buffer taken so far goes back and no counter moves.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <string.h>

#define RUN_MAX 64u

static int batch_oversize(zp_pool *p, size_t size, void **bufs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bufs[i] = zp__oversize_get(p, size, false);
        if (bufs[i] == NULL) {
            int err = errno;
            for (size_t j = 0; j < i; j++)
                zp__oversize_put(p, bufs[j], false);
            return zp__error(-err, "zp_get_batch: %zu of %zu oversize buffers of %zu bytes "
                                   "mapped before the provider failed; none taken",
                             i, n, size);
        }
    }
    zp__oversize_count_gets(p, n);
    return 0;
}

/* Takes n buffers straight from the depot into bufs, all or nothing. */
static int batch_direct(zp_pool *p, unsigned cls, void **bufs, size_t n,
                        zp__counts *k)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < (1u << 20) ? n - got : (1u << 20);
        bool carved;
        uint32_t t = zp__depot_take(p, cls, bufs + got, (uint32_t)want, 0, &carved);
        if (t == 0) {
            int err = errno;
            /* back in chunks: give() takes a uint32_t count */
            for (size_t i = 0; i < got; i += 1u << 20)
                zp__depot_give(p, cls, bufs + i,
                               (uint32_t)(got - i < (1u << 20) ? got - i : (1u << 20)), false);
            return -(err == ENOBUFS ? ENOBUFS : ENOMEM);
        }
        *(carved ? &k->allocations : &k->depot_hits) += t;
        got += t;
    }
    return 0;
}

static int get_batch_once(zp_pool *p, size_t size, void **bufs, size_t n,
                          const void *caller);

int zp_get_batch(zp_pool *p, size_t size, void **bufs, size_t n)
{
    const void *caller = __builtin_return_address(0);
    int rc = get_batch_once(p, size, bufs, n, caller);
    if (rc == -ENOBUFS && p != NULL && n > 0) {
        /* as zp_get does: give back this pool's idle memory, retry once */
        zp__reclaim_for_budget(p, p->cache_depth ? zp__tcache_get(p) : NULL);
        rc = get_batch_once(p, size, bufs, n, caller);
    }
    if (rc == -ENOBUFS)
        zp__budget_count_failure(p, ENOBUFS);
    return rc;
}

static int get_batch_once(zp_pool *p, size_t size, void **bufs, size_t n,
                          const void *caller)
{
    if (p == NULL || (bufs == NULL && n > 0))
        return zp__error(-EINVAL, "zp_get_batch: %s is NULL", p ? "bufs" : "pool");
    if (n == 0)
        return 0;
    if (size == 0)
        size = 1;
    if (size > p->max_class)
        return batch_oversize(p, size, bufs, n);
    unsigned cls = zp__class_of(p, size);
    zp__tcache *tc = p->cache_depth ? zp__tcache_get(p) : NULL;
    zp__bin *b = tc ? &tc->bins[cls] : NULL;
    zp__counts k = {0, 0, 0, 0};

    if (b != NULL && n <= b->cap) {
        uint32_t cached = b->count;
        uint32_t need = (uint32_t)n;
        k.hits = cached < need ? cached : need;
        while (b->count < need) {
            uint32_t want = need - b->count;
            uint32_t batch = p->depot[cls].batch;
            if (want < batch)
                want = batch;
            if (want > b->cap - b->count)
                want = b->cap - b->count;
            bool carved;
            uint32_t t = zp__depot_take(p, cls, b->items + b->count, want, 0, &carved);
            if (t == 0)
                return -(errno == ENOBUFS ? ENOBUFS : ENOMEM); /* refilled ones stay cached */
            uint32_t served = need - b->count < t ? need - b->count : t;
            *(carved ? &k.allocations : &k.depot_hits) += served;
            b->count += t;
        }
        for (size_t i = 0; i < n; i++)
            bufs[i] = b->items[--b->count];
    } else {
        int rc = batch_direct(p, cls, bufs, n, &k);
        if (rc)
            return rc;
    }

    if (b != NULL) {
        zp__counter_add(&b->hits, k.hits);
        zp__counter_add(&tc->misses[cls].depot_hits, k.depot_hits);
        zp__counter_add(&tc->misses[cls].allocations, k.allocations);
    } else {
        zp__depot *d = &p->depot[cls];
        pthread_mutex_lock(&d->lock);
        d->direct.depot_hits += k.depot_hits;
        d->direct.allocations += k.allocations;
        pthread_mutex_unlock(&d->lock);
    }
    if (p->hot_classes == 0)
        for (size_t i = 0; i < n; i++)
            zp__finish_get(p, bufs[i], cls, caller);
    return 0;
}

/* Returns a run of same-class, already accepted buffers. */
static void put_run(zp_pool *p, zp__tcache *tc, unsigned cls, void **run, uint32_t k)
{
    if (tc == NULL) {
        if (!zp__put_to_waiters(p, cls, run, k))
            zp__depot_give(p, cls, run, k, true);
        return;
    }
    if (zp__put_to_waiters(p, cls, run, k))
        return;
    zp__bin *b = &tc->bins[cls];
    if (k > b->cap) {
        zp__depot_give(p, cls, run, k, false);
    } else {
        if (b->count + k > b->cap) {
            /* make room with one exchange: the oldest buffers, rounded up
             * to whole magazines */
            uint32_t batch = p->depot[cls].batch;
            uint32_t excess = b->count + k - b->cap;
            excess = (excess + batch - 1) / batch * batch;
            if (excess > b->count)
                excess = b->count;
            zp__depot_give(p, cls, b->items, excess, false);
            b->count -= excess;
            memmove(b->items, b->items + excess, b->count * sizeof(void *));
        }
        memcpy(b->items + b->count, run, k * sizeof(void *));
        b->count += k;
    }
    zp__counter_add(&b->puts, k);
}

void zp_put_batch(zp_pool *p, void *const *bufs, size_t n)
{
    if (p == NULL || bufs == NULL)
        return;
    zp__tcache *tc = p->cache_depth ? zp__tcache_get(p) : NULL;
    void *run[RUN_MAX];
    uint32_t run_n = 0;
    unsigned run_cls = 0;
    for (size_t i = 0; i < n; i++) {
        void *buf = bufs[i];
        zp__slab *s = zp__hot_slab(p, buf);
        if (s == NULL) {
            if (buf == NULL)
                continue;
            s = zp__accept_put(p, buf, "zp_put_batch");
            if (s == NULL)
                continue; /* misuse reported, or an oversize buffer released */
        }
        if (run_n > 0 && (s->cls != run_cls || run_n == RUN_MAX)) {
            put_run(p, tc, run_cls, run, run_n);
            run_n = 0;
        }
        run_cls = s->cls;
        run[run_n++] = buf;
    }
    if (run_n > 0)
        put_run(p, tc, run_cls, run, run_n);
}
