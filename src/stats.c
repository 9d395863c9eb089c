/*
 * stats.c — reading the pool's counters.
 *
 * Hits and cache puts are counted per thread (in each cache's bins, written
 * only by their owner) and summed here under the registry lock, which keeps
 * the list of caches stable; depot counters are read under each depot lock.
 * A read concurrent with gets and puts may miss the operations in flight.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <string.h>

void zp__class_counts(zp_pool *p, unsigned cls, uint64_t *gets, uint64_t *puts,
                      uint64_t *hits)
{
    uint64_t h = p->retired_hits[cls], u = p->retired_puts[cls];
    for (zp__tcache *tc = p->tcaches; tc; tc = tc->next) {
        h += atomic_load_explicit(&tc->bins[cls].hits, memory_order_relaxed);
        u += atomic_load_explicit(&tc->bins[cls].puts, memory_order_relaxed);
    }
    const zp__depot *d = &p->depot[cls];
    *hits = h;
    *gets = h + d->depot_hits + d->allocations;
    *puts = u + d->direct_puts;
}

int zp_stats_read(zp_pool *p, zp_stats *out)
{
    if (p == NULL || out == NULL)
        return zp__error(-EINVAL, "zp_stats_read: %s is NULL", p ? "out" : "pool");
    size_t want = out->struct_size;
    if (want < offsetof(zp_stats, peak_reserved) + sizeof(uint64_t))
        return zp__error(-EINVAL,
                         "zp_stats_read: struct_size %zu is too small (set it to sizeof(zp_stats))",
                         want);
    zp_stats st;
    memset(&st, 0, sizeof st);
    uint64_t out_bytes = 0, cached_bytes = 0;

    zp__registry_lock();
    for (unsigned c = 0; c < p->nclasses; c++) {
        zp__depot *d = &p->depot[c];
        uint64_t gets, puts, hits;
        zp__depot_lock(d);
        zp__class_counts(p, c, &gets, &puts, &hits);
        uint64_t carved = d->carved;
        st.depot_hits += d->depot_hits;
        st.allocations += d->allocations;
        st.contention += d->contention;
        pthread_mutex_unlock(&d->lock);
        st.gets += gets;
        st.puts += puts;
        st.cache_hits += hits;
        /* in-flight slack can make puts briefly exceed gets as read */
        uint64_t held = gets > puts ? gets - puts : 0;
        if (held > carved)
            held = carved;
        out_bytes += held * zp__class_size(p, c);
        cached_bytes += (carved - held) * zp__class_size(p, c);
    }
    zp__registry_unlock();

    pthread_mutex_lock(&p->lock);
    st.oversize = p->oversize_gets;
    st.gets += p->oversize_gets;
    st.puts += p->oversize_puts;
    st.discards = p->oversize_puts;
    out_bytes += p->oversize_bytes;
    st.bytes_reserved = p->bytes_reserved;
    st.peak_reserved = p->peak_reserved;
    pthread_mutex_unlock(&p->lock);

    st.misuse = atomic_load_explicit(&p->misuse, memory_order_relaxed);
    st.bytes_outstanding = out_bytes;
    st.bytes_cached = cached_bytes;
    st.struct_size = want < sizeof st ? want : sizeof st;
    memcpy(out, &st, st.struct_size);
    out->struct_size = want;
    return 0;
}
