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
 *     exchange also found the depot's lock held by another thread, within
 *     a few ms of the bin's previous exchange (two threads trading through
 *     it, as in a hand-off: busy_streak), the bin doubles its
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
 *     failed on goes back to the depot unconstructed;
 *   - per-node depots (ZP_NUMA_LOCAL, several nodes): a cache refills from
 *     the depot of the node its owner runs on, read (getcpu) on each miss,
 *     so a thread that migrated follows within a refill. A buffer of
 *     another node put here never enters a bin: it waits in the cache's
 *     stash for its node and goes home with others of its class, one lock
 *     per batch (counted there as a remote put). The node is an argument
 *     of every slow path below.
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
static void count_gets(zp_pool *p, zp__cache *c, unsigned cls, unsigned node,
                       const zp__counts *k)
{
    if (c != NULL) {
        zp__counter_add(&c->bins[cls].hits, k->hits);
        zp__counter_add(&c->misses[cls].depot_hits, k->depot_hits);
        zp__counter_add(&c->misses[cls].allocations, k->allocations);
    } else if (k->hits | k->depot_hits | k->allocations) {
        zp__depot_count_direct(p, cls, node, k);
    }
}

/* The node index c serves (its last refill's), read by its owner. */
static unsigned cache_node(const zp__cache *c)
{
    /* relaxed: only the owner stores it; this is the owner reading */
    return atomic_load_explicit(&c->node, memory_order_relaxed);
}

/* c's owner now runs on node index node: what c holds goes home (its bins
 * hold only buffers of its node, so the hit paths serve local memory), its
 * counters so far are folded into its old node's depots (so each node's
 * figures stay its own), and it serves node from now on. */
static void rehome(zp_pool *p, zp__cache *c, unsigned node)
{
    uint32_t classes = zp__cache_drain(p, c);
    unsigned old = cache_node(c);
    for (unsigned cls = 0; cls < c->nclasses; cls++) {
        /* under the old node's depot lock, which a stats reader of that
         * node (or of all) holds while it reads c's counters and the
         * depot's retired ones: it sees them before or after, never both */
        zp__depot *d = zp__depot_of(p, old, cls);
        pthread_mutex_lock(&d->lock);
        zp__cache_counts(c, cls, &d->retired);
        /* relaxed: the owner's own counters (the lock orders them) */
        atomic_store_explicit(&c->bins[cls].hits, 0, memory_order_relaxed);
        atomic_store_explicit(&c->bins[cls].puts, 0, memory_order_relaxed);
        atomic_store_explicit(&c->misses[cls].depot_hits, 0, memory_order_relaxed);
        atomic_store_explicit(&c->misses[cls].allocations, 0, memory_order_relaxed);
        pthread_mutex_unlock(&d->lock);
    }
    /* release: a stats reader of the new node that sees it (acquire, in
     * stats.c) sees the zeroed counters, not the old node's figures */
    atomic_store_explicit(&c->node, node, memory_order_release);
    c->key = zp__node_key(p, node);
    zp__cache_returned(p, classes);
}

/* The node index a get's slow path of c works for: the one the calling
 * thread runs on (getcpu; the vDSO's, no system call), which becomes c's
 * node (rehome). Pools without per-node depots: 0, nothing read. */
static unsigned current_node(zp_pool *p, zp__cache *c)
{
    if (p->nnodes == 1)
        return 0;
    unsigned node = zp__os_current_node_index();
    if (node >= p->nnodes)
        node = 0;
    if (c != NULL && cache_node(c) != node)
        rehome(p, c, node);
    return node;
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
static int take_direct(zp_pool *p, zp__cache *c, unsigned cls, unsigned node, void **bufs,
                       size_t n, const zp__waiter *w, zp__counts *k)
{
    /* A single get without a cache is counted under the depot lock it takes
     * anyway (unless an init could still fail it); everything else is
     * counted by the caller on success. */
    uint32_t count_now = k != NULL && c == NULL && n == 1 && p->obj.init == NULL;
    size_t got = 0;
    while (got < n) {
        uint32_t want = n - got < CHUNK_MAX ? (uint32_t)(n - got) : CHUNK_MAX, t;
        bool carved, contended;
        int rc = zp__depot_take(p, cls, node, bufs + got, want, count_now, w, &t, &carved,
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

/* Whether a depot exchange of m's bin that found the lock held (contended)
 * should grow a one-way streak: only when it came within STREAK_GAP_NS of
 * the bin's previous exchange. A hand-off's exchanges come microseconds
 * apart; a thread that puts now and then (and happens to meet another
 * thread at the lock) must not grow its bin and hoard for it. */
#define STREAK_GAP_NS 8000000u /* two ticks of the coarse clock */
static bool busy_streak(zp__bin_misses *m, bool contended)
{
    uint64_t now = zp__os_now_coarse_ns();
    bool close = now - m->exchange_ns <= STREAK_GAP_NS;
    m->exchange_ns = now;
    return contended && close;
}

/* Refills c's bin of class cls until it holds at least need (<= cap)
 * buffers, each exchange taking at least floor. On failure the buffers
 * refilled so far stay cached. */
static int fill(zp_pool *p, zp__cache *c, unsigned cls, unsigned node, uint32_t need,
                uint32_t floor, const zp__waiter *w, zp__counts *k)
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
        int rc = zp__depot_take(p, cls, node, got, want, 0, w, &t, &carved, &contended);
        c->misses[cls].contended = busy_streak(&c->misses[cls], contended);
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

/* Grows b (of depot d's class) by `by` buffers, up to the class's
 * cache_cap: the one way a bin grows (bursts, one-way streaks). */
static void grow_bin(zp__bin *b, const zp__depot *d, uint32_t by)
{
    uint32_t grown = b->cap + by;
    b->cap = grown < d->cache_cap && grown > b->cap ? grown : d->cache_cap;
}

/* One buffer of class cls for c: from the bin, a slow-start refill, or the
 * depot directly when c caches nothing (c NULL: from node index node's
 * depot; else c's node). */
static int take_one(zp_pool *p, zp__cache *c, unsigned cls, unsigned node,
                    const zp__waiter *w, void **out)
{
    zp__counts k = {0, 0, 0, 0};
    int rc = 0;
    if (c == NULL || c->bins[cls].cap == 0) {
        rc = take_direct(p, c, cls, node, out, 1, w, &k);
    } else {
        zp__bin *b = &c->bins[cls];
        if (b->count != 0) {
            k.hits = 1;
        } else {
            zp__bin_misses *m = &c->misses[cls];
            const zp__depot *d = &p->depot[cls];
            uint32_t batch = d->batch;
            uint32_t want = m->refill ? m->refill : d->first_refill;
            if ((rc = fill(p, c, cls, node, 1, want, w, &k)) != 0)
                return rc;
            if (want < batch)
                m->refill = want * 2 < batch ? want * 2 : batch;
            else if (!m->flushed) { /* refilled twice with no flush between */
                if (m->contended && b->cap < d->cache_cap) /* and fought for it */
                    grow_bin(b, d, b->cap);
                m->refill = want * 2 < b->cap ? want * 2 : b->cap;
            }
            m->flushed = false;
        }
        *out = b->items[--b->count];
    }
    if (rc == 0)
        count_gets(p, c, cls, node, &k);
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
    return zp__cache_get_node(p, c, size, -1, caller, w, err);
}

void *zp__cache_get_node(zp_pool *p, zp__cache *c, size_t size, int want_node,
                         const void *caller, const zp__waiter *w, int *err)
{
    if (size == 0)
        size = 1;
    /* the cache serves its own node only: another node's buffer comes
     * straight from that node's depot */
    unsigned node = current_node(p, c);
    if (want_node >= 0 && (unsigned)want_node != node) {
        node = (unsigned)want_node;
        c = NULL;
    }
    bool over = size > p->max_class;
    if (over && p->obj.size) {
        *err = too_big(p, size);
        return NULL;
    }
    unsigned cls = over ? 0 : zp__class_of(p, size);
    void *buf = NULL;
    int rc = over ? zp__oversize_get(p, size, node, true, w, &buf)
                  : take_one(p, c, cls, node, w, &buf);
    /* A waiter's retry (w) does not reclaim: its first try, before it
     * queued, did; and while anyone waits, every return of memory unmaps
     * what it can for them (returned_for_waiters, zp__cache_returned). A
     * reclaim per retry was a trim of the whole pool each time a return
     * woke the head: the async loop's longest calls. */
    if (rc == ZP__EBUDGET && w == NULL &&
        zp__request_bytes(p, size) <= zp__budget_max(p->budget)) {
        reclaim(p, c);
        rc = over ? zp__oversize_get(p, size, node, true, w, &buf)
                  : take_one(p, c, cls, node, w, &buf);
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
        grow_bin(b, d, batch);
        if (b->count + more <= b->cap)
            return;
    } else if (!m->refilled && m->flushed && m->contended && b->cap < d->cache_cap) {
        /* a putting streak whose last give found the depot held: twice
         * the room, so the next give carries twice as much */
        grow_bin(b, d, b->cap);
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
    m->contended = busy_streak(m, zp__depot_give(p, cls, b->items, excess, false));
    b->count -= excess;
    memmove(b->items, b->items + excess, b->count * sizeof(void *));
}

/* Budget waiters queue: the first in line waiting for this class of p
 * gets run's last buffers handed over, in the queue's order, before any
 * other get can take them (counted here: a put, and a get the depot
 * served). Returns how many; the caller keeps run[0..k - that). */
static uint32_t hand_over(zp_pool *p, zp__cache *c, unsigned cls, unsigned node,
                          void *const *run, uint32_t k)
{
    uint32_t handed =
        (uint32_t)zp__waitq_hand_over(zp__budget_waitq(p->budget), p, cls, run, k);
    if (handed != 0) {
        if (c != NULL) {
            zp__counter_add(&c->misses[cls].depot_hits, handed);
        } else {
            zp__counts n = {0, handed, 0, handed};
            zp__depot_count_direct(p, cls, node, &n);
        }
    }
    return handed;
}

/* Sends the buffers c's stash holds for node index node home, a batch of
 * one class per lock. Returns the classes sent (bit cls). */
static uint32_t stash_flush(zp_pool *p, zp__cache *c, unsigned node)
{
    zp__stash *st = &c->stash[node];
    uint32_t classes = 0;
    while (st->count != 0) {
        unsigned cls = st->cls[0];
        void *run[ZP__STASH_MAX];
        uint32_t k = 0, kept = 0;
        for (uint32_t i = 0; i < st->count; i++) {
            if (st->cls[i] == cls) {
                run[k++] = st->items[i];
            } else {
                st->cls[kept] = st->cls[i];
                st->items[kept++] = st->items[i];
            }
        }
        st->count = kept;
        zp__depot_give_home(p, node, cls, run, k);
        classes |= 1u << cls;
    }
    return classes;
}

/* k buffers of class cls and node index node (not c's) were put on c: into
 * the stash for their node, which goes home once it holds a depot batch of
 * the class or is full. While budget waiters queue they go home at once. */
static void put_remote(zp_pool *p, zp__cache *c, unsigned cls, unsigned node,
                       void *const *run, uint32_t k, bool waiters)
{
    if (waiters) {
        zp__depot_give_home(p, node, cls, run, k);
        returned_for_waiters(p, cls);
        zp__idle_check(p);
        return;
    }
    zp__stash *st = &c->stash[node];
    uint32_t batch = zp__depot_of(p, node, cls)->batch;
    for (uint32_t i = 0; i < k; i++) {
        if (st->count == ZP__STASH_MAX)
            stash_flush(p, c, node);
        st->cls[st->count] = (uint8_t)cls;
        st->items[st->count++] = run[i];
    }
    uint32_t same = 0;
    for (uint32_t i = 0; i < st->count; i++)
        same += st->cls[i] == cls;
    if (same >= batch || st->count == ZP__STASH_MAX) {
        stash_flush(p, c, node);
        zp__idle_check(p);
    }
}

/* Returns k accepted buffers of class cls and node index node: to waiters,
 * into c's bin, home (another node's), or to the depot. */
static void put_run(zp_pool *p, zp__cache *c, unsigned cls, unsigned node, void *const *run,
                    uint32_t k)
{
    zp__bin *b = c != NULL ? &c->bins[cls] : NULL;
    bool waiters = p->budget != NULL && zp__budget_has_waiters(p->budget);
    if (waiters) {
        uint32_t handed = hand_over(p, c, cls, node, run, k);
        if (b != NULL)
            zp__counter_add(&b->puts, handed);
        run += handed;
        k -= handed;
    }
    if (k == 0)
        return;
    /* another node's buffer than c's (a thread that migrated learns its
     * new node on its next refill; until then its puts of the new node's
     * buffers go home like any other node's) */
    if (b != NULL && c->stash != NULL && node != cache_node(c)) {
        put_remote(p, c, cls, node, run, k, waiters);
        return;
    }
    if (b != NULL)
        zp__counter_add(&b->puts, k);
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
    if (buf != NULL) {
        const zp__slab *s = zp__slab_lookup(buf);
        put_run(p, c, s->cls, s->node, &buf, 1);
    }
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
        put_run(p, c, s->cls, s->node, &buf, 1);
}

/* ------------------------------------------------------------- batches */

/* *warm: whether the bin alone served it (nothing left the depot, so no
 * idle memory changed). */
static int get_batch_once(zp_pool *p, zp__cache *c, size_t size, void **bufs, size_t n,
                          const void *caller, bool *warm)
{
    *warm = false;
    unsigned node = current_node(p, c);
    if (size > p->max_class)
        return p->obj.size ? too_big(p, size) : zp__oversize_get_batch(p, size, node, bufs, n);
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
        if ((rc = fill(p, c, cls, node, (uint32_t)n, p->depot[cls].batch, NULL, &k)) != 0)
            return rc;
        b->count -= (uint32_t)n;
        memcpy(bufs, b->items + b->count, n * sizeof(void *));
    } else if ((rc = take_direct(p, c, cls, node, bufs, n, NULL, &k)) != 0) {
        return rc;
    }
    count_gets(p, c, cls, node, &k);
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

/* The class and node of a zp__slab.cls_node. */
static unsigned tag_cls(uint64_t tag)
{
    zp__slab s;
    s.cls_node = tag;
    return s.cls;
}

static unsigned tag_node(uint64_t tag)
{
    zp__slab s;
    s.cls_node = tag;
    return s.node;
}

void zp__cache_put_batch(zp_pool *p, zp__cache *c, void *const *bufs, size_t n,
                         const char *op)
{
    /* buffers that took the checked path, merged while their class stays */
    void *run[RUN_MAX];
    uint32_t run_n = 0;
    uint64_t run_tag = 0; /* the run's class and node (zp__slab.cls_node) */
    /* the bare path takes buffers of c's node; others (another node's, or
     * any without a cache) are looked up and run by node */
    uintptr_t key = c != NULL ? c->key : (uintptr_t)p;
    /* bufs[seg .. i): buffers that passed the bare path's checks, all of
     * one class and node (seg_tag): one put_run, straight from bufs, of at
     * most CHUNK_MAX (seg_end) */
    size_t seg = 0, seg_end = 0, i = 0;
    uint64_t seg_tag = 0;
    while (i < n) {
        void *buf = bufs[i];
        zp__slab *s = zp__hot_slab(p, key, buf);
        if (s != NULL) {
            if (s->cls_node != seg_tag || i == seg_end) {
                if (i > seg)
                    put_run(p, c, tag_cls(seg_tag), tag_node(seg_tag), bufs + seg,
                            (uint32_t)(i - seg));
                seg = i;
                seg_tag = s->cls_node;
                seg_end = n - i > CHUNK_MAX ? i + CHUNK_MAX : n;
            }
            /* this buffer and those after it in the same slab (a batch's
             * buffers often share one): the checks of zp__hot_slab without
             * the radix map, on the slab's carved part [lo, lo + span) and
             * its stride (mask) */
            uintptr_t lo = s->base, mask = s->mask;
            uintptr_t span = atomic_load_explicit(&s->carve_end, memory_order_relaxed) - lo;
            for (i++; i < seg_end; i++) {
                uintptr_t off = (uintptr_t)bufs[i] - lo;
                if (off >= span || (off & mask) != 0)
                    break;
            }
            continue;
        }
        if (i > seg)
            put_run(p, c, tag_cls(seg_tag), tag_node(seg_tag), bufs + seg, (uint32_t)(i - seg));
        seg = ++i;
        seg_end = seg; /* the next bare buffer starts a segment */
        if (buf == NULL)
            continue;
        s = accept_put(p, buf, op);
        if (s == NULL)
            continue; /* misuse reported, or an oversize buffer released */
        if (run_n > 0 && (s->cls_node != run_tag || run_n == RUN_MAX)) {
            put_run(p, c, tag_cls(run_tag), tag_node(run_tag), run, run_n);
            run_n = 0;
        }
        run_tag = s->cls_node;
        run[run_n++] = buf;
    }
    if (i > seg)
        put_run(p, c, tag_cls(seg_tag), tag_node(seg_tag), bufs + seg, (uint32_t)(i - seg));
    if (run_n > 0)
        put_run(p, c, tag_cls(run_tag), tag_node(run_tag), run, run_n);
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

int zp__cache_reserve(zp_pool *p, zp__cache *c, size_t size, size_t count)
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
    /* on the calling thread's node: its next gets take them */
    int rc = take_direct(p, NULL, cls, current_node(p, c), bufs, count, NULL, NULL);
    if (rc == 0) {
        size_t len = zp__class_size(p, cls), page = zp__os_page_size();
        for (size_t i = 0; i < count; i++)
            touch_pages(bufs[i], len, page);
        /* as many as c's bin has room for go there (its first gets are
         * hits), unless budget waiters queue for memory; the rest to the
         * depot */
        size_t kept = 0;
        if (c != NULL && !(p->budget != NULL && zp__budget_has_waiters(p->budget))) {
            zp__bin *b = &c->bins[cls];
            kept = b->cap - b->count < count ? b->cap - b->count : count;
            memcpy(b->items + b->count, bufs + count - kept, kept * sizeof(void *));
            b->count += (uint32_t)kept;
        }
        for (size_t i = 0; i < count - kept; i += CHUNK_MAX)
            zp__depot_give(p, cls, bufs + i,
                           (uint32_t)(count - kept - i < CHUNK_MAX ? count - kept - i
                                                                   : CHUNK_MAX),
                           false);
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
    if (c->stash != NULL)
        for (unsigned node = 0; node < p->nnodes; node++)
            classes |= stash_flush(p, c, node);
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
    size_t stash = p->nnodes > 1 ? p->nnodes * sizeof(zp__stash) : 0;
    size_t bytes = head + stash + items * sizeof(void *);
    bytes = (bytes + ZP_CACHELINE - 1) & ~(size_t)(ZP_CACHELINE - 1);
    zp__cache *c = aligned_alloc(ZP_CACHELINE, bytes); /* the bins' lines */
    if (c == NULL)
        return NULL;
    memset(c, 0, bytes);
    if (stash)
        c->stash = (zp__stash *)((char *)c + head);
    void **slot = (void **)((char *)c + head + stash);
    c->pool = p;
    /* the creating thread's node (its owner's, for a thread cache; a
     * handle takes the node of whoever refills it) */
    unsigned node = p->nnodes > 1 ? zp__os_current_node_index() : 0;
    if (node >= p->nnodes)
        node = 0;
    atomic_init(&c->node, node);
    c->key = zp__node_key(p, node);
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
    if (c->stash != NULL)
        for (unsigned node = 0; node < c->pool->nnodes; node++)
            n += c->stash[node].count;
    return n;
}
