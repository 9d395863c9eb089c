/*
 * slab.c — regions from the provider and their out-of-line metadata.
 *
 * Every region (a class slab or one oversize buffer) is grain-aligned and a
 * whole number of grains long. The radix map sends each grain to its slab,
 * so any pointer finds its slab in two loads without touching the pointer's
 * memory — that is also how foreign pointers are caught. The map is global
 * (shared by all pools) so a buffer of another pool is recognised as such.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
        void *m = mmap(NULL, sizeof(zp__radix_leaf), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
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
            munmap(m, sizeof(zp__radix_leaf));
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
static int slab_register(zp__slab *s)
{
    if ((s->base >> ZP__ADDR_BITS) != 0 || ((s->base + s->size - 1) >> ZP__ADDR_BITS) != 0)
        return -ENOMEM; /* outside the address range the map covers */
    for (uintptr_t a = s->base; a < s->base + s->size; a += ZP__GRAIN)
        if (radix_slot(a, true) == NULL)
            return -ENOMEM;
    radix_set(s->base, s->size, s);
    return 0;
}

static void slab_unregister(zp__slab *s)
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

/* Maps a region: the budget is reserved first (so the pools of a budget
 * never hold more than its max, even for a moment), then the provider maps.
 * On failure returns NULL with errno ENOBUFS (budget) or ENOMEM. */
static void *region_map(zp_pool *p, size_t size)
{
    if (p->budget && !zp__budget_reserve(p->budget, size)) {
        errno = ENOBUFS;
        return NULL;
    }
    void *m = p->provider.map(size, ZP__GRAIN, p->provider.ctx);
    if (m != NULL && ((uintptr_t)m & (ZP__GRAIN - 1)) != 0) {
        /* a provider that ignores the alignment cannot be used */
        p->provider.unmap(m, size, p->provider.ctx);
        m = NULL;
    }
    if (m == NULL) {
        if (p->budget)
            zp__budget_release(p->budget, size);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    p->bytes_reserved += size;
    if (p->bytes_reserved > p->peak_reserved)
        p->peak_reserved = p->bytes_reserved;
    pthread_mutex_unlock(&p->lock);
    return m;
}

/* Unmaps a region, then gives its bytes back to the budget. */
static void region_unmap(zp_pool *p, void *m, size_t size)
{
    p->provider.unmap(m, size, p->provider.ctx);
    pthread_mutex_lock(&p->lock);
    p->bytes_reserved -= size;
    pthread_mutex_unlock(&p->lock);
    if (p->budget)
        zp__budget_release(p->budget, size);
}

void zp__slab_list_push(zp__slab **head, zp__slab *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

void zp__slab_list_unlink(zp__slab **head, zp__slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* Metadata is recycled, never freed while the pool lives: a racing put of
 * a stale pointer that looked a slab up just before it was released reads
 * valid memory and is then rejected by the checks that follow. */
static zp__slab *meta_get(zp_pool *p, size_t words)
{
    pthread_mutex_lock(&p->lock);
    zp__slab **link = &p->spare_meta, *s;
    while ((s = *link) != NULL && s->meta_words < words)
        link = &s->next;
    if (s)
        *link = s->next;
    pthread_mutex_unlock(&p->lock);
    if (s == NULL) {
        s = calloc(1, sizeof(*s) + words * sizeof(uint64_t));
        if (s == NULL)
            return NULL;
        s->meta_words = words;
    }
    /* the bitmap and the getters are set up by zp__slab_create */
    _Atomic uint64_t *area = (_Atomic uint64_t *)(s + 1);
    for (size_t i = 0; i < words; i++)
        atomic_store_explicit(&area[i], 0, memory_order_relaxed);
    s->state = NULL;
    s->getters = NULL;
    return s;
}

static void meta_put(zp_pool *p, zp__slab *s)
{
    pthread_mutex_lock(&p->lock);
    s->next = p->spare_meta;
    p->spare_meta = s;
    pthread_mutex_unlock(&p->lock);
}

/* Maps and registers a slab of class cls (called with the class's depot
 * lock held; the caller links it). NULL with errno ENOBUFS or ENOMEM. */
zp__slab *zp__slab_create(zp_pool *p, unsigned cls, size_t size)
{
    size_t csize = zp__class_size(p, cls);
    uint32_t nbufs = (uint32_t)(size / csize);
    zp__slab *s = meta_get(p, zp__debug_meta_words(p, nbufs));
    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (p->debug >= 1) {
        s->state = (_Atomic uint64_t *)(s + 1);
        if (p->debug >= 2)
            s->getters = (_Atomic uintptr_t *)(s->state + (nbufs + 63) / 64);
    }
    void *m = region_map(p, size);
    if (m == NULL) {
        int err = errno;
        meta_put(p, s);
        errno = err;
        return NULL;
    }
    s->pool = p;
    s->base = (uintptr_t)m;
    s->mask = csize - 1;
    atomic_store_explicit(&s->carve_end, (uintptr_t)m, memory_order_relaxed);
    s->cls = cls;
    s->nbufs = nbufs;
    s->size = size;
    if (slab_register(s) != 0) {
        region_unmap(p, m, size);
        meta_put(p, s);
        errno = ENOMEM;
        return NULL;
    }
    return s;
}

/* Unregisters and unmaps a slab no one holds a buffer of. */
void zp__slab_release(zp_pool *p, zp__slab *s)
{
    slab_unregister(s);
    zp__debug_before_unmap(s);
    region_unmap(p, (void *)s->base, s->size);
    meta_put(p, s);
}

void *zp__oversize_get(zp_pool *p, size_t size, bool count)
{
    if (size > ZP__MAX_REQUEST) {
        zp__error(-EOVERFLOW, "zp_get: size %zu can never be served (limit %zu)",
                  size, ZP__MAX_REQUEST);
        errno = EOVERFLOW;
        return NULL;
    }
    size_t len = (size + ZP__GRAIN - 1) & ~(ZP__GRAIN - 1);
    if (p->budget && len > zp__budget_max(p->budget)) {
        zp__error(-ENOBUFS, "zp_get: %zu bytes is more than the whole budget (%zu)", len,
                  zp__budget_max(p->budget));
        errno = ENOBUFS;
        return NULL;
    }
    zp__slab *s = meta_get(p, 0);
    void *m = s ? region_map(p, len) : NULL;
    if (m == NULL) {
        int err = s ? errno : ENOMEM;
        if (s)
            meta_put(p, s);
        if (err == ENOBUFS)
            zp__error(-ENOBUFS, "zp_get: the budget has no room for an oversize buffer of %zu bytes", len);
        else
            zp__error(-ENOMEM, "zp_get: the provider could not map %zu bytes for an oversize buffer", len);
        errno = err;
        return NULL;
    }
    s->pool = p;
    s->base = (uintptr_t)m;
    s->mask = 0;
    atomic_store_explicit(&s->carve_end, (uintptr_t)m + len, memory_order_relaxed);
    s->cls = ZP__CLASS_OVERSIZE;
    s->nbufs = 1;
    s->size = len;
    if (slab_register(s) != 0) {
        region_unmap(p, m, len);
        meta_put(p, s);
        zp__error(-ENOMEM, "zp_get: no memory for the slab map");
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    zp__slab_list_push(&p->oversize, s);
    p->oversize_gets += count;
    p->oversize_live++;
    p->oversize_bytes += len;
    pthread_mutex_unlock(&p->lock);
    if (p->flags & ZP_ZERO_ON_GET)
        memset(m, 0, len);
    return m;
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
                   "zeropool: zp_put(pool=%p, %p): oversize buffer was already put",
                   (void *)p, buf);
        return;
    }
    slab_unregister(s);
    zp__slab_list_unlink(&p->oversize, s);
    p->oversize_puts += count;
    p->oversize_live--;
    p->oversize_bytes -= s->size;
    size_t len = s->size;
    pthread_mutex_unlock(&p->lock);

    if (p->flags & ZP_WIPE_ON_PUT)
        explicit_bzero(buf, len);
    region_unmap(p, buf, len);
    meta_put(p, s);
}

void zp__oversize_count_gets(zp_pool *p, size_t n)
{
    pthread_mutex_lock(&p->lock);
    p->oversize_gets += n;
    pthread_mutex_unlock(&p->lock);
}

/* Pool destroy: every region goes back, outstanding or not. */
void zp__slabs_destroy_all(zp_pool *p)
{
    for (unsigned c = 0; c < p->nclasses; c++) {
        zp__depot *d = &p->depot[c];
        while (d->slabs) {
            zp__slab *s = d->slabs;
            zp__slab_list_unlink(&d->slabs, s);
            zp__slab_release(p, s);
        }
    }
    while (p->oversize) {
        zp__slab *s = p->oversize;
        zp__slab_list_unlink(&p->oversize, s);
        zp__slab_release(p, s);
    }
    for (zp__slab *s = p->spare_meta, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    p->spare_meta = NULL;
}
