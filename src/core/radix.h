/*
 * radix.h — the map from any address to its slab, and what a pointer is.
 *
 * Every region (a class slab or one oversize buffer) is grain-aligned and a
 * whole number of grains long. The map sends each grain to its slab, so any
 * pointer finds its slab in two loads without touching the pointer's memory
 * — that is also how foreign pointers are caught. The map is global (shared
 * by all pools) so a buffer of another pool is recognised as such.
 */
#ifndef ZP_RADIX_H
#define ZP_RADIX_H

#include "types.h"

typedef _Atomic(zp__slab *) zp__radix_leaf[(size_t)1 << ZP__LEAF_BITS];
extern zp__radix_leaf *_Atomic zp__radix_root[(size_t)1 << ZP__ROOT_BITS];

/* Slab of any address, or NULL. Addresses above 2^48 alias lower ones here;
 * callers always bound-check the address against the slab they get. The
 * acquire loads pair with the release stores in slab registration, so a
 * slab seen here is fully initialised. */
static inline zp__slab *zp__slab_lookup(const void *ptr)
{
    uintptr_t a = (uintptr_t)ptr;
    zp__radix_leaf *leaf = atomic_load_explicit(
        &zp__radix_root[(a >> (ZP__GRAIN_SHIFT + ZP__LEAF_BITS)) &
                        (((uintptr_t)1 << ZP__ROOT_BITS) - 1)],
        memory_order_acquire);
    if (ZP_UNLIKELY(leaf == NULL))
        return NULL;
    return atomic_load_explicit(
        &(*leaf)[(a >> ZP__GRAIN_SHIFT) & (((uintptr_t)1 << ZP__LEAF_BITS) - 1)],
        memory_order_acquire);
}

/* Why a pointer is not a live buffer of a pool (0 = it is one). */
enum {
    ZP__PTR_OK = 0,
    ZP__PTR_UNKNOWN,    /* not from any zeropool pool */
    ZP__PTR_OTHER_POOL, /* a buffer of another pool */
    ZP__PTR_INTERIOR,   /* inside a buffer, not at its start */
    ZP__PTR_UNCARVED,   /* in a slab, but never handed out */
    ZP__PTR_RELEASED,   /* an oversize buffer of this pool already put
                           (debug >= 1; zp__classify never says so) */
};
int zp__classify(const zp_pool *p, const zp__slab *s, const void *ptr);

/* Publishes s for every grain it covers: 0, or -ENOMEM if a leaf cannot be
 * mapped (then nothing stays registered). */
int zp__slab_register(zp__slab *s);
void zp__slab_unregister(zp__slab *s);

#endif /* ZP_RADIX_H */
