/*
 * registry.c — live pools, thread-cache slots and each pool's caches (see
 * registry.h).
 */
#include "core/registry.h"
#include "core/cache.h"

#include <errno.h>
#include <stdlib.h>

static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER;
static uint64_t slot_used[ZP__MAX_POOLS / 64];
static zp_pool *live_pools;

void zp__registry_lock(void)
{
    pthread_mutex_lock(&registry);
}

void zp__registry_unlock(void)
{
    pthread_mutex_unlock(&registry);
}

zp_pool *zp__registry_pools(void)
{
    return live_pools;
}

int zp__registry_add(zp_pool *p, bool want_slot)
{
    int rc = want_slot ? -ENOMEM : 0;
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
        p->live_prev = NULL;
        p->live_next = live_pools;
        if (live_pools)
            live_pools->live_prev = p;
        live_pools = p;
    }
    pthread_mutex_unlock(&registry);
    if (rc)
        return zp__error(rc,
                         "zp_pool_create: %u pools with thread caches are live already (the "
                         "limit); destroy one, or create this one with cache_depth 0",
                         ZP__MAX_POOLS);
    return 0;
}

/* Into the depots of the node c last refilled on, each under its lock
 * (a cache moving to another node folds its counters there too: see
 * rehome in cache.c). */
static void fold_counters(zp_pool *p, const zp__cache *c)
{
    /* relaxed: the owner is gone or done with the pool */
    unsigned node = atomic_load_explicit(&c->node, memory_order_relaxed);
    for (unsigned cls = 0; cls < c->nclasses; cls++) {
        zp__depot *d = zp__depot_of(p, node, cls);
        pthread_mutex_lock(&d->lock);
        zp__cache_counts(c, cls, &d->retired);
        pthread_mutex_unlock(&d->lock);
    }
}

static void unlink_cache(zp_pool *p, zp__cache *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        p->caches = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->pool = NULL;
}

void zp__registry_link(zp__cache *c)
{
    zp_pool *p = c->pool;
    c->prev = NULL;
    c->next = p->caches;
    if (p->caches)
        p->caches->prev = c;
    p->caches = c;
}

void zp__registry_detach(zp__cache *c)
{
    fold_counters(c->pool, c);
    unlink_cache(c->pool, c);
}


void zp__registry_remove(zp_pool *p, zp__detached *out)
{
    out->handles = out->handle_buffers = 0;
    pthread_mutex_lock(&registry);
    while (p->caches) {
        zp__cache *c = p->caches;
        if (c->handle)
            out->handle_buffers += zp__cache_held(c);
        /* what it holds goes back, so destroy can finalise idle objects */
        zp__cache_drain(p, c);
        fold_counters(p, c);
        unlink_cache(p, c);
        if (c->handle) {
            out->handles++;
            free(c);
        }
        /* a thread cache stays with its thread, which frees it when it
         * next looks (pool NULL) or exits */
    }
    if (p->live_prev)
        p->live_prev->live_next = p->live_next;
    else
        live_pools = p->live_next;
    if (p->live_next)
        p->live_next->live_prev = p->live_prev;
    if (p->slot != ZP__NO_SLOT)
        slot_used[p->slot / 64] &= ~((uint64_t)1 << (p->slot % 64));
    pthread_mutex_unlock(&registry);
}
