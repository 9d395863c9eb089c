/* Tests that zp_cache_flush and zp_cache_destroy move a handle's buffers to the depot (found there by other threads) and lose no byte and no count. */
#include "zp_test.h"

#define SZ ((size_t)64 * 1024)
#define MAXN 256

static zp_pool *make_pool(zpt_provider *pv, unsigned depth, size_t cache_bytes)
{
    return ZPT_POOL(.max_class = 4 * ZPT_MiB, .cache_depth = ZPT_EXACT(depth),
                    .cache_bytes = ZPT_EXACT(cache_bytes), .pv = pv);
}

static zp_cache *make_cache(zp_pool *pool)
{
    zp_cache *c = NULL;
    assert_int_equal(zp_cache_create(pool, &c), 0);
    assert_non_null(c);
    return c;
}

/* ------------------------------------ another thread takes the idle ones */

typedef struct taker {
    zp_pool *pool;
    size_t size;
    int n;            /* buffers to get and hold */
    int use_handle;   /* through a handle of its own, else zp_get */
    int got;          /* how many it got (all or fewer) */
    void *bufs[MAXN];
} taker;

static void *taker_main(void *arg)
{
    taker *t = arg;
    zp_cache *c = NULL;
    int i;
    if (t->use_handle && zp_cache_create(t->pool, &c) != 0)
        return NULL;
    for (i = 0; i < t->n; i++) {
        t->bufs[i] = c ? zp_cache_get(c, t->size) : zp_get(t->pool, t->size);
        if (t->bufs[i] == NULL)
            break;
    }
    t->got = i;
    zp_cache_destroy(c); /* empty: everything it got is held */
    return NULL;
}

/* Gets n buffers of size on a new thread (through a handle of its own if
 * use_handle) and keeps them in *t; main puts them back later. */
static void take_on_thread(taker *t, zp_pool *pool, size_t size, int n,
                           int use_handle)
{
    pthread_t th;
    memset(t, 0, sizeof(*t));
    assert_true(n <= MAXN);
    t->pool = pool;
    t->size = size;
    t->n = n;
    t->use_handle = use_handle;
    zpt_threads_start(&th, 1, taker_main, t, 0);
    zpt_threads_join(&th, 1);
    assert_int_equal(t->got, n);
}

/* A handle holds 16 buffers; zp_cache_flush moves them to the depot, where
 * another thread gets every idle buffer without a fresh allocation (depot
 * hits); bytes_cached is unchanged by the flush itself. */
static void run_flush_feeds_other_thread(int other_uses_handle)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = make_pool(pv, 32, 64 * ZPT_MiB);
    zp_cache *c = make_cache(pool);
    void *bufs[16];
    zp_stats s0, s1, s2;
    taker t;
    int i, idle;
    for (i = 0; i < 16; i++) {
        bufs[i] = zp_cache_get(c, SZ);
        assert_non_null(bufs[i]);
    }
    for (i = 0; i < 16; i++)
        zp_cache_put(c, bufs[i]);
    assert_int_equal(zpt_stats(pool, &s0), 0);
    assert_int_equal(s0.bytes_outstanding, 0);
    assert_true(s0.bytes_cached >= 16 * SZ);

    zp_cache_flush(c);
    assert_int_equal(zpt_stats(pool, &s1), 0);
    zpt_stats_print("after flush", &s1);
    if (s1.bytes_cached != s0.bytes_cached ||
        s1.bytes_reserved != s0.bytes_reserved)
        fail_msg("zp_cache_flush changed bytes_cached %llu -> %llu or "
                 "bytes_reserved %llu -> %llu: it should only move buffers",
                 (unsigned long long)s0.bytes_cached,
                 (unsigned long long)s1.bytes_cached,
                 (unsigned long long)s0.bytes_reserved,
                 (unsigned long long)s1.bytes_reserved);
    assert_int_equal(zpt_stats_counters_differ(&s0, &s1), 0);

    /* every idle buffer is now in the depot: another thread takes them all
       (if the handle had kept any, some of these would be fresh) */
    idle = (int)(s1.bytes_cached / SZ);
    take_on_thread(&t, pool, SZ, idle, other_uses_handle);
    assert_int_equal(zpt_stats(pool, &s2), 0);
    zpt_stats_print("after the other thread's gets", &s2);
    assert_int_equal(s2.gets - s1.gets, (uint64_t)idle);
    if (s2.allocations != s1.allocations)
        fail_msg("the other thread needed %llu fresh allocations for %d "
                 "gets although %d buffers were flushed to the depot",
                 (unsigned long long)(s2.allocations - s1.allocations), idle,
                 idle);
    assert_true(s2.depot_hits > s1.depot_hits);
    assert_int_equal(s2.bytes_reserved, s1.bytes_reserved);
    assert_int_equal(s2.bytes_outstanding, (uint64_t)idle * SZ);
    assert_int_equal(s2.bytes_cached, 0);
    assert_true(zpt_stats_sum_ok(&s2) && zpt_stats_classes_ok(&s2));

    /* and they go back, through the handle this time */
    for (i = 0; i < idle; i++)
        zp_cache_put(c, t.bufs[i]);
    zp_cache_destroy(c);
    assert_int_equal(zpt_stats(pool, &s2), 0);
    assert_int_equal(s2.bytes_outstanding, 0);
    assert_int_equal(s2.misuse, 0);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

static void test_flush_feeds_other_thread(void **state)
{
    (void)state;
    run_flush_feeds_other_thread(0);
}

static void test_flush_feeds_other_threads_handle(void **state)
{
    (void)state;
    run_flush_feeds_other_thread(1);
}

/* zp_cache_destroy: every buffer back to the depot, counters folded into
 * the pool (the same before and after), nothing mapped anew. */
static void test_destroy_loses_nothing(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = make_pool(pv, 32, 64 * ZPT_MiB);
    zp_cache *c = make_cache(pool);
    void *bufs[40];
    size_t sizes[40];
    uint64_t gets = 0, puts = 0;
    zp_stats s0, s1, s2;
    taker t;
    int i, round, idle;
    (void)state;
    for (round = 0; round < 4; round++) {
        for (i = 0; i < 40; i++) {
            sizes[i] = (size_t)4096 << (i % 6); /* 4 KiB .. 128 KiB */
            bufs[i] = zp_cache_get(c, sizes[i]);
            assert_non_null(bufs[i]);
            zpt_fill(bufs[i], sizes[i], (uint64_t)(round * 40 + i));
            gets++;
        }
        for (i = 0; i < 40; i++) {
            assert_int_equal(
                zpt_check(bufs[i], sizes[i], (uint64_t)(round * 40 + i)),
                SIZE_MAX);
            if (i % 5 == 4)
                zp_put(pool, bufs[i]); /* some through the thread cache */
            else
                zp_cache_put(c, bufs[i]);
            puts++;
        }
    }
    /* one oversize through the handle too */
    bufs[0] = zp_cache_get(c, 5 * ZPT_MiB);
    assert_non_null(bufs[0]);
    zp_cache_put(c, bufs[0]);
    gets++;
    puts++;
    /* this thread's own cache (the zp_put above) to the depot, so that
       every idle buffer but the handle's is there; nothing is released */
    (void)zp_trim(pool, SIZE_MAX);

    assert_int_equal(zpt_stats(pool, &s0), 0);
    zpt_stats_print("before zp_cache_destroy", &s0);
    assert_int_equal(s0.gets, gets);
    assert_int_equal(s0.puts, puts);
    assert_int_equal(s0.oversize, 1);
    assert_true(s0.cache_hits > 0);
    assert_true(zpt_stats_sum_ok(&s0) && zpt_stats_classes_ok(&s0));

    zp_cache_destroy(c);
    assert_int_equal(zpt_stats(pool, &s1), 0);
    zpt_stats_print("after zp_cache_destroy", &s1);
    if (zpt_stats_counters_differ(&s0, &s1))
        fail_msg("zp_cache_destroy changed the pool's counters: the "
                 "handle's counts must be folded in, not lost or doubled");
    assert_true(zpt_stats_sum_ok(&s1) && zpt_stats_classes_ok(&s1));
    for (i = 0; i < (int)s1.nclasses; i++)
        assert_int_equal(s1.classes[i].gets, s0.classes[i].gets);
    assert_int_equal(s1.bytes_outstanding, 0);
    if (s1.bytes_reserved > s0.bytes_reserved)
        fail_msg("bytes_reserved grew from %llu to %llu on zp_cache_destroy",
                 (unsigned long long)s0.bytes_reserved,
                 (unsigned long long)s1.bytes_reserved);
    assert_int_equal(s1.bytes_cached, s0.bytes_cached);
    assert_int_equal(atomic_load(&pv->bytes_live), s1.bytes_reserved);

    /* the destroyed handle's buffers are in the depot: another thread gets
       all idle 64 KiB buffers without a fresh allocation */
    idle = (int)(s1.classes[zpt_class_index(4096, SZ)].bytes_cached / SZ);
    assert_true(idle >= 1);
    take_on_thread(&t, pool, SZ, idle, 0);
    assert_int_equal(zpt_stats(pool, &s2), 0);
    assert_int_equal(s2.allocations, s1.allocations);
    assert_int_equal(s2.gets, s1.gets + (uint64_t)idle);
    for (i = 0; i < idle; i++)
        zp_put(pool, t.bufs[i]);

    /* later handles add to the same totals */
    c = make_cache(pool);
    for (i = 0; i < 10; i++) {
        bufs[i] = zp_cache_get(c, 4096);
        assert_non_null(bufs[i]);
    }
    for (i = 0; i < 10; i++)
        zp_cache_put(c, bufs[i]);
    zp_cache_destroy(c);
    assert_int_equal(zpt_stats(pool, &s2), 0);
    assert_int_equal(s2.gets, gets + (uint64_t)idle + 10);
    assert_int_equal(s2.puts, puts + (uint64_t)idle + 10);
    assert_true(zpt_stats_sum_ok(&s2) && zpt_stats_classes_ok(&s2));
    assert_int_equal(s2.bytes_outstanding, 0);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

/* Buffers got through a handle stay valid after the handle is destroyed
 * and go back with zp_put, zp_put_batch or another handle. */
static void test_buffers_outlive_handle(void **state)
{
    zp_pool *pool = make_pool(NULL, 32, 64 * ZPT_MiB);
    zp_cache *c = make_cache(pool), *c2;
    void *bufs[12];
    zp_stats s;
    int i;
    (void)state;
    for (i = 0; i < 12; i++) {
        bufs[i] = zp_cache_get(c, (size_t)8192 << (i % 3));
        assert_non_null(bufs[i]);
        zpt_fill(bufs[i], (size_t)8192 << (i % 3), (uint64_t)i);
    }
    zp_cache_destroy(c);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 4 * (8192 + 16384 + 32768));
    for (i = 0; i < 12; i++)
        assert_int_equal(
            zpt_check(bufs[i], (size_t)8192 << (i % 3), (uint64_t)i), SIZE_MAX);
    c2 = make_cache(pool);
    for (i = 0; i < 4; i++)
        zp_put(pool, bufs[i]);
    zp_put_batch(pool, bufs + 4, 4);
    zp_cache_put_batch(c2, bufs + 8, 4);
    zp_cache_destroy(c2);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.gets, 12);
    assert_int_equal(s.puts, 12);
    assert_int_equal(s.misuse, 0);
    assert_true(zpt_stats_sum_ok(&s) && zpt_stats_classes_ok(&s));
    zp_pool_destroy(pool);
}

/* zp_stats_reset covers a live handle's counters; destroying the handle
 * afterwards folds only what came after the reset. */
static void test_reset_with_live_handle(void **state)
{
    zp_pool *pool = make_pool(NULL, 32, 64 * ZPT_MiB);
    zp_cache *c = make_cache(pool);
    void *bufs[8];
    zp_stats s;
    int i, round;
    (void)state;
    for (round = 0; round < 3; round++) {
        for (i = 0; i < 8; i++)
            bufs[i] = zp_cache_get(c, 8192);
        for (i = 0; i < 8; i++)
            zp_cache_put(c, bufs[i]);
    }
    zp_stats_reset(pool);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.cache_hits, 0);
    assert_int_equal(s.puts, 0);
    for (i = 0; i < 5; i++)
        bufs[i] = zp_cache_get(c, 8192); /* all five in the handle */
    for (i = 0; i < 5; i++)
        zp_cache_put(c, bufs[i]);
    assert_int_equal(zpt_stats(pool, &s), 0);
    zpt_stats_print("after reset", &s);
    assert_int_equal(s.gets, 5);
    assert_int_equal(s.cache_hits, 5);
    assert_int_equal(s.puts, 5);
    assert_true(zpt_stats_sum_ok(&s) && zpt_stats_classes_ok(&s));
    zp_cache_destroy(c);
    assert_int_equal(zpt_stats(pool, &s), 0);
    zpt_stats_print("after reset and destroy", &s);
    assert_int_equal(s.gets, 5);
    assert_int_equal(s.cache_hits, 5);
    assert_int_equal(s.puts, 5);
    assert_true(zpt_stats_sum_ok(&s) && zpt_stats_classes_ok(&s));
    zp_pool_destroy(pool);
}

/* zp_trim flushes only the calling thread's cache: a handle's buffers stay
 * reserved until the handle is flushed; then trim gives every byte back. */
static void test_trim_needs_flush(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = make_pool(pv, 32, 64 * ZPT_MiB);
    zp_cache *c = make_cache(pool);
    void *bufs[4];
    zp_stats s;
    size_t released;
    int i;
    (void)state;
    /* 4 x 256 KiB: four slabs, every buffer in the handle afterwards */
    for (i = 0; i < 4; i++) {
        bufs[i] = zp_cache_get(c, 256 * ZPT_KiB);
        assert_non_null(bufs[i]);
    }
    for (i = 0; i < 4; i++)
        zp_cache_put(c, bufs[i]);
    (void)zp_trim(pool, 0);
    assert_int_equal(zpt_stats(pool, &s), 0);
    if (s.bytes_cached < 4 * 256 * ZPT_KiB)
        fail_msg("zp_trim gave back %llu bytes cached in a handle; only "
                 "the calling thread's cache is flushed by trim",
                 (unsigned long long)(4 * 256 * ZPT_KiB - s.bytes_cached));
    zp_cache_flush(c);
    released = zp_trim(pool, 0);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_true(released >= 4 * 256 * ZPT_KiB);
    assert_int_equal(s.bytes_reserved, 0);
    assert_int_equal(s.bytes_cached, 0);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    /* the handle still works after its buffers were unmapped */
    bufs[0] = zp_cache_get(c, 256 * ZPT_KiB);
    assert_non_null(bufs[0]);
    zpt_fill(bufs[0], 256 * ZPT_KiB, 3);
    assert_int_equal(zpt_check(bufs[0], 256 * ZPT_KiB, 3), SIZE_MAX);
    zp_cache_put(c, bufs[0]);
    zp_cache_destroy(c);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* cache_bytes caps a handle's bin as it caps a thread's: with 128 KiB of
 * 64 KiB buffers the handle keeps 2, the rest overflow to the depot where
 * another thread finds them without allocating. */
static void test_cache_bytes_caps_handle(void **state)
{
    zp_pool *pool = make_pool(NULL, 32, 128 * ZPT_KiB);
    zp_cache *c = make_cache(pool);
    void *bufs[12];
    zp_stats s0, s1;
    taker t;
    int i, in_depot;
    (void)state;
    for (i = 0; i < 12; i++) {
        bufs[i] = zp_cache_get(c, SZ);
        assert_non_null(bufs[i]);
    }
    for (i = 0; i < 12; i++)
        zp_cache_put(c, bufs[i]);
    assert_int_equal(zpt_stats(pool, &s0), 0);
    /* idle buffers beyond the handle's two are in the depot */
    in_depot = (int)(s0.bytes_cached / SZ) - 2;
    assert_true(in_depot >= 10);
    take_on_thread(&t, pool, SZ, in_depot, 0);
    assert_int_equal(zpt_stats(pool, &s1), 0);
    if (s1.allocations != s0.allocations)
        fail_msg("a handle with cache_bytes 128 KiB kept more than two "
                 "64 KiB buffers: the other thread needed %llu fresh ones",
                 (unsigned long long)(s1.allocations - s0.allocations));
    for (i = 0; i < in_depot; i++)
        zp_put(pool, t.bufs[i]);
    zp_cache_destroy(c);
    zp_pool_destroy(pool);
}

/* Retention (max_cached_bytes) applies to what a handle flushes: after a
 * burst of 16 x 1 MiB put through a handle keeping one, at most the cap
 * stays in the depot (plus the handle's one), and the cap is kept; once
 * the handle is flushed, the depot holds no more than the cap. */
static void test_retention_with_handle(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    /* cache_bytes: one 1 MiB buffer per cache */
    zp_pool *pool = ZPT_POOL(.max_cached_bytes = 4 * ZPT_MiB,
                             .cache_bytes = ZPT_MiB, .pv = pv);
    zp_cache *c;
    void *bufs[16];
    zp_stats s;
    int i;
    (void)state;
    c = make_cache(pool);
    for (i = 0; i < 16; i++) {
        bufs[i] = zp_cache_get(c, ZPT_MiB);
        assert_non_null(bufs[i]);
        memset(bufs[i], 1, ZPT_MiB);
    }
    for (i = 0; i < 16; i++)
        zp_cache_put(c, bufs[i]);
    assert_int_equal(zpt_stats(pool, &s), 0);
    zpt_stats_print("retention", &s);
    assert_int_equal(s.peak_reserved, 16 * ZPT_MiB);
    if (s.bytes_reserved > 5 * ZPT_MiB)
        fail_msg("retention cap 4 MiB + one 1 MiB buffer in the handle: %llu "
                 "bytes still reserved", (unsigned long long)s.bytes_reserved);
    assert_true(s.bytes_reserved >= 4 * ZPT_MiB);
    /* the flush adds the handle's one to the depot: the cap still holds */
    zp_cache_flush(c);
    assert_int_equal(zpt_stats(pool, &s), 0);
    if (s.bytes_reserved > 4 * ZPT_MiB)
        fail_msg("after zp_cache_flush %llu bytes reserved, all idle in the "
                 "depot, above max_cached_bytes 4 MiB",
                 (unsigned long long)s.bytes_reserved);
    assert_int_equal(atomic_load(&pv->bytes_live), s.bytes_reserved);
    zp_cache_destroy(c);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flush_feeds_other_thread),
        cmocka_unit_test(test_flush_feeds_other_threads_handle),
        cmocka_unit_test(test_destroy_loses_nothing),
        cmocka_unit_test(test_buffers_outlive_handle),
        cmocka_unit_test(test_reset_with_live_handle),
        cmocka_unit_test(test_trim_needs_flush),
        cmocka_unit_test(test_cache_bytes_caps_handle),
        cmocka_unit_test(test_retention_with_handle),
    };
    return ZPT_RUN(tests);
}
