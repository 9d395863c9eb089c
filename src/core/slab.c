/*
 * slab.c — regions from the provider (budget reserved first, bound to
 * their NUMA node before first touch, registered in the radix map after)
 * and their out-of-line metadata; class slabs.
 */
#include "core/slab.h"
#include "core/object.h"
#include "debug/debug.h"
#include "os/os.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ZP_HUGE_PAGES: len rounded up to whole huge pages (slab geometry, set at
 * pool creation); len itself otherwise. */
size_t zp__slab_len_huge(const zp_pool *p, size_t len)
{
    if (p->huge_size == 0)
        return len;
    return (len + p->huge_size - 1) & ~(p->huge_size - 1);
}

/* The alignment a region of size bytes is mapped at: the grain (the radix
 * map's unit), or with ZP_HUGE_PAGES the huge page size for any region of
 * at least one huge page (every slab: see zp__slab_len_huge), so that each
 * huge page of it is a whole aligned one. The default huge provider reads
 * this alignment as "back it with huge pages" (core/provider.c). */
static size_t region_align(const zp_pool *p, size_t size)
{
    return p->huge_size && size >= p->huge_size ? p->huge_size : ZP__GRAIN;
}

/* Where a fresh region is placed before anything touches it. The provider
 * has mapped it (and, for ZP_HUGE_PAGES with the default provider,
 * advised it MADV_HUGEPAGE); no page is faulted in yet: it is bound to
 * node id node_id (-1: no binding) here, before zp__region_map's mlock
 * (ZP_LOCKED) faults in every page.
 * MPOL_PREFERRED for ZP_NUMA_LOCAL and zp_get_on_node: locality is a
 * speed-up, so a node short of free memory lends pages from another
 * rather than failing a get (or waking the OOM killer) that the machine
 * could serve. MPOL_BIND for ZP_NUMA_BIND: the caller asked for that node
 * and nothing else. No MPOL_MF_MOVE: a fresh region has no pages yet, and
 * a provider's pre-touched memory stays where the provider put it (it can
 * place it itself from zp_provider_node()). A failure (no NUMA in the
 * kernel, a provider's special mapping) leaves the kernel's default. */
static void region_place(zp_pool *p, void *m, size_t size, int node_id)
{
    if (node_id >= 0)
        (void)zp__os_bind(m, size, node_id, p->numa == ZP_NUMA_BIND);
}

/* ZP_LOCKED: mlock of a fresh region; on refusal the detail names the
 * limit (the caller unmaps and releases the budget). 0 or ZP__ELOCK. */
static int region_lock(void *m, size_t size)
{
    int rc = zp__os_lock(m, size);
    if (rc == 0)
        return 0;
    size_t limit = zp__os_lock_limit();
    if (limit == SIZE_MAX)
        return zp__error(ZP__ELOCK, "zp_get: mlock of a %zu-byte region refused (%s); "
                                    "RLIMIT_MEMLOCK is unlimited",
                         size, strerror(-rc));
    return zp__error(ZP__ELOCK, "zp_get: mlock of a %zu-byte region refused (%s): "
                                "RLIMIT_MEMLOCK is %zu bytes, counting what this process "
                                "has locked already (raise it: ulimit -l, or CAP_IPC_LOCK)",
                     size, strerror(-rc), limit);
}

/* The node a provider's map should place its region on (zp_provider_node):
 * set around the call, on the mapping thread only. */
static __thread int provider_node = -1;

int zp_provider_node(void)
{
    return provider_node;
}

int zp__node_bind_id(const zp_pool *p, unsigned node)
{
    if (p->numa == ZP_NUMA_BIND)
        return p->bind_node;
    return p->nnodes > 1 ? p->node_ids[node] : -1;
}

/* Maps a region: the budget is reserved first (so the pools of a budget
 * never hold more than its max, even for a moment), then the provider maps
 * (aligned as region_align says; the provider can ask zp_provider_node()
 * for node_id), the region is bound to node id node_id (-1: none) before
 * anything touches it (region_place) and, with ZP_LOCKED, locked. 0,
 * ZP__EBUDGET, ZP__ELOCK (detail recorded) or -ENOMEM. On failure nothing
 * stays mapped or reserved. */
int zp__region_map(zp_pool *p, size_t size, int node_id, const zp__waiter *w, void **out)
{
    if (p->budget && !zp__budget_reserve(p->budget, size, w))
        return ZP__EBUDGET;
    size_t align = region_align(p, size);
    provider_node = node_id;
    void *m = p->provider.map(size, align, p->provider.ctx);
    provider_node = -1;
    if (m != NULL && ((uintptr_t)m & (align - 1)) != 0) {
        /* a provider that ignores the alignment cannot be used */
        p->provider.unmap(m, size, p->provider.ctx);
        m = NULL;
    }
    int rc = m == NULL ? -ENOMEM : 0;
    if (m != NULL) {
        region_place(p, m, size, node_id);
        if ((p->flags & ZP_LOCKED) && (rc = region_lock(m, size)) != 0) {
            p->provider.unmap(m, size, p->provider.ctx);
            m = NULL;
        }
    }
    if (m == NULL) {
        if (p->budget)
            zp__budget_release(p->budget, size);
        return rc;
    }
    pthread_mutex_lock(&p->lock);
    p->bytes_reserved += size;
    if (p->bytes_reserved > p->peak_reserved)
        p->peak_reserved = p->bytes_reserved;
    pthread_mutex_unlock(&p->lock);
    *out = m;
    return 0;
}

/* Unmaps a region (unlocked first with ZP_LOCKED: a custom provider may
 * keep the memory), then gives its bytes back to the budget. */
void zp__region_unmap(zp_pool *p, void *m, size_t size)
{
    if (p->flags & ZP_LOCKED)
        zp__os_unlock(m, size);
    p->provider.unmap(m, size, p->provider.ctx);
    pthread_mutex_lock(&p->lock);
    p->bytes_reserved -= size;
    pthread_mutex_unlock(&p->lock);
    if (p->budget)
        zp__budget_release(p->budget, size);
}

/* Whether trim may release the pages of one idle buffer of csize bytes
 * (madvise MADV_DONTNEED) instead of unmapping whole slabs only:
 *   - ZP_LOCKED: never (it would drop locked pages; the kernel refuses
 *     MADV_DONTNEED on locked memory anyway);
 *   - ZP_HUGE_PAGES: only when the buffer is whole huge pages (csize a
 *     multiple of the huge page size; buffers are aligned to their class
 *     and slabs to the huge page). Releasing part of a huge page would
 *     split it, leaving the rest of it, still used by other buffers, in
 *     small pages. A smaller class's slab is exactly one huge page, so
 *     "unmap only wholly idle slabs" is "release only wholly idle huge
 *     pages".
 * (Debug poisoning and constructed objects forbid it too: trim.c.) */
bool zp__slab_may_purge(const zp_pool *p, size_t csize)
{
    if (p->flags & ZP_LOCKED)
        return false;
    return p->huge_size == 0 || csize % p->huge_size == 0;
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
zp__slab *zp__meta_get(zp_pool *p, size_t words)
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
    s->built = NULL;
    return s;
}

void zp__meta_put(zp_pool *p, zp__slab *s)
{
    pthread_mutex_lock(&p->lock);
    s->next = p->spare_meta;
    p->spare_meta = s;
    pthread_mutex_unlock(&p->lock);
}

int zp__slab_create(zp_pool *p, unsigned cls, unsigned node, size_t size,
                    const zp__waiter *w, zp__slab **out)
{
    size_t csize = zp__class_size(p, cls);
    uint32_t nbufs = (uint32_t)(size / csize);
    size_t debug_words = zp__debug_meta_words(p, nbufs);
    size_t built_words = p->obj.built ? (nbufs + 63) / 64 : 0;
    zp__slab *s = zp__meta_get(p, debug_words + built_words);
    if (s == NULL)
        return -ENOMEM;
    if (p->debug >= 1) {
        s->state = (_Atomic uint64_t *)(s + 1);
        if (p->debug >= 2)
            s->getters = (_Atomic uintptr_t *)(s->state + (nbufs + 63) / 64);
    }
    if (built_words)
        s->built = (_Atomic uint64_t *)(s + 1) + debug_words;
    void *m;
    int home = zp__node_bind_id(p, node);
    int rc = zp__region_map(p, size, home, w, &m);
    if (rc) {
        zp__meta_put(p, s);
        return rc;
    }
    s->key = zp__node_key(p, node);
    s->node = node;
    s->home = home;
    s->pool = p;
    s->base = (uintptr_t)m;
    s->stride = csize;
    s->mask = (csize & (csize - 1)) == 0 ? csize - 1 : UINTPTR_MAX;
    atomic_store_explicit(&s->carve_end, (uintptr_t)m, memory_order_relaxed);
    s->cls = cls;
    s->nbufs = nbufs;
    s->size = size;
    if (zp__slab_register(s) != 0) {
        zp__region_unmap(p, m, size);
        zp__meta_put(p, s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

static void slab_unmap(zp_pool *p, zp__slab *s)
{
    zp__slab_unregister(s);
    zp__debug_before_unmap(s);
    zp__region_unmap(p, (void *)s->base, s->size);
    zp__meta_put(p, s);
}

void zp__slab_release(zp_pool *p, zp__slab *s)
{
    zp__object_fini_slab(p, s); /* every object is idle: all finalised */
    slab_unmap(p, s);
}

/* Pool destroy: every region goes back, outstanding or not (idle objects
 * were finalised already; outstanding ones are not). */
void zp__slabs_destroy_all(zp_pool *p)
{
    for (unsigned c = 0; c < p->nnodes * p->nclasses; c++) {
        zp__depot *d = &p->depot[c];
        while (d->slabs) {
            zp__slab *s = d->slabs;
            zp__slab_list_unlink(&d->slabs, s);
            slab_unmap(p, s);
        }
    }
    while (p->oversize) {
        zp__slab *s = p->oversize;
        zp__slab_list_unlink(&p->oversize, s);
        slab_unmap(p, s);
    }
    for (zp__slab *s = p->spare_meta, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    p->spare_meta = NULL;
}

size_t zp__request_bytes(const zp_pool *p, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > p->max_class)
        return size > ZP__MAX_REQUEST ? SIZE_MAX : (size + ZP__GRAIN - 1) & ~(ZP__GRAIN - 1);
    return zp__slab_bytes(p, zp__class_of(p, size));
}
