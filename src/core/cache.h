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

/* c's bin of class cls, for the hit paths: the byte offset of the bin is
 * kept opaque so the compiler adds it to the bins' address in one lea
 * (left alone it folds the bins' offset into the index: one more add),
 * and the bin's address stays in a register so its fields are addressed
 * from it. */
static inline zp__bin *zp__cache_bin(zp__cache *c, unsigned cls)
{
    uintptr_t off = (uintptr_t)cls * sizeof(zp__bin);
    ZP_KEEP_POINTER(off);
    zp__bin *b = (zp__bin *)((char *)c->bins + off);
    ZP_KEEP_POINTER(b);
    return b;
}

/* The hit paths. c must not be NULL (a front door that has no cache goes
 * to the slow path). */

/* Pops a buffer for size bytes from c's bin: NULL on a miss, or when the
 * size or the pool wants the checked path (size 0, or above hot_get). */
static inline void *zp__cache_pop(zp_pool *p, zp__cache *c, size_t size)
{
    if (ZP_LIKELY(size - 1 < p->hot_get)) {
        zp__bin *b = zp__cache_bin(c, zp__class_of(p, size));
        uint32_t n = b->count;
        if (ZP_LIKELY(n != 0)) {
            zp__counter_inc(&b->hits);
            b->count = n - 1;
            void *buf = b->items[n - 1];
            if (buf == NULL) /* never: a bin holds buffers only */
                __builtin_unreachable();
            return buf;
        }
    }
    return NULL;
}

/* Pushes buf into c's bin if it is a buffer of p on c's node that may take
 * the bare path and the bin has room; false otherwise (nothing done). */
static inline bool zp__cache_push(zp_pool *p, zp__cache *c, void *buf)
{
    zp__slab *s = zp__hot_slab(p, c->key, buf);
    if (ZP_LIKELY(s != NULL)) {
        zp__bin *b = zp__cache_bin(c, s->cls);
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
 * caller retries for (no reclaim then: see cache.c), or NULL. NULL with *err set (-ENOMEM, ZP__EBUDGET,
 * -EOVERFLOW; detail recorded) on failure. */
void *zp__cache_get_slow(zp_pool *p, zp__cache *c, size_t size, const void *caller,
                         const zp__waiter *w, int *err);
/* The same, for node index want_node (-1: the calling thread's node, which
 * becomes c's): a buffer of another node than the caller's comes straight
 * from that node's depot (or is an oversize region bound to it), counted
 * there as a get made without a cache. */
void *zp__cache_get_node(zp_pool *p, zp__cache *c, size_t size, int want_node,
                         const void *caller, const zp__waiter *w, int *err);
/* The class a budget waiter for size bytes of p takes handed-over buffers
 * of (ZP__WAITER_NO_HANDOVER above max_class: oversize buffers are not
 * handed over). */
static inline uint32_t zp__waiter_class(const zp_pool *p, size_t size)
{
    if (size == 0)
        size = 1;
    return size <= p->max_class ? zp__class_of(p, size) : ZP__WAITER_NO_HANDOVER;
}

/* A buffer a put handed over to the budget waiter w (zp__waiter.granted;
 * already counted as got): takes it from w, stamped for debug and flags as
 * a get, or NULL if w holds none. */
void *zp__cache_take_granted(zp_pool *p, zp__waiter *w, const void *caller);
/* w will not use the buffer handed to it (cancelled, or served another
 * way): back as a put through c (to the next waiter, a bin or the depot).
 * Nothing if w holds none. */
void zp__cache_return_granted(zp_pool *p, zp__cache *c, zp__waiter *w);
/* w is out of its queue and its own try got buf (or NULL), while a put may
 * also have handed it one: the buffer to use (buf, else the handed one,
 * stamped as a get; NULL if neither); a second one goes on as a put
 * through c. */
void *zp__cache_keep_one(zp_pool *p, zp__cache *c, zp__waiter *w, void *buf,
                         const void *caller);
/* The checked put (op names the public call in misuse messages). */
void zp__cache_put_slow(zp_pool *p, zp__cache *c, void *buf, const char *op);
/* n buffers, all or nothing: 0 or -ENOMEM / ZP__EBUDGET / -EOVERFLOW
 * (or what an object type's init returned). */
int zp__cache_get_batch(zp_pool *p, zp__cache *c, size_t size, void **bufs, size_t n,
                        const void *caller);
void zp__cache_put_batch(zp_pool *p, zp__cache *c, void *const *bufs, size_t n,
                         const char *op);

/* zp_reserve: count buffers for size, from the depot's idle ones and then
 * carved (constructed, for an object pool), every page of each written so
 * that it is resident, then as many as c's bin has room for into it (c:
 * the calling thread's cache, or NULL; none while budget waiters queue)
 * and the rest back to the depot, counted as nothing (no get, no put).
 * All or nothing: on failure what this call mapped is unmapped (with the
 * class's other wholly idle slabs). 0, -EINVAL (above max_class),
 * -EOVERFLOW (larger than an object pool's objects), ZP__EBUDGET,
 * -ENOMEM, or what an init returned. */
int zp__cache_reserve(zp_pool *p, zp__cache *c, size_t size, size_t count);

/* Every cached buffer back to the depot (which wakes budget waiters);
 * refills start slowly again. Owner, or the registry lock's holder for a
 * cache whose owner is gone or done with the pool (thread exit, destroy):
 * it unmaps nothing, so no object's fini runs under that lock. Returns the
 * classes that had buffers (bit cls). */
uint32_t zp__cache_drain(zp_pool *p, zp__cache *c);
/* Buffers of those classes (bits) went back to p's depot: while budget
 * waiters queue, their classes' wholly idle slabs are unmapped so a waiter
 * of any class or pool on the budget finds bytes. No lock held. */
void zp__cache_returned(zp_pool *p, uint32_t classes);
/* The owner's flush, no lock held: drain, zp__cache_returned, then the
 * retention cap and decay. */
void zp__cache_flush(zp_pool *p, zp__cache *c);

/* A new empty cache for p (cache-line aligned; free() it). NULL if out of
 * memory. */
zp__cache *zp__cache_new(zp_pool *p, bool handle);
/* Adds c's counters of class cls to *sum (any thread; relaxed reads). */
void zp__cache_counts(const zp__cache *c, unsigned cls, zp__counts *sum);
/* Buffers c holds right now (owner, or registry lock with the owner gone). */
uint64_t zp__cache_held(const zp__cache *c);

#endif /* ZP_CACHE_H */
