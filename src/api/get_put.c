/*
 * get_put.c — the front doors that use the calling thread's cache: zp_get,
 * zp_put, their batches, zp_trim, zp_reserve and zp_capacity.
 *
 * Each reads the thread's cache once (TLS) and hands it to the engine. The
 * hit paths are inline (core/cache.h); a miss leaves through one call that
 * creates the thread's cache if it has none yet.
 */
#include "api/api.h"
#include "core/cache.h"
#include "core/slab.h"
#include "os/os.h"
#include "stats/stats.h"
#include "core/thread.h"
#include "policy/trim.h"

#include <errno.h>

int zp__null_arg(const char *fn, const char *what)
{
    return zp__error(-EINVAL, "%s: %s is NULL", fn, what);
}

static ZP_NOINLINE ZP_COLD void *get_null(void)
{
    errno = -zp__null_arg("zp_get", "pool");
    return NULL;
}

/* The miss path: the thread's cache (created on first use) and the checked
 * get; budget failures are counted here, at the front door. */
static ZP_NOINLINE void *get_slow(zp_pool *p, size_t size, const void *caller)
{
    int err;
    void *buf = zp__cache_get_slow(p, zp__thread_cache(p), size, caller, NULL, &err);
    if (buf == NULL) {
        if (err == ZP__EBUDGET && p->budget)
            zp__budget_count_failure(p->budget);
        errno = -zp__public_err(err);
    }
    return buf;
}

void *zp_get(zp_pool *p, size_t size)
{
    if (ZP_UNLIKELY(p == NULL))
        return get_null();
    zp__cache *c = zp__thread_cache_last(p);
    if (ZP_LIKELY(c != NULL)) {
        void *buf = zp__cache_pop(p, c, size);
        if (ZP_LIKELY(buf != NULL))
            return buf;
    }
    return get_slow(p, size, ZP_CALLER());
}

static ZP_NOINLINE void put_slow(zp_pool *p, void *buf)
{
    zp__cache_put_slow(p, zp__thread_cache(p), buf, "zp_put");
}

void zp_put(zp_pool *p, void *buf)
{
    if (ZP_UNLIKELY(p == NULL))
        return; /* the NULL-pool rule: nothing happens, buf stays the caller's */
    zp__cache *c = zp__thread_cache_last(p);
    if (ZP_LIKELY(c != NULL) && ZP_LIKELY(zp__cache_push(p, c, buf)))
        return;
    put_slow(p, buf);
}

int zp_get_batch(zp_pool *p, size_t size, void **bufs, size_t n)
{
    if (p == NULL)
        return zp__null_arg("zp_get_batch", "pool");
    if (bufs == NULL && n > 0)
        return zp__null_arg("zp_get_batch", "bufs");
    int rc = zp__cache_get_batch(p, n ? zp__thread_cache_now(p) : NULL, size, bufs, n,
                                 ZP_CALLER());
    if (rc == ZP__EBUDGET && p->budget)
        zp__budget_count_failure(p->budget);
    return zp__public_err(rc);
}

void zp_put_batch(zp_pool *p, void *const *bufs, size_t n)
{
    if (p == NULL || bufs == NULL || n == 0)
        return;
    zp__cache_put_batch(p, zp__thread_cache_now(p), bufs, n, "zp_put_batch");
}

size_t zp_trim(zp_pool *p, size_t keep_bytes)
{
    if (p == NULL)
        return 0;
    /* the calling thread's cache first, so its buffers can go too */
    zp__cache *c = zp__thread_cache_peek(p);
    if (c != NULL)
        zp__cache_drain(p, c);
    return zp__trim_pool(p, keep_bytes, true);
}

int zp_reserve(zp_pool *p, size_t size, size_t count)
{
    if (p == NULL)
        return zp__null_arg("zp_reserve", "pool");
    /* the calling thread's cache too, made now (a cache is written whole
     * when made) and given what its bin holds: its first gets are hits
     * that fault on nothing (no cache: all go to the depot) */
    int rc = zp__cache_reserve(p, count != 0 ? zp__thread_cache(p) : NULL, size, count);
    if (rc == ZP__EBUDGET && p->budget)
        zp__budget_count_failure(p->budget);
    return zp__public_err(rc);
}

size_t zp_capacity(const zp_pool *p, const void *buf)
{
    if (p == NULL || buf == NULL)
        return 0;
    const zp__slab *s = zp__slab_lookup(buf);
    if (zp__classify(p, s, buf) != ZP__PTR_OK)
        return 0;
    if (s->cls == ZP__CLASS_OVERSIZE)
        return s->size;
    return p->obj.size ? p->obj.size : s->stride;
}

/* ------------------------------------------------------------------ NUMA */

void *zp_get_on_node(zp_pool *p, size_t size, int node)
{
    if (p == NULL)
        return get_null();
    int n = zp__stats_node_index(p, node);
    if (n < 0) {
        errno = -zp__error(-EINVAL, "zp_get_on_node: node %d is not an online NUMA node of "
                                    "this machine (%d online)", node,
                           zp__os_topology_get()->nnodes);
        return NULL;
    }
    int err = 0;
    void *buf;
    if (p->nnodes == 1 && size > p->max_class && p->obj.size == 0) {
        /* one depot set (ZP_NUMA_NONE, ZP_NUMA_BIND, one node): an oversize
         * buffer is still bound to the node asked for */
        err = zp__oversize_get_bound(p, size, 0, p->node_ids[0] == node ? zp__node_bind_id(p, 0)
                                                                        : node,
                                     true, NULL, &buf);
        if (err == ZP__EBUDGET && p->budget)
            zp__budget_count_failure(p->budget);
        if (err) {
            errno = -zp__public_err(err);
            return NULL;
        }
        return buf;
    }
    /* one depot set: the pool's placement; else that node's depots */
    if ((unsigned)n >= p->nnodes || p->nnodes == 1)
        n = -1;
    buf = zp__cache_get_node(p, zp__thread_cache(p), size, n, ZP_CALLER(), NULL, &err);
    if (buf == NULL) {
        if (err == ZP__EBUDGET && p->budget)
            zp__budget_count_failure(p->budget);
        errno = -zp__public_err(err);
    }
    return buf;
}

int zp_node_of(const zp_pool *p, const void *buf)
{
    if (p == NULL || buf == NULL)
        return -1;
    const zp__slab *s = zp__slab_lookup(buf);
    if (zp__classify(p, s, buf) != ZP__PTR_OK)
        return -1;
    if (s->home >= 0)
        return s->home; /* bound there */
    if (zp__os_topology_get()->nnodes > 1) {
        /* not bound (ZP_NUMA_NONE): where the kernel put it */
        int node = zp__os_node_of_addr(buf);
        if (node >= 0)
            return node;
    }
    return p->node_ids[s->node];
}
