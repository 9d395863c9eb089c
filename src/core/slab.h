/*
 * slab.h — regions from the provider (class slabs and oversize buffers)
 * and their out-of-line metadata.
 */
#ifndef ZP_SLAB_H
#define ZP_SLAB_H

#include "core/radix.h"
#include "types.h"

/* The slab of buf if it is a buffer of p on the node of key (a cache's
 * key: p's address | its node index) that may take the bare hit path: the
 * O(1) foreign check (right pool and node in one compare, start of a
 * buffer, handed out before: a >= base holds since the slab covers a's
 * grain) and no debug, flags or budget waiters asking for the checked
 * path. NULL otherwise (including buf NULL, oversize buffers and buffers
 * of another node: those go home through the slow path). */
static inline zp__slab *zp__hot_slab(zp_pool *p, uintptr_t key, const void *buf)
{
    zp__slab *s = zp__slab_lookup(buf);
    /* one compare for "p's buffer, of the cache's node" and "p's puts may
     * go bare": put_mask is all ones, or 0 while the checked path is
     * wanted, and no slab's key is 0 (relaxed: see the budget's
     * gates_set) */
    if (ZP_UNLIKELY(s == NULL ||
                    s->key != (key & atomic_load_explicit(&p->put_mask,
                                                          memory_order_relaxed))))
        return NULL;
    uintptr_t a = (uintptr_t)buf;
    if (ZP_UNLIKELY(((a - s->base) & s->mask) != 0 ||
                    a >= atomic_load_explicit(&s->carve_end, memory_order_relaxed)))
        return NULL;
    return s;
}

/* Maps and registers a slab of class cls for the depot of node index node
 * (w: the waiter the caller retries for, or NULL). 0, ZP__EBUDGET,
 * ZP__ELOCK (ZP_LOCKED: mlock refused, detail recorded) or -ENOMEM. The
 * caller links it. */
int zp__slab_create(zp_pool *p, unsigned cls, unsigned node, size_t size,
                    const zp__waiter *w, zp__slab **out);
/* Unregisters and unmaps a slab no one holds a buffer of (an object
 * pool's constructed objects are finalised first: call with no lock). */
void zp__slab_release(zp_pool *p, zp__slab *s);
void zp__slab_list_push(zp__slab **head, zp__slab *s);
void zp__slab_list_unlink(zp__slab **head, zp__slab *s);
/* Pool destroy: every region goes back, outstanding or not. */
void zp__slabs_destroy_all(zp_pool *p);

/* Oversize buffers, one region each (core/oversize.c). count: whether the
 * get/put counts in the stats now (a batch counts its gets only once they
 * all succeeded). 0 or -EOVERFLOW, ZP__EBUDGET, -ENOMEM. */
int zp__oversize_get(zp_pool *p, size_t size, unsigned node, bool count, const zp__waiter *w,
                     void **out);
/* The same, bound to node id home (-1: not bound) and counted on node
 * index node. */
int zp__oversize_get_bound(zp_pool *p, size_t size, unsigned node, int home, bool count,
                           const zp__waiter *w, void **out);
void zp__oversize_put(zp_pool *p, void *buf, bool count);
/* n oversize buffers, all or nothing, counted once all are mapped. */
int zp__oversize_get_batch(zp_pool *p, size_t size, unsigned node, void **bufs, size_t n);
/* debug >= 1: whether ptr is the base of an oversize buffer of p already
 * put (and not mapped again since). */
bool zp__oversize_was_released(zp_pool *p, const void *ptr);

/* Region mapping shared by slabs and oversize buffers: reserve the budget,
 * map (the provider can ask zp_provider_node() for node_id), bind the
 * fresh region to node id node_id before anything touches it (-1: no
 * binding), register in the radix map. */
int zp__region_map(zp_pool *p, size_t size, int node_id, const zp__waiter *w, void **out);
/* The node id slabs of node index node are bound to, or -1 (no binding). */
int zp__node_bind_id(const zp_pool *p, unsigned node);
/* The node index lives in the low bits of the cache-line-aligned pool
 * address. */
_Static_assert(ZP__MAX_NODES <= ZP_CACHELINE, "node indexes must fit below the pool's alignment");
/* The slab key of node index node (see zp__slab.key). */
static inline uintptr_t zp__node_key(const zp_pool *p, unsigned node)
{
    return (uintptr_t)p | node;
}
void zp__region_unmap(zp_pool *p, void *m, size_t size);
zp__slab *zp__meta_get(zp_pool *p, size_t words);
void zp__meta_put(zp_pool *p, zp__slab *s);

/* ZP_HUGE_PAGES: a slab length rounded up to whole huge pages (len when
 * the pool has no huge pages). */
size_t zp__slab_len_huge(const zp_pool *p, size_t len);
/* Whether trim may release the pages of one idle buffer of csize bytes
 * (not with ZP_LOCKED, nor part of a huge page: slab.c says why). */
bool zp__slab_may_purge(const zp_pool *p, size_t csize);

/* Bytes a get of size would need to map (a slab or an oversize region). */
size_t zp__request_bytes(const zp_pool *p, size_t size);

extern const zp_provider zp__default_provider;
extern const zp_provider zp__huge_provider; /* ZP_HUGE_PAGES without a provider */

#endif /* ZP_SLAB_H */
