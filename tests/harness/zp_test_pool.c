/*
 * The harness's zeropool part: reading and checking stats, building pools,
 * recording misuse reports, budgets and their waiters, resident memory
 * (zp_test.h).
 */
#include "zp_test.h"

#include <inttypes.h>

/* ---------------------------------------------------------------- stats */

int zpt_stats(zp_pool *pool, zp_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    return zp_stats_read(pool, s);
}

zp_stats zpt_read(zp_pool *pool)
{
    zp_stats s;
    if (zpt_stats(pool, &s) != 0) {
        fprintf(stderr, "zp_stats_read failed\n");
        abort();
    }
    return s;
}

uint64_t zpt_reserved(zp_pool *pool)
{
    zp_stats s;
    return zpt_stats(pool, &s) == 0 ? s.bytes_reserved : UINT64_MAX;
}

int zpt_class(const zp_stats *s, size_t size)
{
    uint32_t c;
    for (c = 0; c < s->nclasses && c < ZP_MAX_CLASSES; c++)
        if (s->classes[c].size == size)
            return (int)c;
    return -1;
}

unsigned zpt_class_index(size_t min_class, size_t size)
{
    unsigned i = 0;
    while ((min_class << i) < size)
        i++;
    return i;
}

int zpt_stats_sum_ok(const zp_stats *s)
{
    return s->gets == s->cache_hits + s->depot_hits + s->allocations + s->oversize;
}

int zpt_stats_classes_ok(const zp_stats *s)
{
    uint64_t gets = 0, puts = 0, hits = 0, depot = 0, alloc = 0;
    uint32_t c;
    if (s->nclasses > ZP_MAX_CLASSES)
        return 0;
    for (c = 0; c < s->nclasses; c++) {
        const zp_class_stats *k = &s->classes[c];
        if (k->gets != k->cache_hits + k->depot_hits + k->allocations)
            return 0;
        if (c > 0 && k->size != 2 * s->classes[c - 1].size)
            return 0;
        gets += k->gets;
        puts += k->puts;
        hits += k->cache_hits;
        depot += k->depot_hits;
        alloc += k->allocations;
    }
    return gets + s->oversize == s->gets && puts + s->discards == s->puts &&
           hits == s->cache_hits && depot == s->depot_hits && alloc == s->allocations;
}

static int why_not(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int why_not(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return 0;
}

/* The invariants of zpt_stats_ok; unit: what the byte gauges of every
 * class count in (0: the class's size). */
static int stats_ok(const zp_stats *s, uint64_t unit, char *why, size_t len)
{
    uint64_t class_reserved = 0;
    uint32_t c;
    if (s->nclasses == 0 || s->nclasses > ZP_MAX_CLASSES)
        return why_not(why, len, "nclasses %u", (unsigned)s->nclasses);
    if (!zpt_stats_sum_ok(s))
        return why_not(why, len,
                       "gets %" PRIu64 " != cache_hits %" PRIu64 " + depot_hits %" PRIu64
                       " + allocations %" PRIu64 " + oversize %" PRIu64,
                       s->gets, s->cache_hits, s->depot_hits, s->allocations, s->oversize);
    if (!zpt_stats_classes_ok(s))
        return why_not(why, len, "per-class figures do not add up to the totals");
    for (c = 0; c < s->nclasses; c++) {
        const zp_class_stats *k = &s->classes[c];
        uint64_t u = unit ? unit : k->size;
        if (k->bytes_outstanding % u || k->bytes_cached % u)
            return why_not(why, len,
                           "class %" PRIu64 ": gauges not multiples of %" PRIu64, k->size, u);
        if (k->bytes_outstanding + k->bytes_cached > k->bytes_reserved)
            return why_not(why, len,
                           "class %" PRIu64 ": outstanding %" PRIu64 " + cached %" PRIu64
                           " > reserved %" PRIu64,
                           k->size, k->bytes_outstanding, k->bytes_cached,
                           k->bytes_reserved);
        class_reserved += k->bytes_reserved;
    }
    if (s->bytes_outstanding + s->bytes_cached > s->bytes_reserved)
        return why_not(why, len,
                       "outstanding %" PRIu64 " + cached %" PRIu64 " > reserved %" PRIu64,
                       s->bytes_outstanding, s->bytes_cached, s->bytes_reserved);
    if (class_reserved > s->bytes_reserved)
        return why_not(why, len,
                       "the classes' reserved bytes (%" PRIu64 ") exceed the pool's (%" PRIu64
                       ")",
                       class_reserved, s->bytes_reserved);
    if (s->discards > s->oversize)
        return why_not(why, len, "discards %" PRIu64 " > oversize gets %" PRIu64,
                       s->discards, s->oversize);
    if (s->discards > s->puts)
        return why_not(why, len, "discards %" PRIu64 " > puts %" PRIu64, s->discards,
                       s->puts);
    if (s->peak_reserved < s->bytes_reserved)
        return why_not(why, len, "peak_reserved %" PRIu64 " < bytes_reserved %" PRIu64,
                       s->peak_reserved, s->bytes_reserved);
    return 1;
}

int zpt_stats_ok(const zp_stats *s, char *why, size_t len)
{
    return stats_ok(s, 0, why, len);
}

int zpt_obj_stats_ok(const zp_stats *s, const zp_obj_type *type, char *why, size_t len)
{
    if (s->nclasses != 1)
        return why_not(why, len, "an object pool with %u classes, not 1",
                       (unsigned)s->nclasses);
    if (s->classes[0].size != type->size)
        return why_not(why, len, "the class is of %" PRIu64 " bytes, the objects of %zu",
                       s->classes[0].size, type->size);
    if (s->oversize || s->discards)
        return why_not(why, len, "an object pool with oversize gets (%" PRIu64
                       ") or discards (%" PRIu64 ")", s->oversize, s->discards);
    return stats_ok(s, zpt_obj_stride(type), why, len);
}

int zpt_stats_monotonic(const zp_stats *a, const zp_stats *b, char *why, size_t len)
{
    uint32_t c;
#define MONOTONIC(f)                                                                    \
    if (b->f < a->f)                                                                    \
        return why_not(why, len, #f " went back from %" PRIu64 " to %" PRIu64, a->f, b->f);
    MONOTONIC(gets) MONOTONIC(puts) MONOTONIC(cache_hits) MONOTONIC(depot_hits)
    MONOTONIC(allocations) MONOTONIC(oversize) MONOTONIC(discards) MONOTONIC(contention)
    MONOTONIC(misuse) MONOTONIC(peak_reserved)
#undef MONOTONIC
    for (c = 0; c < a->nclasses && c < ZP_MAX_CLASSES; c++) {
        const zp_class_stats *x = &a->classes[c], *y = &b->classes[c];
        if (y->gets < x->gets || y->puts < x->puts || y->cache_hits < x->cache_hits ||
            y->depot_hits < x->depot_hits || y->allocations < x->allocations ||
            y->contention < x->contention)
            return why_not(why, len, "a counter of class %" PRIu64 " went back", x->size);
    }
    return 1;
}

int zpt_stats_counters_differ(const zp_stats *a, const zp_stats *b)
{
    int differ = 0;
#define DIFFER(f)                                                                       \
    if (a->f != b->f) {                                                                 \
        fprintf(stderr, "# %s: %" PRIu64 " then %" PRIu64 "\n", #f, a->f, b->f);         \
        differ++;                                                                       \
    }
    DIFFER(gets) DIFFER(puts) DIFFER(cache_hits) DIFFER(depot_hits) DIFFER(allocations)
    DIFFER(oversize) DIFFER(discards) DIFFER(misuse)
#undef DIFFER
    return differ;
}

void zpt_stats_print(const char *what, const zp_stats *s)
{
    fprintf(stderr,
            "# %s: gets %llu puts %llu cache_hits %llu depot_hits %llu "
            "allocations %llu oversize %llu discards %llu misuse %llu "
            "reserved %llu outstanding %llu cached %llu peak %llu\n",
            what, (unsigned long long)s->gets, (unsigned long long)s->puts,
            (unsigned long long)s->cache_hits, (unsigned long long)s->depot_hits,
            (unsigned long long)s->allocations, (unsigned long long)s->oversize,
            (unsigned long long)s->discards, (unsigned long long)s->misuse,
            (unsigned long long)s->bytes_reserved, (unsigned long long)s->bytes_outstanding,
            (unsigned long long)s->bytes_cached, (unsigned long long)s->peak_reserved);
}

void zpt_stats_print_classes(const char *what, const zp_stats *s)
{
    uint32_t c;
    zpt_stats_print(what, s);
    for (c = 0; c < s->nclasses && c < ZP_MAX_CLASSES; c++) {
        const zp_class_stats *k = &s->classes[c];
        if (!k->gets && !k->puts && !k->bytes_reserved)
            continue;
        fprintf(stderr,
                "#   class %8" PRIu64 ": gets %" PRIu64 " puts %" PRIu64 " hits %" PRIu64
                " depot %" PRIu64 " alloc %" PRIu64 " contention %" PRIu64 " out %" PRIu64
                " cached %" PRIu64 " reserved %" PRIu64 "\n",
                k->size, k->gets, k->puts, k->cache_hits, k->depot_hits, k->allocations,
                k->contention, k->bytes_outstanding, k->bytes_cached, k->bytes_reserved);
    }
}

void zpt_assert_stats_at(const char *file, int line, const zp_stats *s, size_t mapped)
{
    char why[256];
    if (!zpt_stats_ok(s, why, sizeof why)) {
        zpt_stats_print_classes("stats", s);
        zpt_fail_at(file, line, "stats invariant broken: %s", why);
    }
    if (mapped != SIZE_MAX && s->bytes_reserved != mapped) {
        zpt_stats_print("stats", s);
        zpt_fail_at(file, line, "bytes_reserved %llu, but the provider has %zu bytes mapped",
                    (unsigned long long)s->bytes_reserved, mapped);
    }
}

void zpt_assert_obj_stats_at(const char *file, int line, const zp_stats *s,
                             const zp_obj_type *type, size_t mapped)
{
    char why[256];
    if (!zpt_obj_stats_ok(s, type, why, sizeof why)) {
        zpt_stats_print_classes("stats", s);
        zpt_fail_at(file, line, "object pool stats invariant broken: %s", why);
    }
    if (mapped != SIZE_MAX && s->bytes_reserved != mapped) {
        zpt_stats_print("stats", s);
        zpt_fail_at(file, line, "bytes_reserved %llu, but the provider has %zu bytes mapped",
                    (unsigned long long)s->bytes_reserved, mapped);
    }
}

int zpt_stats_consistent(zp_pool *pool, zpt_provider *pv, zp_stats *out)
{
    zp_stats s;
    char why[256];
    if (zpt_stats(pool, &s) != 0) {
        fprintf(stderr, "# zp_stats_read failed\n");
        return 0;
    }
    if (out)
        *out = s;
    if (!zpt_stats_ok(&s, why, sizeof why)) {
        zpt_stats_print_classes(why, &s);
        return 0;
    }
    if (pv && s.bytes_reserved != atomic_load(&pv->bytes_live)) {
        fprintf(stderr, "# provider has %zu bytes mapped\n",
                (size_t)atomic_load(&pv->bytes_live));
        zpt_stats_print("reserved differs from the provider", &s);
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- pools */

/* v, with ZPT_ZERO standing for an explicit 0. */
static size_t explicit(size_t v)
{
    return v == ZPT_ZERO ? 0 : v;
}

void zpt_config(zp_config *cfg, const zpt_pool_opts *o)
{
    zp_config_init(cfg);
    if (o->name)
        cfg->name = o->name;
    if (o->min_class)
        cfg->min_class = o->min_class;
    if (o->max_class)
        cfg->max_class = o->max_class;
    if (o->cache_depth)
        cfg->cache_depth = (unsigned)explicit(o->cache_depth);
    if (o->cache_bytes)
        cfg->cache_bytes = explicit(o->cache_bytes);
    if (o->flags)
        cfg->flags = o->flags;
    if (o->debug)
        cfg->debug = o->debug;
    if (o->budget)
        cfg->budget = o->budget;
    if (o->max_bytes)
        cfg->max_bytes = o->max_bytes;
    if (o->max_cached_bytes)
        cfg->max_cached_bytes = explicit(o->max_cached_bytes);
    if (o->decay_ms)
        cfg->decay_ms = o->decay_ms;
    if (o->pv)
        zpt_provider_attach(cfg, o->pv);
    else if (o->provider)
        cfg->provider = *o->provider;
}

zp_pool *zpt_pool_at(const char *file, int line, const zpt_pool_opts *o)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    int rc;
    zpt_config(&cfg, o);
    rc = o->type ? zp_objpool_create(&cfg, o->type, &pool) : zp_pool_create(&cfg, &pool);
    if (rc != 0 || pool == NULL)
        zpt_fail_at(file, line, "%s: %d (%s)",
                    o->type ? "zp_objpool_create" : "zp_pool_create", rc, zp_strerror(rc));
    return pool;
}

/* ------------------------------------------------------ misuse handlers */

void zpt_misuse_record(zp_pool *pool, int kind, const void *ptr, const char *msg,
                       void *arg)
{
    zpt_misuse_log *log = (zpt_misuse_log *)arg;
    zpt_misuse_report r;
    r.kind = kind;
    r.ptr = ptr;
    r.pool = pool;
    r.msg_was_null = msg == NULL;
    snprintf(r.msg, sizeof(r.msg), "%s", msg ? msg : "");
    pthread_mutex_lock(&log->lock);
    if (log->count < ZPT_MISUSE_KEEP)
        log->first[log->count] = r;
    log->last = r;
    log->count++;
    pthread_mutex_unlock(&log->lock);
}

void zpt_misuse_tally(zp_pool *pool, int kind, const void *ptr, const char *msg,
                      void *counter)
{
    (void)pool;
    (void)kind;
    (void)ptr;
    (void)msg;
    if (counter)
        atomic_fetch_add((atomic_int *)counter, 1);
}

void zpt_misuse_reset(zpt_misuse_log *log)
{
    pthread_mutex_lock(&log->lock);
    log->count = 0;
    memset(&log->last, 0, sizeof(log->last));
    memset(log->first, 0, sizeof(log->first));
    pthread_mutex_unlock(&log->lock);
}

zpt_misuse_log zpt_g_misuse = ZPT_MISUSE_LOG_INIT;

int zpt_misuse_setup(void **state)
{
    (void)state;
    zpt_misuse_reset(&zpt_g_misuse);
    zp_set_misuse_handler(zpt_misuse_record, &zpt_g_misuse);
    return 0;
}

int zpt_misuse_teardown(void **state)
{
    (void)state;
    zp_set_misuse_handler(NULL, NULL);
    return 0;
}

int zpt_misuse_count(zpt_misuse_log *log)
{
    int n;
    pthread_mutex_lock(&log->lock);
    n = log->count;
    pthread_mutex_unlock(&log->lock);
    return n;
}

int zpt_misuse_last(zpt_misuse_log *log, zpt_misuse_report *last)
{
    int n;
    pthread_mutex_lock(&log->lock);
    n = log->count;
    if (last)
        *last = log->last;
    pthread_mutex_unlock(&log->lock);
    return n;
}

zpt_misuse_report zpt_misuse_nth(zpt_misuse_log *log, int i)
{
    zpt_misuse_report r;
    memset(&r, 0, sizeof(r));
    pthread_mutex_lock(&log->lock);
    if (i >= 0 && i < ZPT_MISUSE_KEEP)
        r = log->first[i];
    pthread_mutex_unlock(&log->lock);
    return r;
}

const char *zpt_misuse_kind_name(int kind)
{
    switch (kind) {
    case ZP_MISUSE_FOREIGN:
        return "FOREIGN";
    case ZP_MISUSE_DOUBLE_PUT:
        return "DOUBLE_PUT";
    case ZP_MISUSE_WRONG_POOL:
        return "WRONG_POOL";
    case ZP_MISUSE_CORRUPTED:
        return "CORRUPTED";
    default:
        return "none";
    }
}

void zpt_assert_misuse_at(const char *file, int line, zpt_misuse_log *log, int n,
                          int kind, const void *ptr, zp_pool *pool, const char *what)
{
    zpt_misuse_report last;
    int count;
    memset(&last, 0, sizeof(last));
    count = zpt_misuse_last(log, &last);
    if (count != n || last.kind != kind || last.ptr != ptr || last.pool != pool)
        zpt_fail_at(file, line,
                    "%s: %d misuse reports, the last %s for %p in pool %p (\"%s\"); "
                    "expected %d, the last %s for %p in pool %p",
                    what, count, zpt_misuse_kind_name(last.kind), last.ptr,
                    (void *)last.pool, last.msg, n, zpt_misuse_kind_name(kind), ptr,
                    (void *)pool);
}

/* -------------------------------------------------- budgets and waiters */

zp_budget *zpt_budget_new_at(const char *file, int line, size_t max)
{
    zp_budget *b = NULL;
    int rc = zp_budget_create(max, &b);
    if (rc != 0 || b == NULL)
        zpt_fail_at(file, line, "zp_budget_create(%zu): %d", max, rc);
    return b;
}

int zpt_budget_stats(zp_budget *b, zp_budget_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    return zp_budget_read(b, s);
}

uint64_t zpt_waiters(zp_budget *b)
{
    zp_budget_stats s;
    return zpt_budget_stats(b, &s) == 0 ? s.waiters : 0;
}

int zpt_wait_waiters(zp_budget *b, uint64_t n, unsigned timeout_ms)
{
    uint64_t start = zpt_now_ns();
    while (zpt_waiters(b) < n) {
        if (zpt_ms_since(start) > timeout_ms)
            return 0;
        zpt_sleep_ms(1);
    }
    return 1;
}

void zpt_get_mib_at(const char *file, int line, zp_pool *pool, void **bufs, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if ((bufs[i] = zp_get(pool, ZPT_MiB)) == NULL)
            zpt_fail_at(file, line, "1 MiB buffer %d of %d: zp_get failed (errno %d)", i,
                        n, errno);
}

void *zpt_get_put_exit(void *arg)
{
    zp_pool *pool = (zp_pool *)arg;
    void *bufs[4];
    int i, n = 0;
    for (i = 0; i < 4; i++)
        if ((bufs[n] = zp_get(pool, ZPT_MiB)) != NULL)
            n++;
    for (i = 0; i < n; i++)
        zp_put(pool, bufs[i]);
    return (void *)(intptr_t)n;
}

static void *waiter_main(void *arg)
{
    zpt_waiter *w = (zpt_waiter *)arg;
    atomic_store(&w->started, 1);
    errno = 0;
    w->buf = zp_get_timed(w->pool, w->size, w->timeout_ms);
    w->err = w->buf ? 0 : errno;
    w->returned_ns = zpt_now_ns();
    if (w->on_return)
        w->on_return(w);
    atomic_store(&w->done, 1);
    return NULL;
}

void zpt_waiter_start_at(const char *file, int line, zpt_waiter *w, zp_pool *pool,
                         size_t size, int timeout_ms, void (*on_return)(zpt_waiter *),
                         int id)
{
    int rc;
    memset(w, 0, sizeof(*w));
    w->pool = pool;
    w->size = size;
    w->timeout_ms = timeout_ms;
    w->on_return = on_return;
    w->id = id;
    atomic_init(&w->started, 0);
    atomic_init(&w->done, 0);
    if ((rc = pthread_create(&w->thread, NULL, waiter_main, w)) != 0)
        zpt_fail_at(file, line, "pthread_create of a waiter: %s", strerror(rc));
}

/* ------------------------------------------------------ resident memory */

size_t zpt_rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * zpt_page_size();
}

size_t zpt_resident_in(const void *p, size_t n)
{
    size_t page = zpt_page_size();
    uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)p + n + page - 1) & ~(uintptr_t)(page - 1);
    size_t pages = (end - start) / page, i, res = 0;
    unsigned char *vec = (unsigned char *)malloc(pages ? pages : 1);
    if (vec == NULL)
        return SIZE_MAX;
    if (mincore((void *)start, end - start, vec) != 0) {
        free(vec);
        return SIZE_MAX;
    }
    for (i = 0; i < pages; i++)
        res += (vec[i] & 1) ? page : 0;
    free(vec);
    return res;
}

void zpt_touch(void *p, size_t n, unsigned char byte)
{
    memset(p, byte, n);
}

int zpt_rss_dropped(size_t peak, size_t after, uint64_t released, double share)
{
    size_t drop = peak > after ? peak - after : 0;
    return (double)drop >= share * (double)released;
}

void zpt_check_rss_at(const char *file, int line, size_t before, size_t peak,
                      size_t after, uint64_t released)
{
    if (before == 0) {
        print_message("RSS assertion skipped: /proc/self/statm unreadable\n");
        return;
    }
    if (!zpt_rss_dropped(peak, after, released, ZPT_RSS_SHARE))
        zpt_fail_at(file, line,
                    "RSS dropped %.1f MiB (peak %.1f -> %.1f MiB), less than %.0f%% of the "
                    "%.1f MiB released",
                    zpt_mib(peak > after ? peak - after : 0), zpt_mib(peak), zpt_mib(after),
                    100.0 * ZPT_RSS_SHARE, zpt_mib(released));
}

void zpt_rss_burst_at(const char *file, int line, zp_pool *pool, void **bufs, int n,
                      size_t *before, size_t *peak)
{
    int i;
    *before = zpt_rss_bytes();
    for (i = 0; i < n; i++) {
        bufs[i] = zp_get(pool, ZPT_MiB);
        if (bufs[i] == NULL)
            zpt_fail_at(file, line, "burst: 1 MiB buffer %d of %d: zp_get failed", i, n);
        zpt_touch(bufs[i], ZPT_MiB, (unsigned char)(i + 1));
    }
    *peak = zpt_rss_bytes();
    for (i = 0; i < n; i++)
        zp_put(pool, bufs[i]);
}

/* ------------------------------------------------- cross-thread putter */

static void *xfer_putter(void *arg)
{
    zpt_xfer *x = arg;
    void *local[ZPT_XFER_BATCH];
    int i;
    for (;;) {
        pthread_mutex_lock(&x->lock);
        while (!x->full && !x->stop)
            pthread_cond_wait(&x->cond, &x->lock);
        if (!x->full && x->stop) {
            pthread_mutex_unlock(&x->lock);
            break;
        }
        memcpy(local, x->slot, sizeof local);
        x->full = 0;
        pthread_cond_broadcast(&x->cond);
        pthread_mutex_unlock(&x->lock);
        for (i = 0; i < ZPT_XFER_BATCH; i++)
            zp_put(x->pool, local[i]);
        pthread_mutex_lock(&x->lock);
        x->put_batches++;
        pthread_cond_broadcast(&x->cond);
        pthread_mutex_unlock(&x->lock);
    }
    return NULL;
}

void zpt_xfer_start(zpt_xfer *x, zp_pool *pool)
{
    memset(x, 0, sizeof *x);
    x->pool = pool;
    pthread_mutex_init(&x->lock, NULL);
    pthread_cond_init(&x->cond, NULL);
    assert_int_equal(pthread_create(&x->thread, NULL, xfer_putter, x), 0);
}

void zpt_xfer_hand(zpt_xfer *x, void *const *batch)
{
    pthread_mutex_lock(&x->lock);
    while (x->full)
        pthread_cond_wait(&x->cond, &x->lock);
    memcpy(x->slot, batch, sizeof x->slot);
    x->full = 1;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
}

void zpt_xfer_wait_taken(zpt_xfer *x)
{
    pthread_mutex_lock(&x->lock);
    while (x->full)
        pthread_cond_wait(&x->cond, &x->lock);
    pthread_mutex_unlock(&x->lock);
}

void zpt_xfer_wait_put(zpt_xfer *x, unsigned long n)
{
    pthread_mutex_lock(&x->lock);
    while (x->put_batches < n)
        pthread_cond_wait(&x->cond, &x->lock);
    pthread_mutex_unlock(&x->lock);
}

void zpt_xfer_stop(zpt_xfer *x)
{
    pthread_mutex_lock(&x->lock);
    x->stop = 1;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    assert_int_equal(pthread_join(x->thread, NULL), 0);
    pthread_cond_destroy(&x->cond);
    pthread_mutex_destroy(&x->lock);
}

void zpt_waiter_settle(zpt_waiter *w, zp_budget *budget)
{
    if (budget) {
        (void)zpt_wait_waiters(budget, 1, 2000);
        assert_int_equal(zpt_waiters(budget), 1);
    } else {
        while (!atomic_load(&w->started))
            zpt_sleep_ms(1);
        zpt_sleep_ms(100); /* let it reach the wait (not a pass criterion) */
    }
}

long long zpt_status_kib(const char *field)
{
    char line[256];
    size_t len = strlen(field);
    long long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            v = strtoll(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static int smaps_hits(uintptr_t lo, uintptr_t hi, void *const *ptrs, const size_t *lens,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = (uintptr_t)ptrs[i], b = a + lens[i];
        if (a < hi && b > lo)
            return 1;
    }
    return 0;
}

int zpt_smaps_sum(void *const *ptrs, const size_t *lens, size_t n, zpt_smaps *out)
{
    char line[512];
    int in = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    memset(out, 0, sizeof *out);
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi, kib;
        char key[64];
        if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2 && strchr(line, ':') != NULL &&
            line[strspn(line, "0123456789abcdef")] == '-') {
            in = smaps_hits((uintptr_t)lo, (uintptr_t)hi, ptrs, lens, n);
            if (in) {
                out->vmas++;
                out->bytes += (size_t)(hi - lo);
            }
            continue;
        }
        if (!in || sscanf(line, "%63[^:]: %llu kB", key, &kib) != 2)
            continue;
        if (strcmp(key, "Rss") == 0)
            out->rss += (size_t)kib << 10;
        else if (strcmp(key, "AnonHugePages") == 0 || strcmp(key, "Private_Hugetlb") == 0 ||
                 strcmp(key, "Shared_Hugetlb") == 0)
            out->huge += (size_t)kib << 10;
    }
    fclose(f);
    return 0;
}

const char *zpt_thp_mode(void)
{
    static char mode[16];
    char buf[128], *a, *b;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    mode[0] = '\0';
    if (f == NULL)
        return mode;
    if (fgets(buf, sizeof buf, f) && (a = strchr(buf, '[')) && (b = strchr(a, ']')) &&
        (size_t)(b - a - 1) < sizeof mode) {
        memcpy(mode, a + 1, (size_t)(b - a - 1));
        mode[b - a - 1] = '\0';
    }
    fclose(f);
    return mode;
}

long zpt_hugetlb_free(void)
{
    long long v = -1;
    char line[128];
    FILE *f = fopen("/proc/meminfo", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "HugePages_Free: %lld", &v) == 1)
            break;
    fclose(f);
    return (long)v;
}
