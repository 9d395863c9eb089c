/*
 * depot.c — the shared layer between thread caches and slabs.
 *
 * One depot per class holds idle buffers in magazines (arrays of `batch`
 * pointers). Thread caches exchange batches with it under one lock
 * acquisition: a flush copies in one magazine, a refill copies out up to one
 * (a thread starts with refills of 1 and doubles them per miss up to a
 * magazine, so short-lived threads do not hoard). When the depot is empty,
 * fresh buffers are carved from the class's current slab (mapping a new one
 * when it is used up).
 *
 * Magazines are allocated when buffers are carved, enough to hold every
 * buffer ever carved, so giving buffers back never allocates and never fails.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static zp__mag *mag_new(uint32_t batch)
{
    zp__mag *m = malloc(sizeof(zp__mag) + (size_t)batch * sizeof(void *));
    if (m) {
        m->next = NULL;
        m->count = 0;
    }
    return m;
}

static void mag_list_free(zp__mag *m)
{
    while (m) {
        zp__mag *next = m->next;
        free(m);
        m = next;
    }
}

int zp__depot_init(zp__depot *d, uint32_t batch, uint32_t cache_cap)
{
    memset(d, 0, sizeof(*d));
    d->batch = batch;
    d->cache_cap = cache_cap;
    return -pthread_mutex_init(&d->lock, NULL);
}

void zp__depot_fini(zp__depot *d)
{
    mag_list_free(d->full);
    free(d->partial);
    mag_list_free(d->empty);
    pthread_mutex_destroy(&d->lock);
}

/* Takes the lock; a conflict (lock already held) is counted. */
void zp__depot_lock(zp__depot *d)
{
    if (pthread_mutex_trylock(&d->lock) != 0) {
        pthread_mutex_lock(&d->lock);
        d->contention++;
    }
}

/* Carves up to `want` fresh buffers; lock held. Magazines for them are
 * allocated first so the depot invariant holds whatever happens. */
static uint32_t carve(zp_pool *p, unsigned cls, zp__depot *d, void **out,
                      uint32_t want)
{
    size_t csize = zp__class_size(p, cls);
    uint64_t need = (d->carved + want + d->batch - 1) / d->batch;
    while (d->nmags < need) {
        zp__mag *m = mag_new(d->batch);
        if (m == NULL) {
            errno = ENOMEM;
            return 0;
        }
        m->next = d->empty;
        d->empty = m;
        d->nmags++;
    }
    uint32_t n = 0;
    errno = 0;
    while (n < want) {
        zp__slab *s = d->carving;
        uintptr_t end = s ? atomic_load_explicit(&s->carve_end, memory_order_relaxed) : 0;
        if (s == NULL || end == s->base + (uintptr_t)s->nbufs * csize) {
            /* map at most one new slab per refill: a refill of big
             * buffers must not reserve a whole batch of them */
            if (n > 0)
                break;
            size_t size = zp__slab_bytes(p, cls);
            s = zp__slab_create(p, cls, size);
            if (s == NULL)
                break;
            zp__slab_list_push(&d->slabs, s);
            d->carving = s;
            d->slab_bytes += size;
            end = s->base;
        }
        uint32_t left = (uint32_t)((s->base + (uintptr_t)s->nbufs * csize - end) / csize);
        uint32_t take = want - n < left ? want - n : left;
        /* highest address first into out[], so the cache (LIFO) hands out
         * the lowest address first */
        for (uint32_t i = 0; i < take; i++)
            out[n + i] = (void *)(end + (uintptr_t)(take - 1 - i) * csize);
        zp__debug_on_carve(p, out + n, take, cls);
        n += take;
        d->carved += take;
        /* relaxed: a thread that later puts one of these buffers got it
         * through synchronisation that follows this store */
        atomic_store_explicit(&s->carve_end, end + (uintptr_t)take * csize,
                              memory_order_relaxed);
    }
    return n;
}

uint32_t zp__depot_take(zp_pool *p, unsigned cls, void **out, uint32_t want,
                        uint32_t count_gets, bool *carved)
{
    zp__depot *d = &p->depot[cls];
    uint32_t n = 0;
    zp__depot_lock(d);
    while (n < want && (d->partial || d->full)) {
        if (d->partial == NULL) {
            d->partial = d->full;
            d->full = d->full->next;
            d->partial->next = NULL;
        }
        zp__mag *m = d->partial;
        uint32_t take = want - n < m->count ? want - n : m->count;
        m->count -= take;
        memcpy(out + n, m->items + m->count, take * sizeof(void *));
        n += take;
        if (m->count == 0) {
            d->partial = NULL;
            m->next = d->empty;
            d->empty = m;
        }
    }
    d->nfree -= n;
    uint64_t unpurged_taken = n;
    if (d->npurged > d->nfree) {
        /* the purged bottom was reached: those buffers fault in afresh */
        unpurged_taken -= d->npurged - d->nfree;
        d->npurged = d->nfree;
    }
    if (unpurged_taken)
        atomic_fetch_sub_explicit(&p->idle_resident, unpurged_taken * zp__class_size(p, cls),
                                  memory_order_relaxed);
    if (d->nfree - d->npurged < d->low_water)
        d->low_water = d->nfree - d->npurged;
    *carved = false;
    if (n == 0) {
        n = carve(p, cls, d, out, want);
        *carved = true;
    }
    if (count_gets > n)
        count_gets = n;
    if (*carved)
        d->direct.allocations += count_gets;
    else
        d->direct.depot_hits += count_gets;
    pthread_mutex_unlock(&d->lock);
    if (n == 0) {
        int err = errno == ENOBUFS ? ENOBUFS : ENOMEM;
        if (err == ENOBUFS)
            zp__error(-ENOBUFS, "zp_get: the budget has no room for a %zu-byte slab of class %zu",
                      zp__slab_bytes(p, cls), zp__class_size(p, cls));
        else
            zp__error(-ENOMEM, "zp_get: no memory for a slab of class %zu (provider or metadata)",
                      zp__class_size(p, cls));
        errno = err;
    }
    return n;
}

void zp__depot_give(zp_pool *p, unsigned cls, void *const *items, uint32_t n,
                    bool count_as_puts)
{
    zp__depot *d = &p->depot[cls];
    uint64_t added = 0;
    zp__depot_lock(d);
    if (count_as_puts)
        d->direct.puts += n;
    for (uint32_t i = 0; i < n;) {
        if (d->partial == NULL) {
            zp__mag *m = d->empty;
            if (m == NULL) {
                /* Only reachable after an undetected double put (debug 0)
                 * brought back more buffers than were carved. */
                m = mag_new(d->batch);
                if (m == NULL)
                    break; /* dropping beats corrupting */
                d->nmags++;
            } else {
                d->empty = m->next;
            }
            d->partial = m;
        }
        zp__mag *m = d->partial;
        uint32_t room = d->batch - m->count;
        uint32_t put = n - i < room ? n - i : room;
        memcpy(m->items + m->count, items + i, put * sizeof(void *));
        m->count += put;
        i += put;
        d->nfree += put;
        added += put;
        if (m->count == d->batch) {
            d->partial = NULL;
            m->next = d->full;
            d->full = m;
        }
    }
    pthread_mutex_unlock(&d->lock);
    atomic_fetch_add_explicit(&p->idle_resident, added * zp__class_size(p, cls),
                              memory_order_relaxed);
}
