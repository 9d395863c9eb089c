/*
 * export.c — zp_stats_write: the pool's statistics as a human summary,
 * JSON, or Prometheus text exposition format.
 *
 * Prometheus families carry labels pool and class; class is the class size
 * in bytes or "oversize", so summing a family over class gives the pool
 * total. The zeropool_node_* families carry pool and node (a NUMA node id,
 * one sample per online node), and sum over node to the pool's total too.
 * Counters end in _total, gauges in _bytes. JSON gives the same per-node
 * figures in "nodes".
 */
#include "os/os.h"
#include "types.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static void write_text(const zp_pool *p, const zp_stats *st, FILE *f)
{
    fprintf(f,
            "zeropool pool %s: %" PRIu64 " gets (%.1f%% thread cache, %.1f%% depot, "
            "%" PRIu64 " fresh, %" PRIu64 " oversize), %" PRIu64 " puts\n",
            p->name, st->gets, 100.0 * zp_stats_cache_hit_rate(st),
            100.0 * zp_stats_depot_hit_rate(st), st->allocations, st->oversize, st->puts);
    fprintf(f,
            "  bytes: reserved %" PRIu64 " (peak %" PRIu64 "), outstanding %" PRIu64
            ", cached %" PRIu64 "\n",
            st->bytes_reserved, st->peak_reserved, st->bytes_outstanding, st->bytes_cached);
    fprintf(f, "  contention %" PRIu64 ", discards %" PRIu64 ", misuse %" PRIu64 "\n",
            st->contention, st->discards, st->misuse);
    fprintf(f, "  %10s %12s %8s %8s %10s %10s %14s %14s\n", "class", "gets", "cache%",
            "depot%", "fresh", "contention", "outstanding", "cached");
    for (unsigned c = 0; c < st->nclasses; c++) {
        const zp_class_stats *cs = &st->classes[c];
        if (cs->gets == 0 && cs->puts == 0 && cs->bytes_reserved == 0)
            continue;
        fprintf(f,
                "  %10" PRIu64 " %12" PRIu64 " %7.1f%% %7.1f%% %10" PRIu64 " %10" PRIu64
                " %14" PRIu64 " %14" PRIu64 "\n",
                cs->size, cs->gets, cs->gets ? 100.0 * (double)cs->cache_hits / (double)cs->gets : 0.0,
                cs->gets ? 100.0 * (double)cs->depot_hits / (double)cs->gets : 0.0,
                cs->allocations, cs->contention, cs->bytes_outstanding, cs->bytes_cached);
    }
}

/* Every online node's figures (zp_stats_read_node), into nodes[0 .. n). */
static int read_nodes(zp_pool *p, zp_stats *nodes, int *ids, int *n)
{
    const zp__os_topology *t = zp__os_topology_get();
    for (int i = 0; i < t->nnodes; i++) {
        nodes[i].struct_size = sizeof nodes[i];
        ids[i] = t->ids[i];
        int rc = zp_stats_read_node(p, t->ids[i], &nodes[i]);
        if (rc)
            return rc;
    }
    *n = t->nnodes;
    return 0;
}

static void write_json(const zp_pool *p, const zp_stats *st, const zp_stats *nodes,
                       const int *ids, int nn, FILE *f)
{
    fprintf(f,
            "{\"pool\":\"%s\",\"gets\":%" PRIu64 ",\"puts\":%" PRIu64
            ",\"cache_hits\":%" PRIu64 ",\"depot_hits\":%" PRIu64
            ",\"allocations\":%" PRIu64 ",\"oversize\":%" PRIu64 ",\"discards\":%" PRIu64
            ",\"contention\":%" PRIu64 ",\"misuse\":%" PRIu64
            ",\"bytes_reserved\":%" PRIu64 ",\"bytes_outstanding\":%" PRIu64
            ",\"bytes_cached\":%" PRIu64 ",\"peak_reserved\":%" PRIu64
            ",\"remote_puts\":%" PRIu64
            ",\"cache_hit_rate\":%.6f,\"depot_hit_rate\":%.6f,\"hit_rate\":%.6f,\"nodes\":[",
            p->name, st->gets, st->puts, st->cache_hits, st->depot_hits, st->allocations,
            st->oversize, st->discards, st->contention, st->misuse, st->bytes_reserved,
            st->bytes_outstanding, st->bytes_cached, st->peak_reserved, st->remote_puts,
            zp_stats_cache_hit_rate(st), zp_stats_depot_hit_rate(st), zp_stats_hit_rate(st));
    for (int i = 0; i < nn; i++) {
        const zp_stats *n = &nodes[i];
        fprintf(f,
                "%s{\"node\":%d,\"gets\":%" PRIu64 ",\"puts\":%" PRIu64
                ",\"cache_hits\":%" PRIu64 ",\"depot_hits\":%" PRIu64
                ",\"allocations\":%" PRIu64 ",\"oversize\":%" PRIu64
                ",\"remote_puts\":%" PRIu64 ",\"contention\":%" PRIu64
                ",\"bytes_reserved\":%" PRIu64 ",\"bytes_outstanding\":%" PRIu64
                ",\"bytes_cached\":%" PRIu64 "}",
                i ? "," : "", ids[i], n->gets, n->puts, n->cache_hits, n->depot_hits,
                n->allocations, n->oversize, n->remote_puts, n->contention, n->bytes_reserved,
                n->bytes_outstanding, n->bytes_cached);
    }
    fputs("],\"classes\":[", f);
    for (unsigned c = 0; c < st->nclasses; c++) {
        const zp_class_stats *cs = &st->classes[c];
        fprintf(f,
                "%s{\"size\":%" PRIu64 ",\"gets\":%" PRIu64 ",\"puts\":%" PRIu64
                ",\"cache_hits\":%" PRIu64 ",\"depot_hits\":%" PRIu64
                ",\"allocations\":%" PRIu64 ",\"contention\":%" PRIu64
                ",\"bytes_outstanding\":%" PRIu64 ",\"bytes_cached\":%" PRIu64
                ",\"bytes_reserved\":%" PRIu64 "}",
                c ? "," : "", cs->size, cs->gets, cs->puts, cs->cache_hits, cs->depot_hits,
                cs->allocations, cs->contention, cs->bytes_outstanding, cs->bytes_cached,
                cs->bytes_reserved);
    }
    fputs("]}\n", f);
}

/* One Prometheus family: HELP and TYPE, then a sample per class (offset of
 * the field in zp_class_stats) and, if oversize is not NULL, the oversize
 * sample. */
static void prom_family(const zp_pool *p, const zp_stats *st, FILE *f, const char *name,
                        const char *type, const char *help, size_t off,
                        const uint64_t *oversize)
{
    fprintf(f, "# HELP zeropool_%s %s\n# TYPE zeropool_%s %s\n", name, help, name, type);
    for (unsigned c = 0; c < st->nclasses; c++) {
        const zp_class_stats *cs = &st->classes[c];
        uint64_t v = *(const uint64_t *)((const char *)cs + off);
        fprintf(f, "zeropool_%s{pool=\"%s\",class=\"%" PRIu64 "\"} %" PRIu64 "\n", name,
                p->name, cs->size, v);
    }
    if (oversize)
        fprintf(f, "zeropool_%s{pool=\"%s\",class=\"oversize\"} %" PRIu64 "\n", name, p->name,
                *oversize);
}

/* One per-node Prometheus family: a sample per node (offset of the field
 * in zp_stats). */
static void prom_node_family(const zp_pool *p, const zp_stats *nodes, const int *ids, int nn,
                             FILE *f, const char *name, const char *type, const char *help,
                             size_t off)
{
    fprintf(f, "# HELP zeropool_%s %s\n# TYPE zeropool_%s %s\n", name, help, name, type);
    for (int i = 0; i < nn; i++)
        fprintf(f, "zeropool_%s{pool=\"%s\",node=\"%d\"} %" PRIu64 "\n", name, p->name, ids[i],
                *(const uint64_t *)((const char *)&nodes[i] + off));
}

static void write_prometheus(const zp_pool *p, const zp_stats *st, const zp_stats *nodes,
                             const int *ids, int nn, FILE *f)
{
    uint64_t over_out = st->bytes_outstanding, zero = 0;
    for (unsigned c = 0; c < st->nclasses; c++)
        over_out -= st->classes[c].bytes_outstanding;
    /* oversize buffers are mapped exactly while outstanding */
    uint64_t over_reserved = over_out;
    uint64_t over_puts = st->discards;

#define F(field) offsetof(zp_class_stats, field)
    prom_family(p, st, f, "gets_total", "counter", "Buffers handed out.", F(gets), &st->oversize);
    prom_family(p, st, f, "puts_total", "counter", "Buffers returned.", F(puts), &over_puts);
    prom_family(p, st, f, "cache_hits_total", "counter",
                "Gets served by the calling thread's cache.", F(cache_hits), &zero);
    prom_family(p, st, f, "depot_hits_total", "counter", "Gets served by the shared depot.",
                F(depot_hits), &zero);
    prom_family(p, st, f, "allocations_total", "counter",
                "Gets that needed fresh memory (oversize gets always do).", F(allocations),
                &st->oversize);
    prom_family(p, st, f, "contention_total", "counter",
                "Depot lock acquisitions that found the lock held.", F(contention), NULL);
    prom_family(p, st, f, "reserved_bytes", "gauge", "Bytes mapped from the provider.",
                F(bytes_reserved), &over_reserved);
    prom_family(p, st, f, "outstanding_bytes", "gauge", "Bytes held by the application.",
                F(bytes_outstanding), &over_out);
    prom_family(p, st, f, "cached_bytes", "gauge", "Bytes idle in thread caches and depot.",
                F(bytes_cached), &zero);
#undef F
    fprintf(f,
            "# HELP zeropool_discards_total Puts whose buffer was released to the provider.\n"
            "# TYPE zeropool_discards_total counter\n"
            "zeropool_discards_total{pool=\"%s\"} %" PRIu64 "\n",
            p->name, st->discards);
    fprintf(f,
            "# HELP zeropool_misuse_total Calls reported to the misuse handler.\n"
            "# TYPE zeropool_misuse_total counter\n"
            "zeropool_misuse_total{pool=\"%s\"} %" PRIu64 "\n",
            p->name, st->misuse);
    fprintf(f,
            "# HELP zeropool_peak_reserved_bytes Highest reserved bytes so far.\n"
            "# TYPE zeropool_peak_reserved_bytes gauge\n"
            "zeropool_peak_reserved_bytes{pool=\"%s\"} %" PRIu64 "\n",
            p->name, st->peak_reserved);
#define N(field) offsetof(zp_stats, field)
    prom_node_family(p, nodes, ids, nn, f, "node_gets_total", "counter",
                     "Buffers handed out, per NUMA node (the node of the cache or depot "
                     "that served them).", N(gets));
    prom_node_family(p, nodes, ids, nn, f, "node_puts_total", "counter",
                     "Buffers returned, per NUMA node.", N(puts));
    prom_node_family(p, nodes, ids, nn, f, "node_remote_puts_total", "counter",
                     "Buffers of the node put on a thread of another node and sent home.",
                     N(remote_puts));
    prom_node_family(p, nodes, ids, nn, f, "node_reserved_bytes", "gauge",
                     "Bytes mapped from the provider for the node.", N(bytes_reserved));
    prom_node_family(p, nodes, ids, nn, f, "node_outstanding_bytes", "gauge",
                     "Bytes of the node held by the application.", N(bytes_outstanding));
    prom_node_family(p, nodes, ids, nn, f, "node_cached_bytes", "gauge",
                     "Bytes of the node idle in caches and depots.", N(bytes_cached));
#undef N
}

int zp_stats_write(zp_pool *p, FILE *out, int format)
{
    if (p == NULL || out == NULL)
        return zp__error(-EINVAL, "zp_stats_write: %s is NULL", p ? "out" : "pool");
    if (format != ZP_FORMAT_TEXT && format != ZP_FORMAT_JSON && format != ZP_FORMAT_PROMETHEUS)
        return zp__error(-EINVAL, "zp_stats_write: unknown format %d", format);
    zp_stats st;
    st.struct_size = sizeof st;
    int rc = zp_stats_read(p, &st);
    if (rc)
        return rc;
    /* a cold call: the per-node snapshots may allocate */
    zp_stats *nodes = NULL;
    int ids[ZP__MAX_NODES], nn = 0;
    if (format != ZP_FORMAT_TEXT) {
        nodes = malloc((size_t)zp__os_topology_get()->nnodes * sizeof *nodes);
        if (nodes == NULL)
            return zp__error(-ENOMEM, "zp_stats_write: out of memory for the per-node figures");
        if ((rc = read_nodes(p, nodes, ids, &nn)) != 0) {
            free(nodes);
            return rc;
        }
    }
    switch (format) {
    case ZP_FORMAT_TEXT: write_text(p, &st, out); break;
    case ZP_FORMAT_JSON: write_json(p, &st, nodes, ids, nn, out); break;
    default: write_prometheus(p, &st, nodes, ids, nn, out); break;
    }
    free(nodes);
    if (fflush(out) != 0 || ferror(out))
        return zp__error(-EIO, "zp_stats_write: writing the stream failed");
    return 0;
}
