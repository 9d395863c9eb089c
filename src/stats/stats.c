/*
 * stats.c — reading, resetting and exporting the pool's counters.
 *
 * Hits and cache puts are counted per cache (in its bins, written only by
 * its owner: a thread or a handle's caller) and summed here under the registry lock, which keeps
 * the list of caches stable; depot state is read under each depot lock
 * (taken without counting it as contention: reading stats is not traffic).
 * zp_stats_reset stores a baseline that later reads subtract, so no thread's
 * counters are ever written by another thread.
 */
#include "stats/stats.h"
#include "core/cache.h"
#include "core/registry.h"

#include <errno.h>
#include <string.h>

zp__counts zp__class_counts(zp_pool *p, unsigned cls)
{
    zp__counts k = p->retired[cls];
    for (const zp__cache *c = p->caches; c; c = c->next)
        zp__cache_counts(c, cls, &k);
    const zp__counts *d = &p->depot[cls].direct;
    k.hits += d->hits;
    k.depot_hits += d->depot_hits;
    k.allocations += d->allocations;
    k.puts += d->puts;
    return k;
}

/* Everything since creation. */
static void stats_raw(zp_pool *p, zp_stats *st)
{
    memset(st, 0, sizeof *st);
    st->struct_size = sizeof *st;
    st->nclasses = p->nclasses;
    zp__registry_lock();
    for (unsigned c = 0; c < p->nclasses; c++) {
        zp__depot *d = &p->depot[c];
        zp_class_stats *cs = &st->classes[c];
        pthread_mutex_lock(&d->lock);
        zp__counts k = zp__class_counts(p, c);
        uint64_t carved = d->carved;
        cs->contention = d->contention;
        cs->bytes_reserved = d->slab_bytes;
        pthread_mutex_unlock(&d->lock);
        uint64_t size = zp__class_size(p, c);
        cs->size = size;
        cs->cache_hits = k.hits;
        cs->depot_hits = k.depot_hits;
        cs->allocations = k.allocations;
        cs->gets = zp__counts_gets(&k);
        cs->puts = k.puts;
        /* in-flight slack can make puts briefly exceed gets as read */
        uint64_t held = cs->gets > cs->puts ? cs->gets - cs->puts : 0;
        if (held > carved)
            held = carved;
        cs->bytes_outstanding = held * size;
        cs->bytes_cached = (carved - held) * size;
    }
    zp__registry_unlock();

    for (unsigned c = 0; c < p->nclasses; c++) {
        const zp_class_stats *cs = &st->classes[c];
        st->gets += cs->gets;
        st->puts += cs->puts;
        st->cache_hits += cs->cache_hits;
        st->depot_hits += cs->depot_hits;
        st->allocations += cs->allocations;
        st->contention += cs->contention;
        st->bytes_outstanding += cs->bytes_outstanding;
        st->bytes_cached += cs->bytes_cached;
    }
    pthread_mutex_lock(&p->lock);
    st->oversize = p->oversize_gets;
    st->gets += p->oversize_gets;
    st->puts += p->oversize_puts;
    st->discards = p->oversize_puts;
    st->bytes_outstanding += p->oversize_bytes;
    /* Reserved bytes as the classes' slab bytes (read under the depot
     * locks, with the same buffers' counts) plus the oversize buffers
     * (all outstanding), so the parts never exceed the whole even while
     * slabs are being mapped or unmapped. */
    st->bytes_reserved = p->oversize_bytes;
    for (unsigned c = 0; c < p->nclasses; c++)
        st->bytes_reserved += st->classes[c].bytes_reserved;
    st->peak_reserved = p->peak_reserved > st->bytes_reserved ? p->peak_reserved
                                                               : st->bytes_reserved;
    pthread_mutex_unlock(&p->lock);
    st->misuse = atomic_load_explicit(&p->misuse, memory_order_relaxed);
}

#define SUB(f) (a->f -= b->f)
static void stats_sub(zp_stats *a, const zp_stats *b)
{
    SUB(gets); SUB(puts); SUB(cache_hits); SUB(depot_hits); SUB(allocations);
    SUB(oversize); SUB(discards); SUB(contention); SUB(misuse);
    for (unsigned c = 0; c < a->nclasses; c++) {
        zp_class_stats *x = &a->classes[c];
        const zp_class_stats *y = &b->classes[c];
        x->gets -= y->gets;
        x->puts -= y->puts;
        x->cache_hits -= y->cache_hits;
        x->depot_hits -= y->depot_hits;
        x->allocations -= y->allocations;
        x->contention -= y->contention;
    }
}
#undef SUB

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
    pthread_mutex_lock(&p->stats_lock);
    stats_raw(p, &st);
    stats_sub(&st, &p->baseline);
    pthread_mutex_unlock(&p->stats_lock);
    memcpy(out, &st, want < sizeof st ? want : sizeof st);
    out->struct_size = want;
    return 0;
}

void zp_stats_reset(zp_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->stats_lock);
    stats_raw(p, &p->baseline);
    pthread_mutex_lock(&p->lock);
    p->peak_reserved = p->bytes_reserved;
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->stats_lock);
}

static double ratio(uint64_t part, uint64_t whole)
{
    return whole ? (double)part / (double)whole : 0.0;
}

double zp_stats_cache_hit_rate(const zp_stats *s)
{
    return s ? ratio(s->cache_hits, s->gets) : 0.0;
}

double zp_stats_depot_hit_rate(const zp_stats *s)
{
    return s ? ratio(s->depot_hits, s->gets) : 0.0;
}

double zp_stats_hit_rate(const zp_stats *s)
{
    return s ? ratio(s->cache_hits + s->depot_hits, s->gets) : 0.0;
}
