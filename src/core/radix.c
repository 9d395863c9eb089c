/*
 * radix.c — the address-to-slab map and pointer classification (radix.h).
 */
#include "core/radix.h"
#include "os/os.h"

#include <errno.h>

zp__radix_leaf *_Atomic zp__radix_root[(size_t)1 << ZP__ROOT_BITS];

/* Leaves are mapped directly (internal metadata, never through the user's
 * provider) and live as long as the process. */
static _Atomic(zp__slab *) *radix_slot(uintptr_t a, bool create)
{
    size_t ri = (a >> (ZP__GRAIN_SHIFT + ZP__LEAF_BITS)) &
                (((size_t)1 << ZP__ROOT_BITS) - 1);
    zp__radix_leaf *leaf = atomic_load_explicit(&zp__radix_root[ri], memory_order_acquire);
    if (leaf == NULL) {
        if (!create)
            return NULL;
        void *m = zp__os_map(sizeof(zp__radix_leaf), zp__os_page_size());
        if (m == NULL)
            return NULL;
        zp__radix_leaf *expected = NULL;
        /* release: the zero-filled leaf is visible before its pointer;
         * acquire on failure: we use the winner's leaf. */
        if (atomic_compare_exchange_strong_explicit(&zp__radix_root[ri], &expected,
                                                    (zp__radix_leaf *)m,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire)) {
            leaf = m;
        } else {
            zp__os_unmap(m, sizeof(zp__radix_leaf));
            leaf = expected;
        }
    }
    return &(*leaf)[(a >> ZP__GRAIN_SHIFT) & (((size_t)1 << ZP__LEAF_BITS) - 1)];
}

static void radix_set(uintptr_t base, size_t size, zp__slab *s)
{
    for (uintptr_t a = base; a < base + size; a += ZP__GRAIN) {
        _Atomic(zp__slab *) *slot = radix_slot(a, false);
        /* release: pairs with the acquire in zp__slab_lookup */
        atomic_store_explicit(slot, s, memory_order_release);
    }
}

/* Publishes s for every grain it covers. Fails only if a leaf cannot be
 * mapped; then nothing stays registered. */
int zp__slab_register(zp__slab *s)
{
    if ((s->base >> ZP__ADDR_BITS) != 0 || ((s->base + s->size - 1) >> ZP__ADDR_BITS) != 0)
        return -ENOMEM; /* outside the address range the map covers */
    for (uintptr_t a = s->base; a < s->base + s->size; a += ZP__GRAIN)
        if (radix_slot(a, true) == NULL)
            return -ENOMEM;
    radix_set(s->base, s->size, s);
    return 0;
}

void zp__slab_unregister(zp__slab *s)
{
    radix_set(s->base, s->size, NULL);
}

int zp__classify(const zp_pool *p, const zp__slab *s, const void *ptr)
{
    uintptr_t a = (uintptr_t)ptr;
    if (s == NULL || a < s->base || a - s->base >= s->size)
        return ZP__PTR_UNKNOWN;
    if (s->pool != p)
        return ZP__PTR_OTHER_POOL;
    if (((a - s->base) & s->mask) != 0 || (s->cls == ZP__CLASS_OVERSIZE && a != s->base))
        return ZP__PTR_INTERIOR;
    if (s->cls != ZP__CLASS_OVERSIZE &&
        a >= atomic_load_explicit(&s->carve_end, memory_order_relaxed))
        return ZP__PTR_UNCARVED;
    return ZP__PTR_OK;
}

