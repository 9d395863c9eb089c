/*
 * cache.h — the one cache, whoever owns it: a thread (core/thread.c) or a
 * handle (api/handle.c). Every operation takes the cache as a parameter;
 * NULL means "no cache" (a pool with cache_depth 0), served by the depot.
 *
 * The hit paths are inline: a pop or a push on the class's bin and one
 * owner-only counter store; no lock, no atomic read-modify-write, no shared
 * cache line written. Everything else — a miss, an overflow, batches,
 * debug checks, flags, oversize, misuse, budget waiters — is out of line in
 * cache.c, one routine for one buffer or many. No other file touches a
 * bin's fields.
 */
#ifndef ZP_CACHE_H
#define ZP_CACHE_H

#include "core/slab.h"
#include "types.h"

/* A buffer of class cls from c's bin, or NULL (a miss, no cache, or the
 * pool wants the checked path: then cls >= hot_classes). */
static inline void *zp__cache_try_get(zp_pool *p, zp__cache *c, unsigned cls)
{
    if (ZP_LIKELY(c != NULL &&
                  cls < atomic_load_explicit(&p->hot_classes, memory_order_relaxed))) {
        zp__bin *b = &c->bins[cls];
        uint32_t n = b->count;
        if (ZP_LIKELY(n != 0)) {
            void *buf = b->items[n - 1];
            b->count = n - 1;
            zp__counter_inc(&b->hits);
            return buf;
        }
    }
    return NULL;
}

/* Caches buf if it is a buffer of p that may take the bare path and its
 * bin has room; false otherwise (nothing done). */
static inline bool zp__cache_try_put(zp_pool *p, zp__cache *c, void *buf)
{
    zp__slab *s = zp__hot_slab(p, buf);
    if (ZP_LIKELY(c != NULL && s != NULL)) {
        zp__bin *b = &c->bins[s->cls];
        uint32_t n = b->count;
        if (ZP_LIKELY(n < b->cap)) {
            b->items[n] = buf;
            b->count = n + 1;
            zp__counter_inc(&b->puts);
            return true;
        }
    }
    return false;
}

/* The checked get: one buffer of size for c (hit, refill, oversize, budget
 * reclaim and retry), stamped for debug and flags. w: the budget waiter the
 * caller retries for, or NULL. NULL with *err set (-ENOMEM, -ENOBUFS,
 * -EOVERFLOW; detail recorded) on failure. */
void *zp__cache_get_slow(zp_pool *p, zp__cache *c, size_t size, const void *caller,
                         const zp__waiter *w, int *err);
/* The checked put (op names the public call in misuse messages). */
void zp__cache_put_slow(zp_pool *p, zp__cache *c, void *buf, const char *op);
/* n buffers, all or nothing: 0 or -ENOMEM / -ENOBUFS / -EOVERFLOW. */
int zp__cache_get_batch(zp_pool *p, zp__cache *c, size_t size, void **bufs, size_t n,
                        const void *caller);
void zp__cache_put_batch(zp_pool *p, zp__cache *c, void *const *bufs, size_t n,
                         const char *op);

/* Every cached buffer back to the depot (waking waiters; while any wait,
 * the wholly idle slabs of those classes are unmapped too); refills start
 * slowly again. Returns the bytes so given back to the provider. Owner, or
 * anyone holding the registry lock for a cache whose owner is gone. */
size_t zp__cache_drain(zp_pool *p, zp__cache *c);
/* drain, then the retention cap and decay (owner only, no lock held). */
void zp__cache_flush(zp_pool *p, zp__cache *c);

/* A new empty cache for p (calloc'd; free() it). NULL if out of memory. */
zp__cache *zp__cache_new(zp_pool *p, bool handle);
/* Adds c's counters of class cls to *sum (any thread; relaxed reads). */
void zp__cache_counts(const zp__cache *c, unsigned cls, zp__counts *sum);
/* Buffers c holds right now (owner, or registry lock with the owner gone). */
uint64_t zp__cache_held(const zp__cache *c);

#endif /* ZP_CACHE_H */
