/*
 * tcache.c — per-thread caches and the registry of live pools.
 *
 * Each thread has one zp__thread (reached through an initial-exec TLS
 * pointer) holding an array of caches indexed by pool slot, so a thread that
 * uses several pools keeps a cache for each. A cache is a LIFO bin per class.
 * Until a thread touches any pool its TLS pointer refers to a shared empty
 * zp__thread with no slots, so the hot path needs no NULL check.
 *
 * The registry lock guards the links between pools and caches: slot
 * allocation, each pool's list of caches, thread exit (which hands cached
 * buffers back to the depot) and pool destroy (which detaches caches that
 * threads still own). Lock order: registry -> depot -> pool.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static zp__thread thread_empty = {0, NULL};
__thread zp__thread *zp__tls ZP_TLS_IE = &thread_empty;

static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER;
static uint64_t slot_used[ZP__MAX_POOLS / 64];
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

void zp__registry_lock(void)
{
    pthread_mutex_lock(&registry);
}

void zp__registry_unlock(void)
{
    pthread_mutex_unlock(&registry);
}

/* ------------------------------------------------------------------ fork */

/* Live pools, for the fork handlers (registry lock). */
static zp_pool *live_pools;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Before fork: hold every lock a pool's slow paths take (in lock order),
 * so the child inherits consistent pools. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&registry);
    for (zp_pool *p = live_pools; p; p = p->live_next) {
        for (unsigned c = 0; c < p->nclasses; c++)
            pthread_mutex_lock(&p->depot[c].lock);
        pthread_mutex_lock(&p->lock);
    }
}

static void fork_release(void)
{
    for (zp_pool *p = live_pools; p; p = p->live_next) {
        pthread_mutex_unlock(&p->lock);
        for (unsigned c = p->nclasses; c-- > 0;)
            pthread_mutex_unlock(&p->depot[c].lock);
    }
    pthread_mutex_unlock(&registry);
}

/* In the child only the forking thread exists: locks other threads might
 * have held outside the set above are made afresh, waiters of other threads
 * are forgotten, and decay threads are gone. Buffers cached by the other
 * threads stay lost to the child (their counters still add up). */
static void fork_child(void)
{
    for (zp_pool *p = live_pools; p; p = p->live_next)
        zp__pool_after_fork_child(p);
    zp__misuse_after_fork_child();
    fork_release();
}

static void atfork_register(void)
{
    (void)pthread_atfork(fork_prepare, fork_release, fork_child);
}

int zp__registry_add(zp_pool *p, bool want_slot)
{
    int rc = want_slot ? -1 : 0;
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&registry);
    for (uint32_t w = 0; want_slot && w < ZP__MAX_POOLS / 64; w++) {
        if (slot_used[w] != UINT64_MAX) {
            unsigned bit = (unsigned)__builtin_ctzll(~slot_used[w]);
            slot_used[w] |= (uint64_t)1 << bit;
            p->slot = w * 64 + bit;
            rc = 0;
            break;
        }
    }
    if (rc == 0) {
        p->live_next = live_pools;
        live_pools = p;
    }
    pthread_mutex_unlock(&registry);
    return rc;
}

/* Detaches every cache of p (their owners may still be alive: they notice
 * the NULL pool on their next slow path or at exit and free the cache) and
 * folds their counters into the pool, then frees the slot. */
void zp__registry_remove(zp_pool *p)
{
    pthread_mutex_lock(&registry);
    for (zp__tcache *tc = p->tcaches, *next; tc; tc = next) {
        next = tc->next;
        for (unsigned c = 0; c < tc->nclasses; c++)
            zp__tcache_counts(tc, c, &p->retired[c]);
        tc->pool = NULL;
        tc->next = tc->prev = NULL;
    }
    p->tcaches = NULL;
    for (zp_pool **link = &live_pools; *link; link = &(*link)->live_next) {
        if (*link == p) {
            *link = p->live_next;
            break;
        }
    }
    if (p->slot != ZP__NO_SLOT)
        slot_used[p->slot / 64] &= ~((uint64_t)1 << (p->slot % 64));
    pthread_mutex_unlock(&registry);
}

/* Registry lock held: hands every cached buffer back, folds counters. */
static void tcache_retire(zp__tcache *tc)
{
    zp_pool *p = tc->pool;
    if (p == NULL)
        return; /* pool already destroyed */
    zp__tcache_drain(p, tc);
    for (unsigned c = 0; c < tc->nclasses; c++)
        zp__tcache_counts(tc, c, &p->retired[c]);
    /* (the retention cap applies to what came back on the pool's next slow
     * path: trimming here would unmap under the registry lock) */
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        p->tcaches = tc->next;
    if (tc->next)
        tc->next->prev = tc->prev;
    tc->pool = NULL;
}

static void thread_exit(void *arg)
{
    zp__thread *t = arg;
    pthread_mutex_lock(&registry);
    for (uint32_t i = 0; i < t->cap; i++) {
        if (t->caches[i]) {
            tcache_retire(t->caches[i]);
            free(t->caches[i]);
        }
    }
    pthread_mutex_unlock(&registry);
    free(t->caches);
    free(t);
    /* A later destructor that uses a pool starts over with a fresh
     * zp__thread (and registers it again). */
    zp__tls = &thread_empty;
}

static void thread_key_create(void)
{
    (void)pthread_key_create(&thread_key, thread_exit);
}

static zp__thread *thread_get(void)
{
    zp__thread *t = zp__tls;
    if (t != &thread_empty)
        return t;
    pthread_once(&thread_key_once, thread_key_create);
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (pthread_setspecific(thread_key, t) != 0) {
        free(t);
        return NULL;
    }
    zp__tls = t;
    return t;
}

static zp__tcache *tcache_new(zp_pool *p)
{
    size_t items = 0;
    for (unsigned c = 0; c < p->nclasses; c++)
        items += p->depot[c].cache_cap;
    size_t head = sizeof(zp__tcache) + p->nclasses * (sizeof(zp__bin) + sizeof(zp__bin_misses));
    zp__tcache *tc = calloc(1, head + items * sizeof(void *));
    if (tc == NULL)
        return NULL;
    void **slot = (void **)((char *)tc + head);
    tc->pool = p;
    tc->nclasses = p->nclasses;
    tc->misses = (zp__bin_misses *)&tc->bins[p->nclasses];
    for (unsigned c = 0; c < p->nclasses; c++) {
        tc->bins[c].cap = p->depot[c].cache_cap;
        tc->bins[c].items = slot;
        slot += tc->bins[c].cap;
    }
    return tc;
}

zp__tcache *zp__tcache_get(zp_pool *p)
{
    if (p->slot == ZP__NO_SLOT)
        return NULL;
    zp__thread *t = thread_get();
    if (t == NULL)
        return NULL;
    if (p->slot >= t->cap) {
        uint32_t cap = t->cap ? t->cap : 8;
        while (cap <= p->slot)
            cap *= 2;
        zp__tcache **caches = realloc(t->caches, cap * sizeof(*caches));
        if (caches == NULL)
            return NULL;
        memset(caches + t->cap, 0, (cap - t->cap) * sizeof(*caches));
        t->caches = caches;
        t->cap = cap;
    }
    zp__tcache *tc = t->caches[p->slot];
    if (tc && tc->pool == p)
        return tc;
    zp__tcache *fresh = tcache_new(p);
    pthread_mutex_lock(&registry);
    if (tc) {
        /* left over from a destroyed pool that had this slot */
        tcache_retire(tc);
        free(tc);
        t->caches[p->slot] = NULL;
    }
    if (fresh) {
        fresh->next = p->tcaches;
        if (p->tcaches)
            p->tcaches->prev = fresh;
        p->tcaches = fresh;
        t->caches[p->slot] = fresh;
    }
    pthread_mutex_unlock(&registry);
    return fresh;
}

void zp__tcache_drain(zp_pool *p, zp__tcache *tc)
{
    for (unsigned c = 0; c < tc->nclasses; c++) {
        zp__bin *b = &tc->bins[c];
        if (b->count)
            zp__depot_give(p, c, b->items, b->count, false);
        b->count = 0;
        tc->misses[c].refill = 1; /* start slowly again */
    }
}

void zp__tcache_counts(const zp__tcache *tc, unsigned cls, zp__counts *sum)
{
    const zp__bin *b = &tc->bins[cls];
    const zp__bin_misses *m = &tc->misses[cls];
    sum->hits += atomic_load_explicit(&b->hits, memory_order_relaxed);
    sum->depot_hits += atomic_load_explicit(&m->depot_hits, memory_order_relaxed);
    sum->allocations += atomic_load_explicit(&m->allocations, memory_order_relaxed);
    sum->puts += atomic_load_explicit(&b->puts, memory_order_relaxed);
}

void zp__tcache_flush(zp_pool *p, unsigned cls, zp__bin *b)
{
    uint32_t batch = p->depot[cls].batch;
    zp__depot_give(p, cls, b->items, batch, false);
    b->count -= batch;
    memmove(b->items, b->items + batch, b->count * sizeof(void *));
}
