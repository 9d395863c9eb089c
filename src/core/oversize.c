/*
 * oversize.c — buffers above max_class: one region each, mapped on get and
 * unmapped on put, listed on the pool (pool lock) so destroy finds them.
 *
 * At debug >= 1 the pool remembers the bases of the last ZP__RELEASED_MAX
 * oversize buffers put, so a second put of one is reported as a double put
 * rather than as a foreign pointer (its region is gone from the slab map).
 */
#include "core/slab.h"
#include "debug/debug.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Pool lock held. */
static void released_forget(zp_pool *p, uintptr_t base)
{
    for (uint32_t i = 0; i < ZP__RELEASED_MAX; i++)
        if (p->released[i] == base)
            p->released[i] = 0;
}

bool zp__oversize_was_released(zp_pool *p, const void *ptr)
{
    if (p->released == NULL || ptr == NULL)
        return false;
    bool found = false;
    pthread_mutex_lock(&p->lock);
    for (uint32_t i = 0; i < ZP__RELEASED_MAX && !found; i++)
        found = p->released[i] == (uintptr_t)ptr;
    pthread_mutex_unlock(&p->lock);
    return found;
}

int zp__oversize_get(zp_pool *p, size_t size, unsigned node, bool count, const zp__waiter *w,
                     void **out)
{
    return zp__oversize_get_bound(p, size, node, zp__node_bind_id(p, node), count, w, out);
}

int zp__oversize_get_bound(zp_pool *p, size_t size, unsigned node, int home, bool count,
                           const zp__waiter *w, void **out)
{
    if (size > ZP__MAX_REQUEST)
        return zp__error(-EOVERFLOW, "zp_get: size %zu can never be served (limit %zu)",
                         size, ZP__MAX_REQUEST);
    size_t len = (size + ZP__GRAIN - 1) & ~(ZP__GRAIN - 1);
    if (p->budget && len > zp__budget_max(p->budget))
        return zp__error(ZP__EBUDGET, "zp_get: %zu bytes is more than the whole budget (%zu)",
                         len, zp__budget_max(p->budget));
    zp__slab *s = zp__meta_get(p, 0);
    if (s == NULL)
        return zp__error(-ENOMEM, "zp_get: no memory for an oversize buffer's metadata");
    void *m;
    int rc = zp__region_map(p, len, home, w, &m);
    if (rc) {
        zp__meta_put(p, s);
        if (rc == ZP__ELOCK)
            return -ENOMEM; /* the detail naming RLIMIT_MEMLOCK is recorded */
        if (rc == ZP__EBUDGET)
            return zp__error(rc, "zp_get: the budget has no room for an oversize buffer of "
                                 "%zu bytes", len);
        return zp__error(rc, "zp_get: the provider could not map %zu bytes for an oversize "
                             "buffer", len);
    }
    s->key = zp__node_key(p, node);
    s->node = node;
    s->home = home;
    s->pool = p;
    s->base = (uintptr_t)m;
    s->mask = 0;
    s->stride = len;
    /* nothing "carved": the bare put path (zp__hot_slab) never takes an
     * oversize buffer (zp__classify does not look at carve_end for them) */
    atomic_store_explicit(&s->carve_end, (uintptr_t)m, memory_order_relaxed);
    s->cls = ZP__CLASS_OVERSIZE;
    s->nbufs = 1;
    s->size = len;
    if (zp__slab_register(s) != 0) {
        zp__region_unmap(p, m, len);
        zp__meta_put(p, s);
        return zp__error(-ENOMEM, "zp_get: no memory for the slab map");
    }
    pthread_mutex_lock(&p->lock);
    zp__slab_list_push(&p->oversize, s);
    p->over[node].gets += count;
    p->over[node].live++;
    p->over[node].bytes += len;
    if (p->released)
        released_forget(p, (uintptr_t)m); /* the address is live again */
    pthread_mutex_unlock(&p->lock);
    if (p->flags & ZP_ZERO_ON_GET)
        memset(m, 0, len);
    *out = m;
    return 0;
}

void zp__oversize_put(zp_pool *p, void *buf, bool count)
{
    pthread_mutex_lock(&p->lock);
    /* Re-check under the lock: two racing puts of one buffer must not both
     * release it. */
    zp__slab *s = zp__slab_lookup(buf);
    if (s == NULL || s->pool != p || s->cls != ZP__CLASS_OVERSIZE ||
        s->base != (uintptr_t)buf) {
        pthread_mutex_unlock(&p->lock);
        zp__misuse(p, ZP_MISUSE_DOUBLE_PUT, buf,
                   "zeropool: zp_put(pool=%p, %p): double put: this oversize buffer was "
                   "already put",
                   (void *)p, buf);
        return;
    }
    zp__slab_unregister(s);
    zp__slab_list_unlink(&p->oversize, s);
    p->over[s->node].puts += count;
    p->over[s->node].live--;
    p->over[s->node].bytes -= s->size;
    if (p->released) {
        p->released[p->released_next] = (uintptr_t)buf;
        p->released_next = (p->released_next + 1) % ZP__RELEASED_MAX;
    }
    size_t len = s->size;
    pthread_mutex_unlock(&p->lock);

    if (p->flags & ZP_WIPE_ON_PUT)
        explicit_bzero(buf, len);
    zp__region_unmap(p, buf, len);
    zp__meta_put(p, s);
}

int zp__oversize_get_batch(zp_pool *p, size_t size, unsigned node, void **bufs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = zp__oversize_get(p, size, node, false, NULL, &bufs[i]);
        if (rc) {
            for (size_t j = 0; j < i; j++)
                zp__oversize_put(p, bufs[j], false);
            return zp__error(rc, "zp_get_batch: %zu of %zu oversize buffers of %zu bytes "
                                 "mapped before the provider failed; none taken",
                             i, n, size);
        }
    }
    pthread_mutex_lock(&p->lock);
    p->over[node].gets += n;
    pthread_mutex_unlock(&p->lock);
    return 0;
}
