/*
 * object.c — constructing and finalising pooled objects (see object.h).
 */
#include "core/object.h"
#include "core/radix.h"

#include <errno.h>

/* relaxed on the bits: a bit only has to be exact for its own object, and
 * the object itself reaches other threads through the depot's lock or the
 * caller's own hand-over */
static bool built(const zp__slab *s, size_t i)
{
    return (atomic_load_explicit(&s->built[i / 64], memory_order_relaxed) >> (i % 64)) & 1;
}

int zp__object_construct(zp_pool *p, void *const *items, size_t n)
{
    if (!p->obj.built)
        return 0;
    for (size_t k = 0; k < n; k++) {
        zp__slab *s = zp__slab_lookup(items[k]);
        size_t i = zp__slab_index(s, items[k]);
        if (built(s, i))
            continue;
        if (p->obj.init != NULL) {
            int rc = p->obj.init(items[k], p->obj.arg);
            if (rc != 0) {
                int err = rc > 0 ? -rc : rc;
                return zp__error(err, "zp_get: the object type's init failed with %d", rc);
            }
        }
        atomic_fetch_or_explicit(&s->built[i / 64], (uint64_t)1 << (i % 64),
                                 memory_order_relaxed);
    }
    return 0;
}

size_t zp__object_partition(zp_pool *p, void **items, size_t n)
{
    if (!p->obj.built)
        return n;
    size_t front = 0;
    for (size_t k = 0; k < n; k++) {
        zp__slab *s = zp__slab_lookup(items[k]);
        if (built(s, zp__slab_index(s, items[k]))) {
            void *t = items[front];
            items[front++] = items[k];
            items[k] = t;
        }
    }
    return front;
}

void zp__object_fini(zp_pool *p, void *obj)
{
    if (!p->obj.built)
        return;
    zp__slab *s = zp__slab_lookup(obj);
    size_t i = zp__slab_index(s, obj);
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (atomic_fetch_and_explicit(&s->built[i / 64], ~bit, memory_order_relaxed) & bit) {
        if (p->obj.fini != NULL)
            p->obj.fini(obj, p->obj.arg);
    }
}

void zp__object_fini_slab(zp_pool *p, zp__slab *s)
{
    if (!p->obj.built || s->built == NULL)
        return;
    for (uint32_t i = 0; i < s->nbufs; i++) {
        if (!built(s, i))
            continue;
        atomic_fetch_and_explicit(&s->built[i / 64], ~((uint64_t)1 << (i % 64)),
                                  memory_order_relaxed);
        if (p->obj.fini != NULL)
            p->obj.fini((void *)(s->base + (uintptr_t)i * s->stride), p->obj.arg);
    }
}
