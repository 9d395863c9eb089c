/*
 * The test provider (zp_test.h): maps with mmap or from an arena, keeps a
 * table of live regions, counts every call, fails or blocks a chosen call,
 * and charges what it maps against a bound.
 */
#include "zp_test.h"

zpt_provider *zpt_provider_new(void)
{
    zpt_provider *pv = (zpt_provider *)calloc(1, sizeof(*pv));
    if (!pv)
        abort();
    pthread_mutex_init(&pv->lock, NULL);
    return pv;
}

void zpt_provider_free(zpt_provider *pv)
{
    if (!pv)
        return;
    if (pv->arena)
        munmap(pv->arena, pv->chunk * pv->nchunks);
    free(pv->chunk_used);
    pthread_mutex_destroy(&pv->lock);
    free(pv);
}

void zpt_provider_arena(zpt_provider *pv, size_t chunk, size_t nchunks)
{
    pv->arena = (unsigned char *)zpt_raw_map(chunk * nchunks, chunk);
    pv->chunk_used = (unsigned char *)calloc(nchunks, 1);
    if (!pv->arena || !pv->chunk_used)
        abort();
    pv->chunk = chunk;
    pv->nchunks = nchunks;
}

void zpt_provider_attach(zp_config *cfg, zpt_provider *pv)
{
    cfg->provider.map = zpt_provider_map;
    cfg->provider.unmap = zpt_provider_unmap;
    cfg->provider.ctx = pv;
}

void *zpt_raw_map(size_t size, size_t align)
{
    size_t page = zpt_page_size(), total;
    unsigned char *p, *start;
    if (align <= page) {
        p = (unsigned char *)mmap(NULL, size, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    total = size + align;
    if (total < size)
        return NULL;
    p = (unsigned char *)mmap(NULL, total, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    start = (unsigned char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
    if (start > p)
        munmap(p, (size_t)(start - p));
    if (p + total > start + size)
        munmap(start + size, (size_t)(p + total - (start + size)));
    return start;
}

/* A free arena chunk for a region of size and align, or NULL. */
static void *arena_take(zpt_provider *pv, size_t size, size_t align)
{
    void *p = NULL;
    size_t i;
    if (!pv->arena || size != pv->chunk || align > pv->chunk)
        return NULL;
    pthread_mutex_lock(&pv->lock);
    for (i = 0; i < pv->nchunks && !p; i++)
        if (!pv->chunk_used[i]) {
            pv->chunk_used[i] = 1;
            p = pv->arena + i * pv->chunk;
        }
    pthread_mutex_unlock(&pv->lock);
    return p;
}

/* 1 if ptr is an arena chunk (given back to the arena), 0 if not. */
static int arena_give(zpt_provider *pv, void *ptr)
{
    unsigned char *p = (unsigned char *)ptr;
    if (!pv->arena || p < pv->arena || p >= pv->arena + pv->chunk * pv->nchunks)
        return 0;
    pthread_mutex_lock(&pv->lock);
    pv->chunk_used[(size_t)(p - pv->arena) / pv->chunk] = 0;
    pthread_mutex_unlock(&pv->lock);
    return 1;
}

/* Charges size against the bound before a map; the peak follows. */
static void charge(zpt_provider *pv, size_t size)
{
    uint64_t now = atomic_fetch_add(&pv->charged, size) + size;
    uint64_t peak = atomic_load(&pv->peak);
    while (now > peak && !atomic_compare_exchange_weak(&pv->peak, &peak, now))
        ;
    if (pv->bound && now > pv->bound)
        atomic_fetch_add(&pv->over, 1);
}

void *zpt_provider_map(size_t size, size_t align, void *ctx)
{
    zpt_provider *pv = (zpt_provider *)ctx;
    size_t call = atomic_fetch_add(&pv->map_calls, 1) + 1;
    size_t fail = atomic_load(&pv->fail_nth), block = atomic_load(&pv->block_nth);
    size_t fail_from = atomic_load(&pv->fail_from);
    void *p;
    if (size == 0 || !zpt_is_pow2(align) || align < zpt_page_size())
        atomic_fetch_add(&pv->bad_args, 1);
    charge(pv, size);
    if (block && call == block) {
        atomic_store(&pv->blocked, 1);
        while (!atomic_load(&pv->release))
            usleep(1000);
    }
    if (atomic_load(&pv->fail_all) || (fail && call == fail) ||
        (fail_from && call >= fail_from)) {
        atomic_fetch_add(&pv->injected, 1);
        atomic_fetch_sub(&pv->charged, size);
        return NULL;
    }
    p = arena_take(pv, size, align);
    if (!p)
        p = zpt_raw_map(size, align);
    if (!p) {
        atomic_fetch_sub(&pv->charged, size);
        return NULL;
    }
    pthread_mutex_lock(&pv->lock);
    if (pv->nlive < ZPT_MAX_REGIONS) {
        pv->live[pv->nlive].ptr = p;
        pv->live[pv->nlive].size = size;
        pv->nlive++;
    } else {
        atomic_fetch_add(&pv->bad_args, 1); /* table full: the test is too big */
    }
    pthread_mutex_unlock(&pv->lock);
    atomic_fetch_add(&pv->maps, 1);
    atomic_fetch_add(&pv->bytes_live, size);
    return p;
}

void zpt_provider_unmap(void *ptr, size_t size, void *ctx)
{
    zpt_provider *pv = (zpt_provider *)ctx;
    size_t i;
    int found = 0;
    if (pv->before_unmap)
        pv->before_unmap(ptr, size, pv->before_unmap_arg);
    pthread_mutex_lock(&pv->lock);
    for (i = 0; i < pv->nlive; i++) {
        if (pv->live[i].ptr == ptr) {
            if (pv->live[i].size == size) {
                pv->live[i] = pv->live[--pv->nlive];
                found = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&pv->lock);
    if (found) {
        if (!arena_give(pv, ptr))
            munmap(ptr, size);
        atomic_fetch_add(&pv->unmaps, 1);
        atomic_fetch_sub(&pv->bytes_live, size);
    } else {
        atomic_fetch_add(&pv->bad_unmaps, 1); /* unknown: left mapped */
    }
    atomic_fetch_sub(&pv->charged, size); /* after the unmap */
}

int zpt_provider_owns(zpt_provider *pv, const void *p)
{
    unsigned char *base;
    size_t size;
    return zpt_provider_region(pv, p, &base, &size);
}

int zpt_provider_region(zpt_provider *pv, const void *p, unsigned char **base,
                        size_t *size)
{
    size_t i;
    int found = 0;
    uintptr_t a = (uintptr_t)p;
    pthread_mutex_lock(&pv->lock);
    for (i = 0; i < pv->nlive && !found; i++) {
        uintptr_t s = (uintptr_t)pv->live[i].ptr;
        if (a >= s && a < s + pv->live[i].size) {
            *base = (unsigned char *)pv->live[i].ptr;
            *size = pv->live[i].size;
            found = 1;
        }
    }
    pthread_mutex_unlock(&pv->lock);
    return found;
}

int zpt_provider_each(zpt_provider *pv, int (*fn)(void *ptr, size_t size, void *arg),
                      void *arg)
{
    size_t i;
    int rc = 0;
    pthread_mutex_lock(&pv->lock);
    for (i = 0; i < pv->nlive && rc == 0; i++)
        rc = fn(pv->live[i].ptr, pv->live[i].size, arg);
    pthread_mutex_unlock(&pv->lock);
    return rc;
}
