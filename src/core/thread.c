/*
 * thread.c — threads as cache owners (see thread.h).
 *
 * Each thread has one zp__thread holding an array of caches indexed by pool
 * slot, so a thread that uses several pools keeps a cache for each. When the
 * thread exits, a pthread key destructor gives every cache back to its pool
 * (through the registry, which also serialises this with pool destroy).
 */
#include "core/thread.h"
#include "core/cache.h"
#include "core/registry.h"

#include <stdlib.h>
#include <string.h>

static zp__thread thread_empty = {0, NULL};
__thread zp__thread *zp__tls ZP_TLS_IE = &thread_empty;
static zp__cache cache_none; /* pool NULL: matches no pool */
__thread zp__cache *zp__tls_cache ZP_TLS_IE = &cache_none;

static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg)
{
    zp__thread *t = arg;
    /* Under the registry lock (which keeps each pool alive): every cache
     * back to its pool. A pool whose budget has waiters is pinned, and its
     * idle slabs are unmapped for them after the lock is released (unmapping
     * may run an object type's fini, which must hold no library lock). */
    zp__registry_lock();
    for (uint32_t i = 0; i < t->cap; i++) {
        zp__cache *c = t->caches[i];
        zp_pool *p = c ? c->pool : NULL;
        if (p == NULL)
            continue; /* none, or its pool is gone */
        uint32_t classes = zp__cache_drain(p, c);
        zp__registry_detach(c);
        if (classes && p->budget && zp__budget_has_waiters(p->budget)) {
            /* relaxed: the registry lock orders this with destroy's check */
            atomic_fetch_add_explicit(&p->pins, 1, memory_order_relaxed);
            c->exit_pool = p;
            c->exit_classes = classes;
        }
    }
    zp__registry_unlock();
    for (uint32_t i = 0; i < t->cap; i++) {
        zp__cache *c = t->caches[i];
        if (c && c->exit_pool) {
            zp__cache_returned(c->exit_pool, c->exit_classes);
            /* release: destroy, which acquires, sees the trim finished */
            atomic_fetch_sub_explicit(&c->exit_pool->pins, 1, memory_order_release);
        }
        free(c);
    }
    free(t->caches);
    free(t);
    /* A later destructor that uses a pool starts over with a fresh
     * zp__thread (and registers it again). */
    zp__tls = &thread_empty;
    zp__tls_cache = &cache_none;
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

zp__cache *zp__thread_cache(zp_pool *p)
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
        zp__cache **caches = realloc(t->caches, cap * sizeof(*caches));
        if (caches == NULL)
            return NULL;
        memset(caches + t->cap, 0, (cap - t->cap) * sizeof(*caches));
        t->caches = caches;
        t->cap = cap;
    }
    zp__cache *c = t->caches[p->slot];
    if (c && c->pool == p) {
        zp__tls_cache = c;
        return c;
    }
    /* c, if any, is left over from a destroyed pool that had this slot: the
     * destroy detached it already */
    if (zp__tls_cache == c)
        zp__tls_cache = &cache_none;
    free(c);
    t->caches[p->slot] = NULL;
    zp__cache *fresh = zp__cache_new(p, false);
    zp__registry_lock();
    if (fresh) {
        zp__registry_link(fresh);
        t->caches[p->slot] = fresh;
        zp__tls_cache = fresh;
    }
    zp__registry_unlock();
    return fresh;
}
