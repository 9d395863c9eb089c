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
 * With per-node depots (ZP_NUMA_LOCAL on a machine with several nodes)
 * there is one depot per node and class, all run by this code: a take
 * names its node (the cache's), and a give sends every buffer to the depot
 * of its slab's node, whoever gives it, so a buffer always goes home.
 *
 * Magazines are allocated when buffers are carved, enough to hold every
 * buffer ever carved, so giving buffers back never allocates and never fails.
 * Every give wakes the budget's head waiter (zp__budget_wake): whatever path
 * returned the buffers (a put, a flush, a thread's exit, a handle's
 * destroy), a waiter for them hears of it here.
 */
#include "core/depot.h"
#include "core/slab.h"
#include "debug/debug.h"
#include "os/os.h"

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

int zp__depot_init(zp__depot *d, size_t stride, size_t slab_len, uint32_t batch,
                   uint32_t cache_start, uint32_t cache_cap)
{
    memset(d, 0, sizeof(*d));
    d->stride = stride;
    d->slab_len = slab_len;
    d->batch = batch;
    d->cache_cap = cache_cap;
    d->cache_start = cache_start;
    return zp__os_mutex_init_short(&d->lock);
}

void zp__depot_fini(zp__depot *d)
{
    mag_list_free(d->full);
    free(d->partial);
    mag_list_free(d->empty);
    pthread_mutex_destroy(&d->lock);
}

/* Takes the lock; a conflict (lock already held) is counted. */
bool zp__depot_lock(zp__depot *d)
{
    if (pthread_mutex_trylock(&d->lock) != 0) {
        pthread_mutex_lock(&d->lock);
        d->contention++;
        return true;
    }
    return false;
}

/* Carves up to `want` fresh buffers into out (*n of them); lock held.
 * Magazines for them are allocated first so the depot invariant holds
 * whatever happens. 0 if at least one was carved, else -ENOMEM/ZP__EBUDGET. */
static int carve(zp_pool *p, unsigned cls, unsigned node, zp__depot *d, void **out,
                 uint32_t want, const zp__waiter *w, uint32_t *got)
{
    size_t csize = zp__class_size(p, cls);
    uint64_t need = (d->carved + want + d->batch - 1) / d->batch;
    while (d->nmags < need) {
        zp__mag *m = mag_new(d->batch);
        if (m == NULL)
            return -ENOMEM;
        m->next = d->empty;
        d->empty = m;
        d->nmags++;
    }
    uint32_t n = 0;
    int rc = 0;
    while (n < want) {
        zp__slab *s = d->carving;
        uintptr_t end = s ? atomic_load_explicit(&s->carve_end, memory_order_relaxed) : 0;
        if (s == NULL || end == s->base + (uintptr_t)s->nbufs * csize) {
            /* map at most one new slab per refill: a refill of big
             * buffers must not reserve a whole batch of them */
            if (n > 0)
                break;
            size_t size = zp__slab_bytes(p, cls);
            if ((rc = zp__slab_create(p, cls, node, size, w, &s)) != 0)
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
    *got = n;
    return n > 0 ? 0 : rc;
}

int zp__depot_take(zp_pool *p, unsigned cls, unsigned node, void **out, uint32_t want,
                   uint32_t count_direct, const zp__waiter *w, uint32_t *taken, bool *carved,
                   bool *contended)
{
    zp__depot *d = zp__depot_of(p, node, cls);
    uint32_t n = 0;
    int rc = 0;
    *contended = zp__depot_lock(d);
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
    *carved = n == 0;
    if (n == 0)
        rc = carve(p, cls, node, d, out, want, w, &n);
    if (count_direct > n)
        count_direct = n;
    if (*carved)
        d->direct.allocations += count_direct;
    else
        d->direct.depot_hits += count_direct;
    pthread_mutex_unlock(&d->lock);
    *taken = n;
    if (rc == ZP__ELOCK)
        return -ENOMEM; /* the detail naming RLIMIT_MEMLOCK is recorded */
    if (rc == ZP__EBUDGET)
        return zp__error(rc, "zp_get: the budget has no room for a %zu-byte slab of class %zu",
                         zp__slab_bytes(p, cls), zp__class_size(p, cls));
    if (rc)
        return zp__error(-ENOMEM,
                         "zp_get: no memory for a slab of class %zu (provider or metadata)",
                         zp__class_size(p, cls));
    return 0;
}

/* Gives n buffers of d (class cls) back; puts of them counted: as puts made
 * without a cache, and as remote puts too. Returns whether another thread
 * held the lock. */
static bool give_to(zp_pool *p, zp__depot *d, unsigned cls, void *const *items, uint32_t n,
                    bool count_direct, bool remote)
{
    uint64_t added = 0;
    bool contended = zp__depot_lock(d);
    if (count_direct)
        d->direct.puts += n;
    if (remote)
        d->remote_puts += n;
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
    if (p->budget)
        zp__budget_wake(p->budget);
    return contended;
}

/* The node index of buffer buf (a live buffer of p). */
static unsigned node_of(const void *buf)
{
    return zp__slab_lookup(buf)->node;
}

bool zp__depot_give(zp_pool *p, unsigned cls, void *const *items, uint32_t n,
                    bool count_direct)
{
    if (n == 0)
        return false;
    if (p->nnodes == 1)
        return give_to(p, &p->depot[cls], cls, items, n, count_direct, false);
    /* per-node depots: the usual give is all one node's (a bin refilled on
     * one node); mixed ones (a thread that migrated, a direct batch) go in
     * runs of one node, a lock per node per 64 buffers at most */
    unsigned first = node_of(items[0]);
    uint32_t i = 1;
    while (i < n && node_of(items[i]) == first)
        i++;
    if (i == n)
        return give_to(p, zp__depot_of(p, first, cls), cls, items, n, count_direct, false);
    bool contended = false;
    for (unsigned node = 0; node < p->nnodes; node++) {
        void *run[64];
        uint32_t k = 0;
        for (i = 0; i < n; i++) {
            if (node_of(items[i]) != node)
                continue;
            run[k++] = items[i];
            if (k == 64) {
                contended |= give_to(p, zp__depot_of(p, node, cls), cls, run, k, count_direct,
                                     false);
                k = 0;
            }
        }
        if (k)
            contended |= give_to(p, zp__depot_of(p, node, cls), cls, run, k, count_direct,
                                 false);
    }
    return contended;
}

void zp__depot_give_home(zp_pool *p, unsigned node, unsigned cls, void *const *items,
                         uint32_t n)
{
    (void)give_to(p, zp__depot_of(p, node, cls), cls, items, n, true, true);
}

void zp__depot_count_direct(zp_pool *p, unsigned cls, unsigned node, const zp__counts *k)
{
    zp__depot *d = zp__depot_of(p, node, cls);
    pthread_mutex_lock(&d->lock);
    d->direct.hits += k->hits;
    d->direct.depot_hits += k->depot_hits;
    d->direct.allocations += k->allocations;
    d->direct.puts += k->puts;
    pthread_mutex_unlock(&d->lock);
}

/* Depot lock held: copies every idle buffer into items, hottest first;
 * returns the magazines to the empty list. */
void zp__depot_gather(zp__depot *d, void **items)
{
    size_t n = 0;
    zp__mag *m = d->partial;
    d->partial = NULL;
    while (m || d->full) {
        if (m == NULL) {
            m = d->full;
            d->full = m->next;
        }
        for (uint32_t i = m->count; i > 0; i--)
            items[n++] = m->items[i - 1];
        m->count = 0;
        m->next = d->empty;
        d->empty = m;
        m = NULL;
    }
}

/* Depot lock held: refills magazines from items (hottest first), keeping
 * the hottest on top and the depot invariant (only the top one partial),
 * and frees magazines beyond what the carved buffers need. */
void zp__depot_rebuild(zp__depot *d, void **items, size_t n)
{
    size_t rem = n % d->batch, pos = n;
    /* full magazines from the bottom up, so the list head ends on top */
    while (pos > rem) {
        zp__mag *m = d->empty;
        d->empty = m->next;
        pos -= d->batch;
        for (uint32_t i = 0; i < d->batch; i++)
            m->items[i] = items[pos + d->batch - 1 - i];
        m->count = d->batch;
        m->next = d->full;
        d->full = m;
    }
    if (rem) {
        zp__mag *m = d->empty;
        d->empty = m->next;
        for (uint32_t i = 0; i < rem; i++)
            m->items[i] = items[rem - 1 - i];
        m->count = (uint32_t)rem;
        m->next = NULL;
        d->partial = m;
    }
    d->nfree = n;
    uint64_t need = (d->carved + d->batch - 1) / d->batch;
    while (d->nmags > need && d->empty) {
        zp__mag *m = d->empty;
        d->empty = m->next;
        free(m);
        d->nmags--;
    }
}

void zp__depot_each_idle(zp__depot *d, void (*fn)(void *buf, void *arg), void *arg)
{
    for (zp__mag *m = d->full; m; m = m->next)
        for (uint32_t i = 0; i < m->count; i++)
            fn(m->items[i], arg);
    if (d->partial)
        for (uint32_t i = 0; i < d->partial->count; i++)
            fn(d->partial->items[i], arg);
}
