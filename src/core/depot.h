/*
 * depot.h — per class, the shared store of idle buffers between the caches
 * and the slabs: magazines exchanged whole under one lock acquisition, and
 * fresh buffers carved from slabs when it is empty.
 */
#ifndef ZP_DEPOT_H
#define ZP_DEPOT_H

#include "types.h"

/* A depot for buffers of stride bytes carved from slabs of slab_len bytes,
 * exchanging batch at a time with caches whose bins hold cache_start
 * buffers, growing up to cache_cap. */
int zp__depot_init(zp__depot *d, size_t stride, size_t slab_len, uint32_t batch,
                   uint32_t cache_start, uint32_t cache_cap);
void zp__depot_fini(zp__depot *d);
/* Takes the lock; a conflict (lock already held) is counted, and
 * returned (true). */
bool zp__depot_lock(zp__depot *d);

/* Takes up to want buffers of class cls from node index node's depot into
 * out: idle ones, or when there are none, freshly carved (*carved set; the
 * slab is bound to the node). count_direct of them are counted
 * as gets made without a cache. One lock acquisition. w: the budget waiter
 * the caller retries for, or NULL. Returns 0 with *taken >= 1, or -ENOMEM /
 * ZP__EBUDGET (detail recorded) with nothing taken. *contended: whether
 * another thread held the lock (the cache grows its exchanges then). */
int zp__depot_take(zp_pool *p, unsigned cls, unsigned node, void **out, uint32_t want,
                   uint32_t count_direct, const zp__waiter *w, uint32_t *taken, bool *carved,
                   bool *contended);

/* Returns n buffers of class cls, each to its own node's depot
 * (count_direct: counted as puts made without a cache) and wakes budget
 * waiters. Never fails, never allocates. Returns whether another thread
 * held a lock it took. */
bool zp__depot_give(zp_pool *p, unsigned cls, void *const *items, uint32_t n,
                    bool count_direct);
/* Returns n buffers of class cls, all of node index node, put on a thread
 * of another node: counted there as puts (without a cache) and remote
 * puts. One lock acquisition. */
void zp__depot_give_home(zp_pool *p, unsigned node, unsigned cls, void *const *items,
                         uint32_t n);

/* Adds gets made without a cache to node index node's depot of cls (a
 * batch counts once it succeeded). */
void zp__depot_count_direct(zp_pool *p, unsigned cls, unsigned node, const zp__counts *k);

/* Calls fn on every idle buffer of the depot; the caller has it to itself
 * (pool destroy). */
void zp__depot_each_idle(zp__depot *d, void (*fn)(void *buf, void *arg), void *arg);

/* For trim, depot lock held: moves every idle buffer into items (nfree of
 * them), hottest first, leaving the depot empty; and puts n of them back,
 * hottest on top, freeing magazines the carved buffers no longer need. */
void zp__depot_gather(zp__depot *d, void **items);
void zp__depot_rebuild(zp__depot *d, void **items, size_t n);

#endif /* ZP_DEPOT_H */
