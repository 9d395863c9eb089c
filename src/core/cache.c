/*
 * cache.c — the cache's out-of-line paths (see cache.h): refill and flush
 * for one buffer or many, the checked get and put, drain.
 *
 * Rules, each stated once here:
 *   - refill: a bin is refilled from the depot until it holds what the call
 *     needs, each exchange taking at least `floor` buffers (a single get:
 *     the slow-start refill, from the class's first_refill (1 below 32 KiB)
 *     doubling per miss up to a magazine; a batch: a magazine) and never
 *     more than fit;
 *   - flush: a bin that would overflow gives its oldest buffers to the
 *     depot, rounded up to whole magazines;
 *   - one-way traffic moves a whole bin per exchange: a bin refilled
 *     again with no flush between (a thread that only gets, like the
 *     getting side of a hand-off) doubles its refills past a magazine up
 *     to its capacity, and a bin flushed again with no refill between (the
 *     putting side) gives all it holds (whole magazines). Each depot
 *     exchange costs a few cache lines moved between the threads (lock,
 *     lists, counters) however many buffers it carries. When such an
 *     exchange also found the depot's lock held by another thread (two
 *     threads trading through it, as in a hand-off), the bin doubles its
 *     capacity, up to the class's cache_cap, so the next exchange carries
 *     twice as much (Bonwick and Adams grow magazines on contention the
 *     same way); a drain shrinks it back. Without contention the bins do
 *     not grow for it, so a thread that only puts now and then holds no
 *     more than before;
 *   - what does not fit a cache at all (no cache, zero capacity, a batch
 *     larger than the bin) goes straight between the caller and the depot;
 *   - while budget waiters queue, puts go straight to the depot (which wakes
 *     the head) and wholly idle slabs of the class are unmapped, so a
 *     waiter of any class finds room;
 *   - gets are counted once they succeed: a hit per buffer found in the
 *     bin, a depot hit or an allocation per buffer a refill served;
 *   - object pools: what comes from the depot is constructed (init, no lock
 *     held) before it enters a bin or reaches the caller, so a bin holds
 *     only constructed objects and the hit path never checks; what init
 *     failed on goes back to the depot unconstructed.
 */
#include "core/cache.h"
#include "core/depot.h"
#include "core/object.h"
#include "debug/debug.h"
#include "os/os.h"
#include "policy/trim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RUN_MAX 64u
#define CHUNK_MAX (1u << 20) /* buffers per depot exchange of a direct batch */

/* ---------------------------------------------------------- accounting */

/* Adds a successful get's counts to c (owner-only stores), or to the
 * depot's direct counters when there is no cache. */
static void count_gets(zp_pool *p, zp__cache *c, unsigned cls, const zp__counts *k)
{
    if (c != NULL) {
        zp__counter_add(&c->bins[cls].hits, k->hits);
        zp__counter_add(&c->misses[cls].depot_hits, k->depot_hits);
        zp__counter_add(&c->misses[cls].allocations, k->allocations);
    } else if (k->hits | k->depot_hits | k->allocations) {
        zp__depot_count_direct(p, cls, k);
    }
}

/* Buffers of class cls went back to the depot (which woke the head
 * waiter): while anyone waits, unmap the class's wholly idle slabs too, so
 * a waiter of another class (or pool) on the budget finds bytes. */
static void returned_for_waiters(zp_pool *p, unsigned cls)
{
    if (p->budget != NULL && zp__budget_has_waiters(p->budget))
        zp__trim_class(p, cls, UINT64_MAX, false);
}

/* -------------------------------------------------------------- refill */

/* Takes n buffers straight from the depot into bufs, all or nothing. k
 * NULL: not gets, nothing counted (zp_reserve). */
static int take_direct(zp_pool *p, zp__cache *c, unsigned cls, void **bufs, size_t n,
                       const zp__waiter *w, zp__counts *k)
{
    /* A single get without a cache is counted under the depot lock it takes
     * anyway (unless an init could still fail it); everything else is
     * counted by the caller on success. */
    uint32_t count_now = k != NULL && c == NULL && n == 1 && p->obj.init == NULL;
    size_t got = 0;
    while (got < n) {
        uint32_t want = n - got < CHUNK_MAX ? (uint32_t)(n - got) : CHUNK_MAX, t;
        bool carved, contended;
        int rc = zp__depot_take(p, cls, bufs + got, want, count_now, w, &t, &carved,
                                &contended);
        if (rc) {
            for (size_t i = 0; i < got; i += CHUNK_MAX)
                zp__depot_give(p, cls, bufs + i,
                               (uint32_t)(got - i < CHUNK_MAX ? got - i : CHUNK_MAX), false);
            return rc;
        }
        if (k != NULL && !count_now)
            *(carved ? &k->allocations : &k->depot_hits) += t;
        got += t;
    }
    int rc = zp__object_construct(p, bufs, n);
    if (rc) /* all or nothing: back, constructed or not */
        for (size_t i = 0; i < n; i += CHUNK_MAX)
            zp__depot_give(p, cls, bufs + i,
                           (uint32_t)(n - i < CHUNK_MAX ? n - i : CHUNK_MAX), false);
    return rc;
}

/* Refills c's bin of class cls until it holds at least need (<= cap)
 * buffers, each exchange taking at least floor. On failure the buffers
 * refilled so far stay cached. */
static int fill(zp_pool *p, zp__cache *c, unsigned cls, uint32_t need, uint32_t floor,
                const zp__waiter *w, zp__counts *k)
{
    zp__bin *b = &c->bins[cls];
    while (b->count < need) {
        uint32_t want = need - b->count;
        if (want < floor)
            want = floor;
        if (want > b->cap - b->count)
            want = b->cap - b->count;
        uint32_t t;
        bool carved, contended;
        void **got = b->items + b->count;
        int rc = zp__depot_take(p, cls, got, want, 0, w, &t, &carved, &contended);
        c->misses[cls].contended = contended;
        if (rc == 0 && (rc = zp__object_construct(p, got, t)) != 0) {
            /* keep what is constructed; the rest goes back as it is */
            uint32_t ok = (uint32_t)zp__object_partition(p, got, t);
            zp__depot_give(p, cls, got + ok, t - ok, false);
            b->count += ok;
        }
        if (rc)
            return rc;
        uint32_t served = need - b->count < t ? need - b->count : t;
        *(carved ? &k->allocations : &k->depot_hits) += served;
        b->count += t;
        c->misses[cls].refilled = true;
    }
    return 0;
}

/* One buffer of class cls for c: from the bin, a slow-start refill, or the
 * depot directly when c caches nothing. */
static int take_one(zp_pool *p, zp__cache *c, unsigned cls, const zp__waiter *w, void **out)
{
    zp__counts k = {0, 0, 0, 0};
    int rc = 0;
    if (c == NULL || c->bins[cls].cap == 0) {
        rc = take_direct(p, c, cls, out, 1, w, &k);
    } else {
        zp__bin *b = &c->bins[cls];
        if (b->count != 0) {
            k.hits = 1;
        } else {
            zp__bin_misses *m = &c->misses[cls];
            const zp__depot *d = &p->depot[cls];
            uint32_t batch = d->batch;
            uint32_t want = m->refill ? m->refill : d->first_refill;
            if ((rc = fill(p, c, cls, 1, want, w, &k)) != 0)
                return rc;
            if (want < batch)
                m->refill = want * 2 < batch ? want * 2 : batch;
            else if (!m->flushed) { /* refilled twice with no flush between */
                if (m->contended && b->cap < d->cache_cap) /* and fought for it */
                    b->cap = b->cap * 2 < d->cache_cap ? b->cap * 2 : d->cache_cap;
                m->refill = want * 2 < b->cap ? want * 2 : b->cap;
            }
            m->flushed = false;
        }
        *out = b->items[--b->count];
    }
    if (rc == 0)
        count_gets(p, c, cls, &k);
    return rc;
}

/* The budget is full: gives back this pool's idle memory (c's and the
 * depot's) so a retry can map. */
static void reclaim(zp_pool *p, zp__cache *c)
{
    if (c != NULL)
        zp__cache_drain(p, c);
    zp__trim_pool(p, 0, false);
}

/* An object pool serves sizes up to its objects' only. */
static int too_big(const zp_pool *p, size_t size)
{
    return zp__error(-EOVERFLOW, "zp_get: %zu bytes is more than the pool's objects (%zu)",
                     size, p->obj.size);
}

/* Stamps a buffer being handed out (debug state, ZP_ZERO_ON_GET). */
static void *finish_get(zp_pool *p, void *buf, unsigned cls, const void *caller)
{
    if (p->debug >= 1)
        zp__debug_on_get(p, buf, cls, caller);
    if (p->flags & ZP_ZERO_ON_GET)
        memset(buf, 0, zp__class_size(p, cls));
    return buf;
}

void *zp__cache_get_slow(zp_pool *p, zp__cache *c, size_t size, const void *caller,
                         const zp__waiter *w, int *err)
{
    if (size == 0)
        size = 1;
    bool over = size > p->max_class;
    if (over && p->obj.size) {
        *err = too_big(p, size);
        return NULL;
    }
    unsigned cls = over ? 0 : zp__class_of(p, size);
    void *buf = NULL;
    int rc = over ? zp__oversize_get(p, size, true, w, &buf) : take_one(p, c, cls, w, &buf);
    /* A waiter's retry (w) does not reclaim: its first try, before it
     * queued, did; and while anyone waits, every return of memory unmaps
     * what it can for them (returned_for_waiters, zp__cache_returned). A
     * reclaim per retry was a trim of the whole pool each time a return
     * woke the head: the async loop's longest calls. */
    if (rc == ZP__EBUDGET && w == NULL &&
        zp__request_bytes(p, size) <= zp__budget_max(p->budget)) {
        reclaim(p, c);
        rc = over ? zp__oversize_get(p, size, true, w, &buf) : take_one(p, c, cls, w, &buf);
    }
    if (rc) {
        *err = rc;
        return NULL;
    }
    if (over)
        return buf;
    zp__idle_check(p);
    return finish_get(p, buf, cls, caller);
}

/* ---------------------------------------------------------------- puts */

/* Checks a buffer being put and prepares it (debug state, wipe, poison):
 * its slab, or NULL after reporting misuse or releasing an oversize
 * buffer. */
static zp__slab *accept_put(zp_pool *p, void *buf, const char *op)
{
    zp__slab *s = zp__slab_lookup(buf);
    int why = zp__classify(p, s, buf);
    if (why == ZP__PTR_UNKNOWN && p->debug >= 1 && zp__oversize_was_released(p, buf))
        why = ZP__PTR_RELEASED;
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
    if (p->obj.reset)
        p->obj.reset(buf, p->obj.arg);
    if (zp__debug_poisons(p))
        zp__debug_poison(p, buf, s->cls);
    return s;
}

/* Makes room for `more` buffers in b (c's bin of class cls). A bin that
 * overflows after it was refilled (a burst of gets then puts larger than
 * the bin: it would give to the depot now and take back at the next
 * burst) grows by a magazine, up to the class's cache_cap, instead; the
 * rest goes to the depot, its oldest buffers first, rounded up to whole
 * magazines. Drains shrink it back (zp__cache_drain). */
static void make_room(zp_pool *p, zp__cache *c, unsigned cls, zp__bin *b, uint32_t more)
{
    const zp__depot *d = &p->depot[cls];
    uint32_t batch = d->batch;
    zp__bin_misses *m = &c->misses[cls];
    if (m->refilled && b->cap < d->cache_cap) {
        uint32_t grown = b->cap + batch;
        b->cap = grown < d->cache_cap && grown > b->cap ? grown : d->cache_cap;
        if (b->count + more <= b->cap)
            return;
    } else if (!m->refilled && m->flushed && m->contended && b->cap < d->cache_cap) {
        /* a putting streak whose last give found the depot held: twice
         * the room, so the next give carries twice as much */
        b->cap = b->cap * 2 < d->cache_cap ? b->cap * 2 : d->cache_cap;
        if (b->count + more <= b->cap)
            return;
    }
    uint32_t excess = b->count + more - b->cap;
    excess = (excess + batch - 1) / batch * batch;
    if (!m->refilled && m->flushed && excess < b->count / batch * batch)
        excess = b->count / batch * batch; /* a putting streak: the whole bin */
    if (excess > b->count)
        excess = b->count;
    m->refilled = false;
    m->flushed = true;
    if (m->refill > batch) /* a getting streak ends */
        m->refill = batch;
    m->contended = zp__depot_give(p, cls, b->items, excess, false);
    b->count -= excess;
    memmove(b->items, b->items + excess, b->count * sizeof(void *));
}

/* Budget waiters queue: the first in line waiting for this class of p
 * gets run's last buffers handed over, in the queue's order, before any
 * other get can take them (counted here: a put, and a get the depot
 * served). Returns how many; the caller keeps run[0..k - that). */
static uint32_t hand_over(zp_pool *p, zp__cache *c, unsigned cls, void *const *run, uint32_t k)
{
    uint32_t handed =
        (uint32_t)zp__waitq_hand_over(zp__budget_waitq(p->budget), p, cls, run, k);
    if (handed != 0) {
        if (c != NULL) {
            zp__counter_add(&c->misses[cls].depot_hits, handed);
        } else {
            zp__counts n = {0, handed, 0, handed};
            zp__depot_count_direct(p, cls, &n);
        }
    }
    return handed;
}

/* Returns k accepted buffers of class cls: to waiters, into c's bin, or to
 * the depot. */
static void put_run(zp_pool *p, zp__cache *c, unsigned cls, void *const *run, uint32_t k)
{
    zp__bin *b = c != NULL ? &c->bins[cls] : NULL;
    bool waiters = p->budget != NULL && zp__budget_has_waiters(p->budget);
    if (b != NULL)
        zp__counter_add(&b->puts, k);
    if (waiters)
        k -= hand_over(p, c, cls, run, k);
    if (k == 0)
        return;
    if (b == NULL || k > b->cap || waiters) {
        zp__depot_give(p, cls, run, k, b == NULL);
        returned_for_waiters(p, cls);
        zp__idle_check(p);
    } else {
        if (b->count + k > b->cap) {
            make_room(p, c, cls, b, k);
            zp__idle_check(p);
        }
        memcpy(b->items + b->count, run, k * sizeof(void *));
        b->count += k;
    }
}

void *zp__cache_take_granted(zp_pool *p, zp__waiter *w, const void *caller)
{
    /* acquire: pairs with the release in zp__waitq_hand_over */
    void *buf = atomic_exchange_explicit(&w->granted, NULL, memory_order_acquire);
    return buf != NULL ? finish_get(p, buf, zp__slab_lookup(buf)->cls, caller) : NULL;
}

void zp__cache_return_granted(zp_pool *p, zp__cache *c, zp__waiter *w)
{
    void *buf = atomic_exchange_explicit(&w->granted, NULL, memory_order_acquire);
    if (buf != NULL)
        put_run(p, c, zp__slab_lookup(buf)->cls, &buf, 1);
}

void *zp__cache_keep_one(zp_pool *p, zp__cache *c, zp__waiter *w, void *buf,
                         const void *caller)
{
    if (buf == NULL)
        return zp__cache_take_granted(p, w, caller);
    zp__cache_return_granted(p, c, w);
    return buf;
}

void zp__cache_put_slow(zp_pool *p, zp__cache *c, void *buf, const char *op)
{
    if (buf == NULL)
        return;
    zp__slab *s = accept_put(p, buf, op);
    if (s != NULL)
        put_run(p, c, s->cls, &buf, 1);
}

/* ------------------------------------------------------------- batches */

/* *warm: whether the bin alone served it (nothing left the depot, so no
 * idle memory changed). */
static int get_batch_once(zp_pool *p, zp__cache *c, size_t size, void **bufs, size_t n,
                          const void *caller, bool *warm)
{
    *warm = false;
    if (size > p->max_class)
        return p->obj.size ? too_big(p, size) : zp__oversize_get_batch(p, size, bufs, n);
    unsigned cls = zp__class_of(p, size);
    zp__bin *b = c != NULL ? &c->bins[cls] : NULL;
    zp__counts k = {0, 0, 0, 0};
    int rc;
    if (b != NULL && n <= b->count) {
        /* warm: a copy of the bin's newest n pointers */
        b->count -= (uint32_t)n;
        memcpy(bufs, b->items + b->count, n * sizeof(void *));
        k.hits = n;
        *warm = true;
    } else if (b != NULL && n <= b->cap) {
        k.hits = b->count;
        if ((rc = fill(p, c, cls, (uint32_t)n, p->depot[cls].batch, NULL, &k)) != 0)
            return rc;
        b->count -= (uint32_t)n;
        memcpy(bufs, b->items + b->count, n * sizeof(void *));
    } else if ((rc = take_direct(p, c, cls, bufs, n, NULL, &k)) != 0) {
        return rc;
    }
    count_gets(p, c, cls, &k);
    if (p->hot_get == 0) /* debug or flags: stamp each */
        for (size_t i = 0; i < n; i++)
            finish_get(p, bufs[i], cls, caller);
    return 0;
}

int zp__cache_get_batch(zp_pool *p, zp__cache *c, size_t size, void **bufs, size_t n,
                        const void *caller)
{
    if (n == 0)
        return 0;
    if (size == 0)
        size = 1;
    bool warm;
    int rc = get_batch_once(p, c, size, bufs, n, caller, &warm);
    if (rc == ZP__EBUDGET && zp__request_bytes(p, size) <= zp__budget_max(p->budget)) {
        reclaim(p, c);
        rc = get_batch_once(p, c, size, bufs, n, caller, &warm);
    }
    if (rc == 0 && !warm)
        zp__idle_check(p);
    return rc;
}

/* How many of bufs[0..n) are buffers of the slab whose carved part is
 * [lo, lo + span), on its stride (mask): the same checks as zp__hot_slab,
 * without the radix map. */
static size_t slab_run(void *const *bufs, size_t n, uintptr_t lo, uintptr_t span,
                       uintptr_t mask)
{
    size_t i = 0;
    while (i < n) {
        uintptr_t off = (uintptr_t)bufs[i] - lo;
        if (off >= span || (off & mask) != 0)
            break;
        i++;
    }
    return i;
}

void zp__cache_put_batch(zp_pool *p, zp__cache *c, void *const *bufs, size_t n,
                         const char *op)
{
    /* buffers that took the checked path, merged while their class stays */
    void *run[RUN_MAX];
    uint32_t run_n = 0;
    unsigned run_cls = 0;
    /* bufs[seg .. i): buffers that passed the bare path's checks, all of
     * class seg_cls: one put_run, straight from bufs */
    size_t seg = 0, i = 0;
    unsigned seg_cls = 0;
    while (i < n) {
        void *buf = bufs[i];
        zp__slab *s = zp__hot_slab(p, buf);
        if (s != NULL) {
            if (i > seg && (s->cls != seg_cls || i - seg >= CHUNK_MAX)) {
                put_run(p, c, seg_cls, bufs + seg, (uint32_t)(i - seg));
                seg = i;
            }
            if (i == seg)
                seg_cls = s->cls;
            /* this buffer and those after it in the same slab (a batch's
             * buffers often share one) */
            uintptr_t lo = s->base;
            size_t left = n - i - 1, room = CHUNK_MAX - (i - seg) - 1;
            i += 1 + slab_run(bufs + i + 1, left < room ? left : room, lo,
                              atomic_load_explicit(&s->carve_end, memory_order_relaxed) - lo,
                              s->mask);
            continue;
        }
        if (i > seg)
            put_run(p, c, seg_cls, bufs + seg, (uint32_t)(i - seg));
        seg = ++i;
        if (buf == NULL)
            continue;
        s = accept_put(p, buf, op);
        if (s == NULL)
            continue; /* misuse reported, or an oversize buffer released */
        if (run_n > 0 && (s->cls != run_cls || run_n == RUN_MAX)) {
            put_run(p, c, run_cls, run, run_n);
            run_n = 0;
        }
        run_cls = s->cls;
        run[run_n++] = buf;
    }
    if (i > seg)
        put_run(p, c, seg_cls, bufs + seg, (uint32_t)(i - seg));
    if (run_n > 0)
        put_run(p, c, run_cls, run, run_n);
}

/* ------------------------------------------------------------- reserve */

/* Writes one byte of every page b spans, only within b (the pages it
 * shares with its neighbours may hold other owners' bytes: those are
 * written back unchanged, the same value, from inside b only). */
static void touch_pages(char *b, size_t len, size_t page)
{
    char *end = b + len;
    for (char *q = b; q < end; q = (char *)(((uintptr_t)q | (page - 1)) + 1)) {
        volatile char *v = q;
        *v = *v;
    }
}

int zp__cache_reserve(zp_pool *p, size_t size, size_t count)
{
    if (size == 0)
        size = 1;
    if (size > p->max_class)
        return p->obj.size ? too_big(p, size)
                           : zp__error(-EINVAL, "zp_reserve: %zu bytes is above the pool's "
                                                "largest class (%zu): such buffers are "
                                                "mapped for each get, never kept",
                                       size, p->max_class);
    if (count == 0)
        return 0;
    if (count > SIZE_MAX / sizeof(void *))
        return zp__error(-ENOMEM, "zp_reserve: %zu buffers cannot be listed", count);
    unsigned cls = zp__class_of(p, size);
    void **bufs = malloc(count * sizeof(void *)); /* a cold call: may allocate */
    if (bufs == NULL)
        return zp__error(-ENOMEM, "zp_reserve: out of memory listing %zu buffers", count);
    int rc = take_direct(p, NULL, cls, bufs, count, NULL, NULL);
    if (rc == 0) {
        size_t len = zp__class_size(p, cls), page = zp__os_page_size();
        for (size_t i = 0; i < count; i++)
            touch_pages(bufs[i], len, page);
        for (size_t i = 0; i < count; i += CHUNK_MAX)
            zp__depot_give(p, cls, bufs + i,
                           (uint32_t)(count - i < CHUNK_MAX ? count - i : CHUNK_MAX), false);
    } else {
        /* all went back; what this call mapped is wholly idle: unmap it */
        zp__trim_class(p, cls, UINT64_MAX, false);
        if (rc == ZP__EBUDGET)
            rc = zp__error(rc, "zp_reserve: %zu buffers of %zu bytes do not fit the budget "
                               "(%zu bytes)",
                           count, zp__class_size(p, cls), zp__budget_max(p->budget));
    }
    free(bufs);
    return rc;
}

/* --------------------------------------------------- drain, life cycle */

uint32_t zp__cache_drain(zp_pool *p, zp__cache *c)
{
    uint32_t classes = 0;
    for (unsigned cls = 0; cls < c->nclasses; cls++) {
        zp__bin *b = &c->bins[cls];
        if (b->count) {
            zp__depot_give(p, cls, b->items, b->count, false);
            b->count = 0;
            classes |= 1u << cls;
        }
        c->misses[cls].refill = 0; /* start slowly again */
        c->misses[cls].refilled = false;
        c->misses[cls].flushed = false;
        c->misses[cls].contended = false;
        b->cap = p->depot[cls].cache_start; /* and small */
    }
    return classes;
}

void zp__cache_returned(zp_pool *p, uint32_t classes)
{
    for (unsigned cls = 0; classes != 0; cls++, classes >>= 1)
        if (classes & 1)
            returned_for_waiters(p, cls);
}

void zp__cache_flush(zp_pool *p, zp__cache *c)
{
    zp__cache_returned(p, zp__cache_drain(p, c));
    zp__idle_check(p);
}

zp__cache *zp__cache_new(zp_pool *p, bool handle)
{
    size_t items = 0;
    for (unsigned cls = 0; cls < p->nclasses; cls++)
        items += p->depot[cls].cache_cap;
    size_t head = sizeof(zp__cache) + p->nclasses * (sizeof(zp__bin) + sizeof(zp__bin_misses));
    zp__cache *c = calloc(1, head + items * sizeof(void *));
    if (c == NULL)
        return NULL;
    void **slot = (void **)((char *)c + head);
    c->pool = p;
    c->handle = handle;
    c->nclasses = p->nclasses;
    c->misses = (zp__bin_misses *)&c->bins[p->nclasses];
    for (unsigned cls = 0; cls < p->nclasses; cls++) {
        c->bins[cls].cap = p->depot[cls].cache_start;
        c->bins[cls].items = slot;
        slot += p->depot[cls].cache_cap; /* room to grow into */
    }
    return c;
}

void zp__cache_counts(const zp__cache *c, unsigned cls, zp__counts *sum)
{
    const zp__bin *b = &c->bins[cls];
    const zp__bin_misses *m = &c->misses[cls];
    sum->hits += atomic_load_explicit(&b->hits, memory_order_relaxed);
    sum->depot_hits += atomic_load_explicit(&m->depot_hits, memory_order_relaxed);
    sum->allocations += atomic_load_explicit(&m->allocations, memory_order_relaxed);
    sum->puts += atomic_load_explicit(&b->puts, memory_order_relaxed);
}

uint64_t zp__cache_held(const zp__cache *c)
{
    uint64_t n = 0;
    for (unsigned cls = 0; cls < c->nclasses; cls++)
        n += c->bins[cls].count;
    return n;
}
