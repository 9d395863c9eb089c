/*
 * thread.h — the calling thread as a cache owner: one cache per pool it
 * uses, found through an initial-exec TLS pointer and the pool's slot; the
 * caches go back to their pools when the thread exits. The public front
 * doors read the TLS here, once, and pass the cache on.
 */
#ifndef ZP_THREAD_H
#define ZP_THREAD_H

#include "types.h"

typedef struct zp__thread {
    uint32_t cap;             /* entries in caches */
    zp__cache **caches;       /* indexed by pool slot */
} zp__thread;

/* Until a thread touches a pool this points to a shared empty zp__thread
 * with no slots, so the lookup below needs no NULL check. */
extern __thread zp__thread *zp__tls ZP_TLS_IE;

/* The cache this thread used last (set by zp__thread_cache), so the hit
 * paths find it in one TLS load and one compare; never NULL: until the
 * thread has a cache, and after its caches are freed, it points to a
 * shared empty cache whose pool is NULL (the front doors check the pool
 * for NULL before looking). A cache whose pool was destroyed keeps its
 * memory until its thread frees it, with pool NULL, so a stale pointer
 * here never matches. */
extern __thread zp__cache *zp__tls_cache ZP_TLS_IE;

/* The hit paths' lookup: the calling thread's cache for p (p not NULL) if
 * it is the one it used last, else NULL (then zp__thread_cache). */
static inline zp__cache *zp__thread_cache_last(const zp_pool *p)
{
    zp__cache *c = zp__tls_cache;
    return ZP_LIKELY(c->pool == p) ? c : NULL;
}

/* The calling thread's cache for p if it has one already, else NULL. */
static inline zp__cache *zp__thread_cache_peek(const zp_pool *p)
{
    zp__thread *t = zp__tls;
    uint32_t slot = p->slot;
    if (ZP_LIKELY(slot < t->cap)) {
        zp__cache *c = t->caches[slot];
        if (ZP_LIKELY(c != NULL && c->pool == p))
            return c;
    }
    return NULL;
}

/* The calling thread's cache for p, created on first use (and made the
 * one zp__thread_cache_last finds); NULL if p has no thread caches
 * (cache_depth 0) or memory is short (the caller then goes to the depot
 * directly). */
zp__cache *zp__thread_cache(zp_pool *p);

/* zp__thread_cache with the hit paths' lookup first. */
static inline zp__cache *zp__thread_cache_now(zp_pool *p)
{
    zp__cache *c = zp__thread_cache_last(p);
    return ZP_LIKELY(c != NULL) ? c : zp__thread_cache(p);
}

#endif /* ZP_THREAD_H */
