/* Tests the per-class stats breakdown, zp_stats_reset, the hit-rate helpers and struct_size handling. */
#include "zp_test.h"

#include <stdbool.h>

/*
 * Pools here: min_class 4 KiB, max_class 1 MiB (9 classes), cache_depth 32,
 * cache_bytes 64 MiB, so every class's thread cache holds CAP = 32 and the
 * depot moves BATCH = 16; a slab is max(class, 256 KiB) and a refill maps at
 * most one slab. A get that misses the thread cache refills it with r
 * buffers (fewer if the depot, or else the current slab, has fewer), where r
 * starts at 1 per (thread, class) bin and doubles after every refill up to
 * BATCH: 1, 2, 4, 8, 16, 16 ..., and on to CAP while no flush comes between
 * two refills (a getting streak). A put into a full bin flushes BATCH, or
 * the whole bin when no refill came since its last flush (a putting
 * streak); a flush brings r back to BATCH. test_model_exact replays single gets and
 * puts on a model of exactly that (thread cache -> depot -> slabs) and
 * compares every counter and gauge of every class.
 */
#define MAXC (1 * ZPT_MiB)
#define NCLASSES 9
#define CAP 32
#define BATCH 16
#define SLAB (256 * ZPT_KiB)
#define GRAIN (64 * ZPT_KiB)

/* The pools here: max_class MAXC, and whatever a test adds. */
#define POOL(...) ZPT_POOL(.max_class = MAXC, __VA_ARGS__)

/* ------------------------------------------------------------ the model */

typedef struct model_class {
    uint64_t size, bin, depot, slab_left, slab_bufs;
    uint64_t refill; /* r of the (only) thread's bin: the next refill's size */
    bool refilled;   /* the bin was refilled since its last flush */
    bool flushed;    /* the bin was flushed since its last refill */
    uint64_t gets, puts, hits, depot_hits, allocs, carved, reserved;
} model_class;

typedef struct model {
    model_class c[NCLASSES];
    uint64_t oversize, discards, over_bytes, over_reserved, peak;
} model;

static void model_init(model *m)
{
    unsigned i;
    memset(m, 0, sizeof *m);
    for (i = 0; i < NCLASSES; i++) {
        m->c[i].size = (uint64_t)4096 << i;
        /* the first refill spans 128 KiB for classes of 32 and 64 KiB */
        m->c[i].refill = m->c[i].size >= 32768 && m->c[i].size < 131072
                             ? 131072 / m->c[i].size
                             : 1;
        m->c[i].slab_bufs = m->c[i].size >= SLAB ? 1 : SLAB / m->c[i].size;
    }
}

static uint64_t model_reserved(const model *m)
{
    uint64_t r = m->over_reserved;
    unsigned i;
    for (i = 0; i < NCLASSES; i++)
        r += m->c[i].reserved;
    return r;
}

/* After a refill (from the depot or a slab) the next one is twice as big,
 * up to BATCH, and beyond it up to CAP when no flush came between. */
static void model_refilled(model_class *k)
{
    if (k->refill < BATCH)
        k->refill = k->refill * 2 < BATCH ? k->refill * 2 : BATCH;
    else if (!k->flushed)
        k->refill = k->refill * 2 < CAP ? k->refill * 2 : CAP;
    k->flushed = false;
    k->refilled = true;
}

static void model_get(model *m, unsigned cls)
{
    model_class *k = &m->c[cls];
    k->gets++;
    if (k->bin) {
        k->bin--;
        k->hits++;
        return;
    }
    if (k->depot) {
        uint64_t t = k->depot < k->refill ? k->depot : k->refill;
        k->depot -= t;
        k->bin = t - 1;
        k->depot_hits++;
        model_refilled(k);
        return;
    }
    if (k->slab_left == 0) {
        k->slab_left = k->slab_bufs;
        k->reserved += k->slab_bufs * k->size;
        if (model_reserved(m) > m->peak)
            m->peak = model_reserved(m);
    }
    uint64_t t = k->slab_left < k->refill ? k->slab_left : k->refill;
    k->slab_left -= t;
    k->carved += t;
    k->bin = t - 1;
    k->allocs++;
    model_refilled(k);
}

static void model_put(model *m, unsigned cls)
{
    model_class *k = &m->c[cls];
    if (k->bin == CAP) {
        uint64_t give = !k->refilled && k->flushed ? CAP : BATCH;
        k->bin -= give;
        k->depot += give;
        k->refilled = false;
        k->flushed = true;
        if (k->refill > BATCH)
            k->refill = BATCH;
    }
    k->bin++;
    k->puts++;
}

static void compare(const model *m, const zp_stats *s, const char *when)
{
    uint64_t gets = m->oversize, out = m->over_bytes, cached = 0;
    unsigned i;
    zpt_assert_stats(s);
    assert_int_equal(s->nclasses, NCLASSES);
    for (i = 0; i < NCLASSES; i++) {
        const model_class *k = &m->c[i];
        const zp_class_stats *x = &s->classes[i];
        uint64_t held = k->gets - k->puts;
        if (x->size != k->size || x->gets != k->gets || x->puts != k->puts ||
            x->cache_hits != k->hits || x->depot_hits != k->depot_hits ||
            x->allocations != k->allocs || x->contention != 0 ||
            x->bytes_outstanding != held * k->size ||
            x->bytes_cached != (k->carved - held) * k->size ||
            x->bytes_reserved != k->reserved) {
            zpt_stats_print_classes(when, s);
            fail_msg("%s: class %llu: expected gets %llu puts %llu hits %llu depot %llu "
                     "alloc %llu out %llu cached %llu reserved %llu",
                     when, (unsigned long long)k->size, (unsigned long long)k->gets,
                     (unsigned long long)k->puts, (unsigned long long)k->hits,
                     (unsigned long long)k->depot_hits, (unsigned long long)k->allocs,
                     (unsigned long long)(held * k->size),
                     (unsigned long long)((k->carved - held) * k->size),
                     (unsigned long long)k->reserved);
        }
        gets += k->gets;
        out += held * k->size;
        cached += (k->carved - held) * k->size;
    }
    assert_int_equal(s->gets, gets);
    assert_int_equal(s->oversize, m->oversize);
    assert_int_equal(s->discards, m->discards);
    assert_int_equal(s->bytes_outstanding, out);
    assert_int_equal(s->bytes_cached, cached);
    assert_int_equal(s->bytes_reserved, model_reserved(m));
    assert_int_equal(s->peak_reserved, m->peak);
    assert_int_equal(s->contention, 0);
    assert_int_equal(s->misuse, 0);
}

/* Puts a held buffer and has the model follow: cls is its class index, or
 * -1 for an oversize buffer of over_len bytes (discarded: unmapped). */
static void put_held(zp_pool *pool, model *m, void *buf, int cls, size_t over_len)
{
    zp_put(pool, buf);
    if (cls < 0) {
        m->discards++;
        m->over_bytes -= over_len;
        m->over_reserved -= over_len;
    } else {
        model_put(m, (unsigned)cls);
    }
}

/* Random single gets and puts over every class and oversize, in waves:
 * each class's figures match the model after every 25 operations. */
static void test_model_exact(void **state)
{
    enum { HOLD = 200, OPS = 12000 };
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = POOL(.pv = pv, .cache_depth = CAP); /* fixed bins: the model's */
    void *held[HOLD];
    int cls[HOLD]; /* class index, or -1 for oversize */
    size_t over_len[HOLD];
    uint64_t rng = 42;
    model m;
    zp_stats s;
    int op, i;
    (void)state;
    model_init(&m);
    memset(held, 0, sizeof held);
    for (op = 0; op < OPS; op++) {
        /* waves: 400 operations leaning to gets, then 400 leaning to puts,
         * so the caches overflow into the depot and refill from it */
        int filling = (op / 400) % 2 == 0;
        i = (int)(zpt_rand(&rng) % HOLD);
        if (held[i] ? filling && zpt_rand(&rng) % 8 : !filling && zpt_rand(&rng) % 8)
            continue;
        if (held[i]) {
            put_held(pool, &m, held[i], cls[i], over_len[i]);
            held[i] = NULL;
        } else {
            /* skewed to the small classes, so caches overflow and refill */
            unsigned c = (unsigned)(zpt_rand(&rng) % 16);
            size_t size;
            c = c < 8 ? 0 : c < 11 ? 1 : c - 9; /* 0..6, mostly 0 */
            if (zpt_rand(&rng) % 40 == 0)
                c = 8;
            size = ((size_t)4096 << c) - (size_t)(zpt_rand(&rng) % 2048);
            if (zpt_rand(&rng) % 60 == 0) {
                size = MAXC + 1 + (size_t)(zpt_rand(&rng) % MAXC);
                held[i] = zp_get(pool, size);
                assert_non_null(held[i]);
                cls[i] = -1;
                over_len[i] = (size + GRAIN - 1) / GRAIN * GRAIN;
                assert_int_equal(zp_capacity(pool, held[i]), over_len[i]);
                m.oversize++;
                m.over_bytes += over_len[i];
                m.over_reserved += over_len[i];
                if (model_reserved(&m) > m.peak)
                    m.peak = model_reserved(&m);
            } else {
                held[i] = zp_get(pool, size);
                assert_non_null(held[i]);
                cls[i] = (int)c;
                model_get(&m, c);
            }
        }
        if (op % 25 == 24) {
            char when[32];
            snprintf(when, sizeof when, "after op %d", op);
            s = zpt_read(pool);
            compare(&m, &s, when);
        }
    }
    for (i = 0; i < HOLD; i++) {
        if (!held[i])
            continue;
        put_held(pool, &m, held[i], cls[i], over_len[i]);
    }
    s = zpt_read(pool);
    compare(&m, &s, "all put");
    zpt_stats_print_classes("model run", &s);
    assert_true(s.cache_hits > 0 && s.depot_hits > 0 && s.allocations > 0);
    assert_int_equal(s.bytes_reserved, atomic_load(&pv->bytes_live));
    zp_pool_destroy(pool);
    zpt_provider_free(pv);
}

/* ------------------------------------------------------------------ reset */

static void expect_counters_zero(const zp_stats *s)
{
    unsigned c;
    if (s->gets || s->puts || s->cache_hits || s->depot_hits || s->allocations ||
        s->oversize || s->discards || s->contention || s->misuse) {
        zpt_stats_print_classes("after reset", s);
        fail_msg("a counter is not 0 right after zp_stats_reset");
    }
    for (c = 0; c < s->nclasses; c++) {
        const zp_class_stats *k = &s->classes[c];
        if (k->gets || k->puts || k->cache_hits || k->depot_hits || k->allocations ||
            k->contention) {
            zpt_stats_print_classes("after reset", s);
            fail_msg("a counter of class %llu is not 0 right after zp_stats_reset",
                     (unsigned long long)k->size);
        }
    }
}

/* Reset zeroes every counter (per class too), leaves the gauges alone,
 * restarts peak_reserved at the current reserved bytes; later activity is
 * counted from zero, including puts of buffers got before the reset. */
static void test_reset(void **state)
{
    zp_pool *pool = POOL();
    void *a[20], *big, *o, *x;
    char junk[8];
    zp_stats before, s;
    unsigned c;
    int i;
    (void)state;
    zp_set_misuse_handler(zpt_misuse_tally, NULL); /* ignored */
    for (i = 0; i < 20; i++)
        a[i] = zp_get(pool, (size_t)4096 << (i % 4));
    big = zp_get(pool, MAXC);
    o = zp_get(pool, 3 * MAXC); /* oversize */
    zp_put(pool, big);
    x = zp_get(pool, 2 * MAXC); /* mapped and unmapped: peak > reserved */
    zp_put(pool, x);
    zp_put(pool, junk); /* one misuse */
    for (i = 0; i < 10; i++)
        zp_put(pool, a[i]);
    before = zpt_read(pool);
    assert_int_equal(before.misuse, 1);
    assert_int_equal(before.peak_reserved, before.bytes_reserved + 2 * MAXC);
    zp_stats_reset(pool);
    s = zpt_read(pool);
    expect_counters_zero(&s);
    assert_int_equal(s.bytes_reserved, before.bytes_reserved);
    assert_int_equal(s.bytes_outstanding, before.bytes_outstanding);
    assert_int_equal(s.bytes_cached, before.bytes_cached);
    assert_int_equal(s.peak_reserved, before.bytes_reserved);
    assert_int_equal(s.nclasses, before.nclasses);
    for (c = 0; c < s.nclasses; c++) {
        assert_int_equal(s.classes[c].size, before.classes[c].size);
        assert_int_equal(s.classes[c].bytes_outstanding, before.classes[c].bytes_outstanding);
        assert_int_equal(s.classes[c].bytes_cached, before.classes[c].bytes_cached);
        assert_int_equal(s.classes[c].bytes_reserved, before.classes[c].bytes_reserved);
    }
    zpt_assert_stats(&s);
    /* a second reset with nothing in between changes nothing */
    zp_stats_reset(pool);
    s = zpt_read(pool);
    expect_counters_zero(&s);
    assert_int_equal(s.bytes_outstanding, before.bytes_outstanding);
    zp_stats_reset(NULL);

    /* buffers got before the reset, put after it */
    for (i = 10; i < 20; i++)
        zp_put(pool, a[i]);
    zp_put(pool, o);
    s = zpt_read(pool);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.puts, 11);
    assert_int_equal(s.discards, 1);
    assert_int_equal(s.bytes_outstanding, 0);
    for (c = 0; c < 4; c++) {
        assert_int_equal(s.classes[c].puts, c < 2 ? 2 : 3); /* a[10..19] by i % 4 */
        assert_int_equal(s.classes[c].gets, 0);
        assert_int_equal(s.classes[c].bytes_outstanding, 0);
    }
    assert_int_equal(s.peak_reserved, before.bytes_reserved);
    assert_true(s.bytes_reserved < before.bytes_reserved); /* o unmapped */
    assert_true(zpt_stats_sum_ok(&s));
    assert_true(zpt_stats_classes_ok(&s));

    /* new activity counts from zero; peak follows the new reserved */
    x = zp_get(pool, 4096);
    s = zpt_read(pool);
    assert_int_equal(s.gets, 1);
    assert_int_equal(s.cache_hits, 1);
    assert_int_equal(s.classes[0].gets, 1);
    zp_put(pool, x);
    zp_stats_reset(pool);
    s = zpt_read(pool);
    assert_int_equal(s.peak_reserved, s.bytes_reserved);
    x = zp_get(pool, 2 * MAXC);
    zp_put(pool, x);
    s = zpt_read(pool);
    assert_int_equal(s.peak_reserved, s.bytes_reserved + 2 * MAXC);
    assert_int_equal(s.gets, 1);
    assert_int_equal(s.oversize, 1);
    assert_int_equal(s.discards, 1);
    zpt_assert_stats(&s);
    zp_set_misuse_handler(NULL, NULL);
    zp_pool_destroy(pool);
}

typedef struct batch_arg {
    zp_pool *pool;
    int rc;
} batch_arg;

static void *oversize_batch(void *p)
{
    batch_arg *b = p;
    void *bufs[2];
    b->rc = zp_get_batch(b->pool, 2 * MAXC, bufs, 2);
    if (b->rc == 0)
        zp_put_batch(b->pool, bufs, 2);
    return NULL;
}

/* A reset while an oversize batch is being served, which then fails and
 * rolls back: the operation is counted before or after the reset, never
 * below zero. */
static void test_reset_during_failing_batch(void **state)
{
    /* the second map call blocks until released, then fails */
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool;
    batch_arg b;
    pthread_t t;
    zp_stats s;
    int i;
    (void)state;
    atomic_store(&pv->block_nth, 2);
    atomic_store(&pv->fail_nth, 2);
    pool = POOL(.pv = pv);
    b.pool = pool;
    b.rc = 1;
    assert_int_equal(pthread_create(&t, NULL, oversize_batch, &b), 0);
    for (i = 0; i < 20000 && !atomic_load(&pv->blocked); i++)
        usleep(1000);
    assert_true(atomic_load(&pv->blocked));
    zp_stats_reset(pool); /* the first buffer is mapped and counted now */
    atomic_store(&pv->release, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(b.rc, -ENOMEM);
    s = zpt_read(pool);
    if (s.gets != 0 || s.oversize != 0 || s.puts != 0 || s.discards != 0) {
        zpt_stats_print("after the rolled-back batch", &s);
        fail_msg("a batch that failed after zp_stats_reset left gets %llu oversize %llu "
                 "puts %llu discards %llu (expected all 0: it took nothing)",
                 (unsigned long long)s.gets, (unsigned long long)s.oversize,
                 (unsigned long long)s.puts, (unsigned long long)s.discards);
    }
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_reserved, 0);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* --------------------------------------------------------------- hit rates */

static void test_hit_rates(void **state)
{
    zp_stats s;
    zp_pool *pool;
    void *a[40];
    int i;
    (void)state;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    /* no gets: 0, not NaN */
    assert_true(zp_stats_cache_hit_rate(&s) == 0.0);
    assert_true(zp_stats_depot_hit_rate(&s) == 0.0);
    assert_true(zp_stats_hit_rate(&s) == 0.0);
    s.gets = 16;
    s.cache_hits = 8;
    s.depot_hits = 4;
    s.allocations = 2;
    s.oversize = 2;
    assert_true(zp_stats_cache_hit_rate(&s) == 0.5);
    assert_true(zp_stats_depot_hit_rate(&s) == 0.25);
    assert_true(zp_stats_hit_rate(&s) == 0.75);
    s.gets = s.oversize = 3;
    s.cache_hits = s.depot_hits = s.allocations = 0;
    assert_true(zp_stats_hit_rate(&s) == 0.0);
    s.gets = s.cache_hits = 7;
    s.oversize = 0;
    assert_true(zp_stats_cache_hit_rate(&s) == 1.0);
    assert_true(zp_stats_hit_rate(&s) == 1.0);

    /* and on a real pool's figures */
    pool = POOL(.cache_depth = 32); /* fixed bins: 40 do not fit */
    for (i = 0; i < 40; i++)
        a[i] = zp_get(pool, 4096);
    for (i = 0; i < 40; i++)
        zp_put(pool, a[i]);
    for (i = 0; i < 40; i++)
        a[i] = zp_get(pool, 4096);
    s = zpt_read(pool);
    assert_true(s.cache_hits > 0 && s.depot_hits > 0 && s.allocations > 0);
    assert_true(zp_stats_cache_hit_rate(&s) == (double)s.cache_hits / (double)s.gets);
    assert_true(zp_stats_depot_hit_rate(&s) == (double)s.depot_hits / (double)s.gets);
    assert_true(zp_stats_hit_rate(&s) ==
                (double)(s.cache_hits + s.depot_hits) / (double)s.gets);
    assert_true(zp_stats_hit_rate(&s) < 1.0);
    for (i = 0; i < 40; i++)
        zp_put(pool, a[i]);
    zp_pool_destroy(pool);
}

/* ------------------------------------------------------------ struct_size */

/* Callers built against an older header pass a shorter struct: nothing
 * beyond it is written, and what is written agrees with a full read.
 * A newer, longer struct: the part the library does not know is left
 * alone. */
static void test_struct_size(void **state)
{
    zp_pool *pool = POOL();
    unsigned char raw[sizeof(zp_stats) + 256];
    zp_stats full, *p = (zp_stats *)(void *)raw;
    size_t sizes[5], i, k;
    void *a = zp_get(pool, 4096), *b = zp_get(pool, 65536);
    int rc;
    (void)state;
    full = zpt_read(pool);
    sizes[0] = offsetof(zp_stats, nclasses);            /* no per-class part */
    sizes[1] = offsetof(zp_stats, classes);             /* nclasses only */
    sizes[2] = offsetof(zp_stats, classes) + 2 * sizeof(zp_class_stats);
    sizes[3] = sizeof(zp_stats);
    sizes[4] = sizeof(zp_stats) + 256;                  /* a newer header */
    for (k = 0; k < 5; k++) {
        memset(raw, 0xA5, sizeof raw);
        p->struct_size = sizes[k];
        rc = zp_stats_read(pool, p);
        if (k >= 3)
            assert_int_equal(rc, 0);
        else
            assert_true(rc == 0 || rc == -EINVAL);
        for (i = sizes[k] < sizeof(zp_stats) ? sizes[k] : sizeof(zp_stats); i < sizeof raw;
             i++)
            if (raw[i] != 0xA5)
                fail_msg("struct_size %zu: byte %zu was written", sizes[k], i);
        if (rc != 0)
            continue;
        assert_int_equal(p->struct_size, sizes[k]);
        assert_int_equal(p->gets, full.gets);
        assert_int_equal(p->bytes_outstanding, full.bytes_outstanding);
        assert_int_equal(p->peak_reserved, full.peak_reserved);
        if (sizes[k] >= offsetof(zp_stats, classes))
            assert_int_equal(p->nclasses, full.nclasses);
        if (sizes[k] >= offsetof(zp_stats, classes) + 2 * sizeof(zp_class_stats)) {
            assert_memory_equal(&p->classes[0], &full.classes[0], sizeof(zp_class_stats));
            assert_memory_equal(&p->classes[1], &full.classes[1], sizeof(zp_class_stats));
        }
    }
    /* too small for the counters it promises: refused */
    memset(raw, 0xA5, sizeof raw);
    p->struct_size = sizeof(size_t);
    assert_int_equal(zp_stats_read(pool, p), -EINVAL);
    for (i = sizeof(size_t); i < sizeof raw; i++)
        if (raw[i] != 0xA5)
            fail_msg("refused read wrote byte %zu", i);
    assert_int_equal(zp_stats_read(pool, NULL), -EINVAL);
    assert_int_equal(zp_stats_read(NULL, &full), -EINVAL);
    zp_put(pool, a);
    zp_put(pool, b);
    zp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_exact),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_reset_during_failing_batch),
        cmocka_unit_test(test_hit_rates),
        cmocka_unit_test(test_struct_size),
    };
    return ZPT_RUN(tests);
}
