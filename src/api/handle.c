/*
 * handle.c — cache handles: caches owned by their caller instead of a
 * thread (zeropool.h, "cache handles"). The same cache and the same code
 * as a thread's; only the owner differs, so a handle never touches TLS.
 */
#include "api/api.h"
#include "core/cache.h"
#include "core/registry.h"
#include "policy/trim.h"

#include <errno.h>
#include <stdlib.h>

int zp_cache_create(zp_pool *p, zp_cache **out)
{
    if (out == NULL)
        return zp__null_arg("zp_cache_create", "out");
    *out = NULL;
    if (p == NULL)
        return zp__null_arg("zp_cache_create", "pool");
    zp__cache *c = zp__cache_new(p, true);
    if (c == NULL)
        return zp__error(-ENOMEM, "zp_cache_create: out of memory for the cache");
    zp__registry_lock();
    zp__registry_link(c);
    zp__registry_unlock();
    *out = c;
    return 0;
}

void zp_cache_destroy(zp_cache *c)
{
    if (c == NULL)
        return;
    zp_pool *p = c->pool;
    zp__registry_lock();
    zp__registry_detach(c); /* counters folded: the cache is the pool's no more */
    zp__registry_unlock();
    zp__cache_flush(p, c); /* no lock held: may unmap for waiters, run fini */
    free(c);
}

static ZP_NOINLINE void *cache_get_slow(zp_cache *c, size_t size, const void *caller)
{
    if (c == NULL) {
        errno = -zp__null_arg("zp_cache_get", "cache");
        return NULL;
    }
    int err;
    void *buf = zp__cache_get_slow(c->pool, c, size, caller, NULL, &err);
    if (buf == NULL) {
        if (err == ZP__EBUDGET && c->pool->budget)
            zp__budget_count_failure(c->pool->budget);
        errno = -zp__public_err(err);
    }
    return buf;
}

void *zp_cache_get(zp_cache *c, size_t size)
{
    if (ZP_LIKELY(c != NULL)) {
        void *buf = zp__cache_pop(c->pool, c, size);
        if (ZP_LIKELY(buf != NULL))
            return buf;
    }
    return cache_get_slow(c, size, ZP_CALLER());
}

void zp_cache_put(zp_cache *c, void *buf)
{
    if (ZP_UNLIKELY(c == NULL))
        return; /* the NULL rule: nothing happens, buf stays the caller's */
    if (ZP_LIKELY(zp__cache_push(c->pool, c, buf)))
        return;
    zp__cache_put_slow(c->pool, c, buf, "zp_cache_put");
}

int zp_cache_get_batch(zp_cache *c, size_t size, void **bufs, size_t n)
{
    if (c == NULL)
        return zp__null_arg("zp_cache_get_batch", "cache");
    if (bufs == NULL && n > 0)
        return zp__null_arg("zp_cache_get_batch", "bufs");
    int rc = zp__cache_get_batch(c->pool, c, size, bufs, n, ZP_CALLER());
    if (rc == ZP__EBUDGET && c->pool->budget)
        zp__budget_count_failure(c->pool->budget);
    return zp__public_err(rc);
}

void zp_cache_put_batch(zp_cache *c, void *const *bufs, size_t n)
{
    if (c == NULL || bufs == NULL || n == 0)
        return;
    zp__cache_put_batch(c->pool, c, bufs, n, "zp_cache_put_batch");
}

void zp_cache_flush(zp_cache *c)
{
    if (c != NULL)
        zp__cache_flush(c->pool, c);
}
