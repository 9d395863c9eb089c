/*
 * stats.c — reading, resetting and exporting the pool's counters.
 *
 * Hits and cache puts are counted per cache (in its bins, written only by
 * its owner: a thread or a handle's caller) and summed here under the registry lock, which keeps
 * the list of caches stable; depot state is read under each depot lock
 * (taken without counting it as contention: reading stats is not traffic).
 * zp_stats_reset stores a baseline that later reads subtract, so no thread's
 * counters are ever written by another thread.
 *
 * Per node (zp_stats_read_node): a cache counts on the node it last
 * refilled on, a retired cache on the node it last refilled on, and each
 * node's depots and oversize buffers on their node, so the nodes add up to
 * the pool.
 */
#include "stats/stats.h"
#include "core/cache.h"
#include "core/registry.h"
#include "os/os.h"

#include <errno.h>
#include <string.h>

/* Whether cache c counts on node index node (-1: every node). */
static bool cache_on(const zp_pool *p, const zp__cache *c, int node)
{
    /* acquire: pairs with rehome's release, so a cache seen on its new
     * node shows the counters it restarted from (zero), not the figures
     * it folded into its old node's depots */
    return node < 0 || p->nnodes == 1 ||
           atomic_load_explicit(&c->node, memory_order_acquire) == (unsigned)node;
}

/* Counters of class cls on node index node (-1: all): the caches that last
 * refilled there, retired ones, and the depots' own. Registry lock held. */
static zp__counts counts_on(zp_pool *p, unsigned cls, int node, uint64_t *remote)
{
    zp__counts k = {0, 0, 0, 0};
    for (const zp__cache *c = p->caches; c; c = c->next)
        if (cache_on(p, c, node))
            zp__cache_counts(c, cls, &k);
    *remote = 0;
    for (unsigned n = 0; n < p->nnodes; n++) {
        if (node >= 0 && n != (unsigned)node)
            continue;
        const zp__depot *d = zp__depot_of(p, n, cls);
        k.hits += d->retired.hits + d->direct.hits;
        k.depot_hits += d->retired.depot_hits + d->direct.depot_hits;
        k.allocations += d->retired.allocations + d->direct.allocations;
        k.puts += d->retired.puts + d->direct.puts;
        *remote += d->remote_puts;
    }
    return k;
}

zp__counts zp__class_counts(zp_pool *p, unsigned cls)
{
    uint64_t remote;
    return counts_on(p, cls, -1, &remote);
}

/* Everything since creation, of node index node (-1: the whole pool). */
static void stats_raw(zp_pool *p, int node, zp_stats *st)
{
    memset(st, 0, sizeof *st);
    st->struct_size = sizeof *st;
    st->nclasses = p->nclasses;
    unsigned lo = node < 0 ? 0 : (unsigned)node, hi = node < 0 ? p->nnodes : lo + 1;
    zp__registry_lock();
    for (unsigned c = 0; c < p->nclasses; c++) {
        zp_class_stats *cs = &st->classes[c];
        uint64_t carved = 0, remote;
        /* the node's depots of the class, in node order (the registry
         * lock, held, orders this with fork's all-depot locking) */
        for (unsigned n = lo; n < hi; n++)
            pthread_mutex_lock(&zp__depot_of(p, n, c)->lock);
        zp__counts k = counts_on(p, c, node, &remote);
        for (unsigned n = lo; n < hi; n++) {
            zp__depot *d = zp__depot_of(p, n, c);
            carved += d->carved;
            cs->contention += d->contention;
            cs->bytes_reserved += d->slab_bytes;
        }
        for (unsigned n = hi; n-- > lo;)
            pthread_mutex_unlock(&zp__depot_of(p, n, c)->lock);
        uint64_t size = zp__class_size(p, c); /* the stride: bytes held */
        cs->size = p->obj.size ? p->obj.size : size;
        cs->cache_hits = k.hits;
        cs->depot_hits = k.depot_hits;
        cs->allocations = k.allocations;
        cs->gets = zp__counts_gets(&k);
        cs->puts = k.puts;
        st->remote_puts += remote;
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
    uint64_t over_bytes = 0;
    for (unsigned n = lo; n < hi; n++) {
        st->oversize += p->over[n].gets;
        st->discards += p->over[n].puts;
        over_bytes += p->over[n].bytes;
    }
    st->gets += st->oversize;
    st->puts += st->discards;
    st->bytes_outstanding += over_bytes;
    /* Reserved bytes as the classes' slab bytes (read under the depot
     * locks, with the same buffers' counts) plus the oversize buffers
     * (all outstanding), so the parts never exceed the whole even while
     * slabs are being mapped or unmapped. */
    st->bytes_reserved = over_bytes;
    for (unsigned c = 0; c < p->nclasses; c++)
        st->bytes_reserved += st->classes[c].bytes_reserved;
    st->peak_reserved = p->peak_reserved > st->bytes_reserved ? p->peak_reserved
                                                               : st->bytes_reserved;
    pthread_mutex_unlock(&p->lock);
    if (lo == 0) /* misuse is the pool's: counted on the first node */
        st->misuse = atomic_load_explicit(&p->misuse, memory_order_relaxed);
}

#define SUB(f) (a->f -= b->f)
static void stats_sub(zp_stats *a, const zp_stats *b)
{
    SUB(gets); SUB(puts); SUB(cache_hits); SUB(depot_hits); SUB(allocations);
    SUB(oversize); SUB(discards); SUB(contention); SUB(misuse); SUB(remote_puts);
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

/* Reads node index node (-1: the pool) into out, as far as its
 * struct_size goes. */
static int stats_read(zp_pool *p, int node, zp_stats *out, const char *fn)
{
    size_t want = out->struct_size;
    if (want < offsetof(zp_stats, peak_reserved) + sizeof(uint64_t))
        return zp__error(-EINVAL, "%s: struct_size %zu is too small (set it to sizeof(zp_stats))",
                         fn, want);
    zp_stats st;
    pthread_mutex_lock(&p->stats_lock);
    stats_raw(p, node, &st);
    stats_sub(&st, node < 0 ? &p->baseline : &p->node_baseline[node]);
    pthread_mutex_unlock(&p->stats_lock);
    memcpy(out, &st, want < sizeof st ? want : sizeof st);
    out->struct_size = want;
    return 0;
}

int zp_stats_read(zp_pool *p, zp_stats *out)
{
    if (p == NULL || out == NULL)
        return zp__error(-EINVAL, "zp_stats_read: %s is NULL", p ? "out" : "pool");
    return stats_read(p, -1, out, "zp_stats_read");
}

int zp__stats_node_index(const zp_pool *p, int node)
{
    if (zp__os_node_index(node) < 0)
        return -1;
    for (unsigned n = 0; n < p->nnodes; n++)
        if (p->node_ids[n] == node)
            return (int)n;
    return (int)p->nnodes; /* online, but none of the pool's depots */
}

int zp_stats_read_node(zp_pool *p, int node, zp_stats *out)
{
    if (p == NULL || out == NULL)
        return zp__error(-EINVAL, "zp_stats_read_node: %s is NULL", p ? "out" : "pool");
    int n = zp__stats_node_index(p, node);
    if (n < 0)
        return zp__error(-EINVAL, "zp_stats_read_node: node %d is not an online NUMA node of "
                                  "this machine (%d online)", node,
                         zp__os_topology_get()->nnodes);
    if ((unsigned)n == p->nnodes) {
        /* the pool keeps one depot set on another node: nothing here */
        size_t want = out->struct_size;
        if (want < offsetof(zp_stats, peak_reserved) + sizeof(uint64_t))
            return zp__error(-EINVAL, "zp_stats_read_node: struct_size %zu is too small (set "
                                      "it to sizeof(zp_stats))", want);
        zp_stats st;
        memset(&st, 0, sizeof st);
        st.nclasses = p->nclasses;
        for (unsigned c = 0; c < p->nclasses; c++)
            st.classes[c].size = p->obj.size ? p->obj.size : zp__class_size(p, c);
        memcpy(out, &st, want < sizeof st ? want : sizeof st);
        out->struct_size = want;
        return 0;
    }
    return stats_read(p, n, out, "zp_stats_read_node");
}

void zp_stats_reset(zp_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->stats_lock);
    stats_raw(p, -1, &p->baseline);
    for (unsigned n = 0; n < p->nnodes; n++)
        stats_raw(p, (int)n, &p->node_baseline[n]);
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
