/*
 * trim.c — giving idle memory back: zp_trim, the retention cap and decay.
 *
 * Idle buffers sit in the depot's magazines, hottest on top. Trimming a
 * class gathers them, unmaps every slab whose carved buffers are all idle,
 * and — for buffers of at least a page — releases the pages of the coldest
 * remaining ones with madvise(MADV_DONTNEED). Those stay in the depot at
 * the bottom (d->npurged counts them) and fault in as zero pages when used
 * again. Pools with ZP_LOCKED, and classes smaller than a huge page with
 * ZP_HUGE_PAGES, never release pages of single buffers (locked pages stay
 * locked; a huge page stays whole): they give memory back only by
 * unmapping wholly idle slabs (zp__slab_may_purge, core/slab.c).
 *
 * Decay uses a low-water mark per class: the fewest unpurged idle buffers
 * seen during an epoch of decay_ms were idle the whole epoch, so at the
 * epoch's end that many are given back. A pool that goes idle thus returns
 * to its minimum within two epochs; the epoch ends on a slow path of the
 * pool, or on the background thread's tick (ZP_DECAY_THREAD).
 */
#include "policy/trim.h"
#include "core/depot.h"
#include "core/slab.h"
#include "debug/debug.h"
#include "os/os.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t carved_in(const zp__slab *s, size_t csize)
{
    return (atomic_load_explicit(&s->carve_end, memory_order_relaxed) - s->base) / csize;
}

/* Trims node index node's depot of class cls (see zp__trim_class). */
static size_t trim_depot(zp_pool *p, unsigned node, unsigned cls, uint64_t drop, bool purge)
{
    zp__depot *d = zp__depot_of(p, node, cls);
    size_t csize = zp__class_size(p, cls);
    size_t released = 0;
    uint64_t resident_dropped = 0;
    zp__slab *dead = NULL;

    pthread_mutex_lock(&d->lock);
    size_t n = d->nfree;
    void **items = n ? malloc(n * sizeof(void *)) : NULL;
    if (n == 0 || items == NULL) {
        pthread_mutex_unlock(&d->lock);
        free(items);
        return 0;
    }
    size_t unpurged = n - d->npurged;
    zp__depot_gather(d, items);

    /* which slabs have every carved buffer idle here */
    for (zp__slab *s = d->slabs; s; s = s->next)
        s->trim_idle = s->trim_unpurged = 0;
    for (size_t i = 0; i < n; i++) {
        zp__slab *s = zp__slab_lookup(items[i]);
        s->trim_idle++;
        s->trim_unpurged += i < unpurged;
    }
    /* coldest first: the slab of the bottom-most idle buffer goes first */
    for (size_t i = n; i-- > 0 && resident_dropped < drop;) {
        zp__slab *s = zp__slab_lookup(items[i]);
        if (s == NULL || s->trim_idle == UINT32_MAX || s->trim_idle != carved_in(s, csize))
            continue;
        uint64_t carved = s->trim_idle;
        resident_dropped += (uint64_t)s->trim_unpurged * csize;
        zp__slab_list_unlink(&d->slabs, s);
        s->next = dead;
        dead = s;
        if (d->carving == s)
            d->carving = NULL;
        d->carved -= carved;
        released += s->size;
        s->trim_idle = UINT32_MAX; /* marks it for removal below */
    }

    /* drop the released slabs' buffers, keeping order; count how many
     * unpurged ones went */
    size_t kept = 0, kept_unpurged = 0;
    for (size_t i = 0; i < n; i++) {
        zp__slab *s = zp__slab_lookup(items[i]);
        if (s->trim_idle == UINT32_MAX)
            continue;
        if (i < unpurged)
            kept_unpurged++;
        items[kept++] = items[i];
    }
    d->npurged = kept - kept_unpurged;

    /* then release the pages of the coldest unpurged buffers (not while
     * poisoning: zero pages would break the pattern; not for constructed
     * objects: zero pages would lose their state) */
    if (purge && csize >= p->page_size && !zp__debug_poisons(p) && !p->obj.built &&
        zp__slab_may_purge(p, csize)) {
        while (resident_dropped < drop && kept_unpurged > 0) {
            void *buf = items[kept_unpurged - 1];
            if (zp__os_purge(buf, csize) != 0)
                break;
            kept_unpurged--;
            d->npurged++;
            resident_dropped += csize;
            released += csize;
        }
    }
    zp__depot_rebuild(d, items, kept);
    if (d->low_water > kept - d->npurged)
        d->low_water = kept - d->npurged;
    pthread_mutex_unlock(&d->lock);
    free(items);
    atomic_fetch_sub_explicit(&p->idle_resident, resident_dropped, memory_order_relaxed);

    /* no buffer of these slabs is idle anywhere else or outstanding; the
     * class's reserved bytes drop once they are really unmapped */
    size_t unmapped = 0;
    while (dead) {
        zp__slab *s = dead;
        dead = s->next;
        unmapped += s->size;
        zp__slab_release(p, s);
    }
    if (unmapped) {
        pthread_mutex_lock(&d->lock);
        d->slab_bytes -= unmapped;
        pthread_mutex_unlock(&d->lock);
    }
    return released;
}

size_t zp__trim_class(zp_pool *p, unsigned cls, uint64_t drop, bool purge)
{
    size_t released = 0;
    for (unsigned node = 0; node < p->nnodes && released < drop; node++)
        released += trim_depot(p, node, cls, drop - released, purge);
    return released;
}

size_t zp__trim_pool(zp_pool *p, uint64_t keep, bool purge)
{
    size_t released = 0;
    /* largest classes first: fewest buffers to move per byte */
    for (unsigned c = p->nclasses; c-- > 0;) {
        uint64_t idle = atomic_load_explicit(&p->idle_resident, memory_order_relaxed);
        if (idle <= keep)
            break;
        released += zp__trim_class(p, c, idle - keep, purge);
    }
    return released;
}

/* One decay step if an epoch has passed: per class, give back the
 * low-water number of buffers (idle the whole epoch). */
static void decay_run(zp_pool *p)
{
    uint64_t now = zp__os_now_coarse_ns();
    uint64_t epoch = atomic_load_explicit(&p->decay_epoch_ns, memory_order_relaxed);
    if (now - epoch < (uint64_t)p->decay_ms * 1000000u)
        return;
    /* one thread runs each epoch's step */
    if (!atomic_compare_exchange_strong_explicit(&p->decay_epoch_ns, &epoch, now,
                                                 memory_order_relaxed, memory_order_relaxed))
        return;
    for (unsigned node = 0; node < p->nnodes; node++) {
        for (unsigned c = 0; c < p->nclasses; c++) {
            zp__depot *d = zp__depot_of(p, node, c);
            pthread_mutex_lock(&d->lock);
            uint64_t idle_all_epoch = d->low_water;
            d->low_water = d->nfree - d->npurged;
            pthread_mutex_unlock(&d->lock);
            if (idle_all_epoch)
                trim_depot(p, node, c, idle_all_epoch * zp__class_size(p, c), true);
        }
    }
}

void zp__idle_check(zp_pool *p)
{
    if (atomic_load_explicit(&p->idle_resident, memory_order_relaxed) > p->max_cached)
        zp__trim_pool(p, p->max_cached, true);
    if (p->decay_ms)
        decay_run(p);
}

static void *decay_main(void *arg)
{
    zp_pool *p = arg;
    uint64_t tick_ns = (uint64_t)p->decay_ms * 1000000u / 2;
    if (tick_ns < 1000000u)
        tick_ns = 1000000u;
    pthread_mutex_lock(&p->decay_lock);
    while (!p->decay_stop) {
        zp__os_cond_wait(&p->decay_cv, &p->decay_lock, zp__os_now_ns() + tick_ns);
        if (p->decay_stop)
            break;
        pthread_mutex_unlock(&p->decay_lock);
        zp__idle_check(p);
        pthread_mutex_lock(&p->decay_lock);
    }
    pthread_mutex_unlock(&p->decay_lock);
    return NULL;
}

int zp__decay_start(zp_pool *p)
{
    atomic_store_explicit(&p->decay_epoch_ns, zp__os_now_coarse_ns(), memory_order_relaxed);
    int rc = zp__os_cond_init(&p->decay_cv);
    if (rc)
        return rc;
    if ((rc = pthread_mutex_init(&p->decay_lock, NULL)) != 0) {
        pthread_cond_destroy(&p->decay_cv);
        return -rc;
    }
    if ((p->flags & ZP_DECAY_THREAD) && p->decay_ms) {
        if ((rc = pthread_create(&p->decay_thread, NULL, decay_main, p)) != 0) {
            pthread_mutex_destroy(&p->decay_lock);
            pthread_cond_destroy(&p->decay_cv);
            return -rc;
        }
        p->decay_thread_on = true;
    }
    return 0;
}

void zp__decay_stop(zp_pool *p)
{
    if (p->decay_thread_on) {
        pthread_mutex_lock(&p->decay_lock);
        p->decay_stop = true;
        pthread_cond_signal(&p->decay_cv);
        pthread_mutex_unlock(&p->decay_lock);
        pthread_join(p->decay_thread, NULL);
        p->decay_thread_on = false;
    }
    pthread_mutex_destroy(&p->decay_lock);
    pthread_cond_destroy(&p->decay_cv);
}

void zp__decay_fork_child(zp_pool *p)
{
    /* the decay thread (if any) was waiting on these in the parent */
    pthread_mutex_init(&p->decay_lock, NULL);
    (void)zp__os_cond_init(&p->decay_cv);
    p->decay_thread_on = false; /* the thread did not survive the fork */
}
