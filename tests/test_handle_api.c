/* Tests cache handles on one thread: contents and capacity at every class edge, batches all or nothing, argument errors, cache_depth 0. */
#include "zp_test.h"

static zp_pool *make_pool(size_t min_class, size_t max_class, unsigned depth,
                          zpt_provider *pv)
{
    return ZPT_POOL(.min_class = min_class, .max_class = max_class,
                    .cache_depth = ZPT_EXACT(depth), .pv = pv);
}

static zp_cache *make_cache(zp_pool *pool)
{
    zp_cache *c = NULL;
    assert_int_equal(zp_cache_create(pool, &c), 0);
    assert_non_null(c);
    return c;
}

static void expect_balanced(zp_pool *pool, const char *what)
{
    zp_stats s;
    assert_int_equal(zpt_stats(pool, &s), 0);
    if (!zpt_stats_sum_ok(&s) || !zpt_stats_classes_ok(&s) ||
        s.bytes_outstanding != 0 || s.misuse != 0) {
        zpt_stats_print(what, &s);
        fail_msg("%s: stats do not add up, or buffers still outstanding, or "
                 "misuse reported", what);
    }
}

/* ------------------------------------------------ contents and capacity */

#define MAX_SIZES 96

/* Every edge of every class (c-1, c, c+1), size 0 and 1, and two oversize
 * sizes, got through a handle twice over: each buffer has the capacity
 * zp_get would give, the alignment the header promises, and keeps its
 * pattern while every other buffer is written. */
static void run_edges(size_t min_class, size_t max_class)
{
    zp_pool *pool = make_pool(min_class, max_class, 32, NULL);
    zp_cache *c = make_cache(pool);
    size_t sizes[MAX_SIZES], cls, page = zpt_page_size();
    uint64_t per_class[ZP_MAX_CLASSES] = {0}, over = 0;
    void *bufs[MAX_SIZES];
    size_t n = 0, i;
    zp_stats s;
    int round;

    sizes[n++] = 0;
    sizes[n++] = 1;
    for (cls = min_class; cls <= max_class; cls <<= 1) {
        if (cls - 1 > cls / 2 && cls - 1 > 1)
            sizes[n++] = cls - 1;
        sizes[n++] = cls;
        sizes[n++] = cls + 1; /* the next class, or oversize after the last */
    }
    sizes[n++] = 2 * max_class;
    assert_true(n <= MAX_SIZES);
    for (i = 0; i < n; i++) {
        if (sizes[i] > max_class)
            over++;
        else
            per_class[zpt_class_index(min_class, sizes[i] ? sizes[i] : 1)]++;
    }

    for (round = 0; round < 2; round++) {
        for (i = 0; i < n; i++) {
            size_t want = sizes[i] > max_class
                              ? sizes[i]
                              : zpt_class_for(sizes[i] ? sizes[i] : 1, min_class);
            size_t cap;
            bufs[i] = zp_cache_get(c, sizes[i]);
            if (bufs[i] == NULL)
                fail_msg("zp_cache_get(%zu) failed: %s", sizes[i],
                         strerror(errno));
            cap = zp_capacity(pool, bufs[i]);
            if (sizes[i] > max_class ? cap < want : cap != want)
                fail_msg("size %zu: capacity %zu, expected %s%zu", sizes[i],
                         cap, sizes[i] > max_class ? ">= " : "", want);
            if (zpt_alignment_of(bufs[i]) < zpt_min_sz(want, page))
                fail_msg("size %zu: buffer %p aligned to %zu only", sizes[i],
                         bufs[i], zpt_alignment_of(bufs[i]));
            zpt_fill_big(bufs[i], cap, (uint64_t)(round * 1000 + i) + 1);
        }
        for (i = 0; i < n; i++) {
            size_t bad = zpt_check_big(bufs[i], zp_capacity(pool, bufs[i]),
                                       (uint64_t)(round * 1000 + i) + 1);
            if (bad != SIZE_MAX)
                fail_msg("round %d size %zu: byte %zu of %p changed while "
                         "other buffers were written", round, sizes[i], bad,
                         bufs[i]);
        }
        /* half back through the handle, half through the thread's cache */
        for (i = 0; i < n; i++) {
            if (i % 2)
                zp_put(pool, bufs[i]);
            else
                zp_cache_put(c, bufs[i]);
        }
    }

    assert_int_equal(zpt_stats(pool, &s), 0);
    zpt_stats_print("edges", &s);
    assert_int_equal(s.gets, 2 * n);
    assert_int_equal(s.puts, 2 * n);
    assert_int_equal(s.oversize, 2 * over);
    assert_int_equal(s.discards, 2 * over);
    for (i = 0; i < s.nclasses; i++)
        if (s.classes[i].gets != 2 * per_class[i])
            fail_msg("class %llu: %llu gets counted, %llu made",
                     (unsigned long long)s.classes[i].size,
                     (unsigned long long)s.classes[i].gets,
                     (unsigned long long)(2 * per_class[i]));
    /* the second round found the first round's handle puts in the handle */
    assert_true(s.cache_hits > 0);
    expect_balanced(pool, "edges");
    zp_cache_destroy(c);
    expect_balanced(pool, "edges after zp_cache_destroy");
    zp_pool_destroy(pool);
}

static void test_edges_small_classes(void **state)
{
    (void)state;
    run_edges(64, 4 * ZPT_MiB); /* 64 B .. 4 MiB: 17 classes */
}

static void test_edges_default_min_class(void **state)
{
    (void)state;
    run_edges(4096, 8 * ZPT_MiB);
}

/* ZP_ZERO_ON_GET applies to a handle's gets as to zp_get. */
static void test_zero_on_get_through_handle(void **state)
{
    zp_pool *pool = ZPT_POOL(.flags = ZP_ZERO_ON_GET);
    zp_cache *c;
    unsigned char *a, *b;
    (void)state;
    c = make_cache(pool);
    a = zp_cache_get(c, 8192);
    assert_non_null(a);
    assert_true(zpt_all_zero(a, 8192));
    memset(a, 0x5A, 8192);
    zp_cache_put(c, a);
    b = zp_cache_get(c, 8192);
    assert_non_null(b);
    if (!zpt_all_zero(b, 8192))
        fail_msg("ZP_ZERO_ON_GET: a buffer got through a handle (%s) was not "
                 "zeroed", a == b ? "the same one just put" : "another");
    zp_cache_put(c, b);
    zp_cache_destroy(c);
    expect_balanced(pool, "zero on get");
    zp_pool_destroy(pool);
}

/* ZP_WIPE_ON_PUT applies to a handle's puts: the buffer comes back (LIFO)
 * wiped. */
static void test_wipe_on_put_through_handle(void **state)
{
    zp_pool *pool;
    zp_cache *c;
    unsigned char *a, *b;
    (void)state;
    if (zpt_env_debug() >= 2)
        zpt_skip("ZEROPOOL_DEBUG=%d fills put buffers with poison", zpt_env_debug());
    pool = ZPT_POOL(.flags = ZP_WIPE_ON_PUT);
    c = make_cache(pool);
    a = zp_cache_get(c, 16384);
    assert_non_null(a);
    memset(a, 0x5A, 16384);
    zp_cache_put(c, a);
    b = zp_cache_get(c, 16384);
    assert_ptr_equal(a, b);
    if (!zpt_all_zero(b, 16384))
        fail_msg("ZP_WIPE_ON_PUT: a buffer put through a handle was not wiped");
    zp_cache_put(c, b);
    zp_cache_destroy(c);
    expect_balanced(pool, "wipe on put");
    zp_pool_destroy(pool);
}

/* Sizes that can never be served fail as zp_get fails: EOVERFLOW. */
static void test_errors_as_zp_get(void **state)
{
    zp_pool *pool = make_pool(4096, ZPT_MiB, 32, NULL);
    zp_cache *c = make_cache(pool);
    void *bufs[2];
    zp_stats s;
    (void)state;
    errno = 0;
    assert_null(zp_get(pool, SIZE_MAX));
    assert_int_equal(errno, EOVERFLOW);
    errno = 0;
    assert_null(zp_cache_get(c, SIZE_MAX));
    assert_int_equal(errno, EOVERFLOW);
    errno = 0;
    assert_null(zp_cache_get(c, SIZE_MAX / 2));
    assert_int_equal(errno, EOVERFLOW);
    assert_int_equal(zp_cache_get_batch(c, SIZE_MAX, bufs, 2), -EOVERFLOW);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(zpt_stats_sum_ok(&s));
    zp_cache_destroy(c);
    zp_pool_destroy(pool);
}

/* ------------------------------------------------------------- batches */

/* A batch larger than the budget, or than the room left in it, takes
 * nothing; one that fits takes all. */
static void test_batch_budget_all_or_nothing(void **state)
{
    /* 16 buffers of 64 KiB (4 slabs of 256 KiB) */
    zp_pool *pool = ZPT_POOL(.max_class = ZPT_MiB, .max_bytes = ZPT_MiB);
    zp_cache *c;
    void *bufs[17], *more[8];
    zp_stats s;
    int i, j, rc;
    const size_t sz = 64 * ZPT_KiB;
    (void)state;
    c = make_cache(pool);

    rc = zp_cache_get_batch(c, sz, bufs, 17);
    if (rc != -ENOBUFS)
        fail_msg("batch of 17 x 64 KiB in a 1 MiB budget: %d (%s), expected "
                 "-ENOBUFS", rc, zp_strerror(rc));
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(zpt_stats_sum_ok(&s));

    assert_int_equal(zp_cache_get_batch(c, sz, bufs, 16), 0);
    for (i = 0; i < 16; i++) {
        assert_non_null(bufs[i]);
        assert_int_equal(zp_capacity(pool, bufs[i]), sz);
        for (j = 0; j < i; j++)
            assert_ptr_not_equal(bufs[i], bufs[j]);
        zpt_fill(bufs[i], sz, (uint64_t)i + 7);
    }
    for (i = 0; i < 16; i++)
        assert_int_equal(zpt_check(bufs[i], sz, (uint64_t)i + 7), SIZE_MAX);
    rc = zp_cache_get_batch(c, sz, more, 1);
    assert_int_equal(rc, -ENOBUFS);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 16 * sz);

    /* 10 held, 6 idle (in the handle): 7 do not fit, 6 do */
    zp_cache_put_batch(c, bufs + 10, 6);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 10 * sz);
    rc = zp_cache_get_batch(c, sz, more, 7);
    if (rc != -ENOBUFS)
        fail_msg("batch of 7 with room for 6: %d (%s), expected -ENOBUFS", rc,
                 zp_strerror(rc));
    assert_int_equal(zpt_stats(pool, &s), 0);
    if (s.bytes_outstanding != 10 * sz)
        fail_msg("a failed batch took buffers: %llu bytes outstanding, "
                 "expected %zu", (unsigned long long)s.bytes_outstanding,
                 10 * sz);
    assert_true(zpt_stats_sum_ok(&s));
    assert_int_equal(zp_cache_get_batch(c, sz, more, 6), 0);
    for (i = 0; i < 6; i++)
        assert_int_equal(zp_capacity(pool, more[i]), sz);
    for (i = 0; i < 10; i++)
        assert_int_equal(zpt_check(bufs[i], sz, (uint64_t)i + 7), SIZE_MAX);
    zp_cache_put_batch(c, bufs, 10);
    zp_cache_put_batch(c, more, 6);
    zp_cache_destroy(c);
    expect_balanced(pool, "budget batches");
    zp_pool_destroy(pool);
}

/* Lets exactly `allowed` more map calls of pv through and refuses every
 * later one (so a retry cannot succeed behind the test's back), until
 * allow_all. */
static void allow_maps(zpt_provider *pv, size_t allowed)
{
    atomic_store(&pv->fail_from, atomic_load(&pv->map_calls) + allowed + 1);
}

static void allow_all(zpt_provider *pv)
{
    atomic_store(&pv->fail_from, 0);
}

/* The provider refuses maps in the middle of a batch: -ENOMEM and no
 * buffer taken (slab classes and oversize alike). */
static void test_batch_map_failure_all_or_nothing(void **state)
{
    enum { NSLAB = 64, NOVER = 4 };
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.max_class = ZPT_MiB, .pv = pv);
    zp_cache *c;
    static void *bufs[NSLAB];
    zp_stats s;
    size_t live0, refused0;
    int rc, i;
    (void)state;
    c = make_cache(pool);

    /* 64 x 1 MiB need 64 MiB of slabs: the provider maps one region */
    refused0 = atomic_load(&pv->injected);
    allow_maps(pv, 1);
    rc = zp_cache_get_batch(c, ZPT_MiB, bufs, NSLAB);
    allow_all(pv);
    assert_true(atomic_load(&pv->injected) - refused0 >= 1);
    if (rc != -ENOMEM)
        fail_msg("batch of 64 MiB with one region mappable: %d, expected "
                 "-ENOMEM", rc);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(zpt_stats_sum_ok(&s));
    assert_int_equal(zp_cache_get_batch(c, ZPT_MiB, bufs, NSLAB), 0);
    zp_cache_put_batch(c, bufs, NSLAB);

    /* oversize: mapped one by one, the third fails, the two mapped go back */
    live0 = atomic_load(&pv->bytes_live);
    refused0 = atomic_load(&pv->injected);
    allow_maps(pv, 2);
    rc = zp_cache_get_batch(c, 2 * ZPT_MiB, bufs, NOVER);
    allow_all(pv);
    assert_true(atomic_load(&pv->injected) - refused0 >= 1);
    assert_int_equal(rc, -ENOMEM);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(zpt_stats_sum_ok(&s));
    if (atomic_load(&pv->bytes_live) != live0)
        fail_msg("failed oversize batch left %zu bytes mapped (had %zu)",
                 atomic_load(&pv->bytes_live), live0);

    assert_int_equal(zp_cache_get_batch(c, 2 * ZPT_MiB, bufs, NOVER), 0);
    for (i = 0; i < NOVER; i++) {
        assert_true(zp_capacity(pool, bufs[i]) >= 2 * ZPT_MiB);
        zpt_fill_big(bufs[i], 2 * ZPT_MiB, (uint64_t)i);
    }
    for (i = 0; i < NOVER; i++)
        assert_int_equal(zpt_check_big(bufs[i], 2 * ZPT_MiB, (uint64_t)i),
                         SIZE_MAX);
    zp_cache_put_batch(c, bufs, NOVER);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.oversize, NOVER);
    assert_int_equal(s.discards, NOVER);
    assert_int_equal(atomic_load(&pv->bytes_live), live0);

    zp_cache_destroy(c);
    expect_balanced(pool, "map failure batches");
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

static void test_batch_arguments(void **state)
{
    zp_pool *pool = make_pool(4096, ZPT_MiB, 32, NULL);
    zp_cache *c = make_cache(pool);
    static zpt_misuse_log log = ZPT_MISUSE_LOG_INIT;
    void *bufs[2] = {NULL, NULL};
    zp_stats s;
    (void)state;
    zp_set_misuse_handler(zpt_misuse_record, &log);
    assert_int_equal(zp_cache_get_batch(c, 4096, NULL, 1), -EINVAL);
    assert_int_equal(zp_cache_get_batch(c, 4096, NULL, 0), 0);
    assert_int_equal(zp_cache_get_batch(c, 4096, bufs, 0), 0);
    zp_cache_put_batch(c, NULL, 0);
    zp_cache_put_batch(c, bufs, 2); /* NULL entries are skipped */
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.puts, 0);
    assert_int_equal(zpt_misuse_count(&log), 0);
    zp_set_misuse_handler(NULL, NULL);
    zp_cache_destroy(c);
    zp_pool_destroy(pool);
}

/* Batches larger than the handle's depth, mixed classes and NULL entries
 * in a put batch; after a flush the second round needs no fresh buffer. */
static void test_batch_larger_than_depth(void **state)
{
    enum { DEPTH = 8, N = 3 * DEPTH + 5 };
    zp_pool *pool = make_pool(4096, ZPT_MiB, DEPTH, NULL);
    zp_cache *c = make_cache(pool);
    void *a[N], *b[N], *mixed[2 * N + 3];
    zp_stats s0, s1;
    int i, j, round;
    (void)state;
    for (round = 0; round < 2; round++) {
        assert_int_equal(zpt_stats(pool, &s0), 0);
        assert_int_equal(zp_cache_get_batch(c, 16 * ZPT_KiB, a, N), 0);
        assert_int_equal(zp_cache_get_batch(c, 100 * ZPT_KiB, b, N), 0);
        for (i = 0; i < N; i++) {
            assert_int_equal(zp_capacity(pool, a[i]), 16 * ZPT_KiB);
            assert_int_equal(zp_capacity(pool, b[i]), 128 * ZPT_KiB);
            for (j = 0; j < i; j++) {
                assert_ptr_not_equal(a[i], a[j]);
                assert_ptr_not_equal(b[i], b[j]);
            }
            zpt_fill(a[i], 16 * ZPT_KiB, (uint64_t)i);
            zpt_fill(b[i], 128 * ZPT_KiB, (uint64_t)i + 500);
        }
        for (i = 0; i < N; i++) {
            assert_int_equal(zpt_check(a[i], 16 * ZPT_KiB, (uint64_t)i),
                             SIZE_MAX);
            assert_int_equal(zpt_check(b[i], 128 * ZPT_KiB, (uint64_t)i + 500),
                             SIZE_MAX);
        }
        /* one put batch of both classes interleaved, with NULL holes */
        for (i = 0, j = 0; i < N; i++) {
            mixed[j++] = a[i];
            mixed[j++] = b[i];
            if (i % 10 == 0)
                mixed[j++] = NULL;
        }
        zp_cache_put_batch(c, mixed, (size_t)j);
        /* a batch larger than the cache bypasses it: put what the handle
           kept in the depot, so the next round finds every idle buffer */
        zp_cache_flush(c);
        assert_int_equal(zpt_stats(pool, &s1), 0);
        assert_int_equal(s1.gets - s0.gets, 2 * N);
        assert_int_equal(s1.puts - s0.puts, 2 * N);
        assert_int_equal(s1.bytes_outstanding, 0);
        if (round == 1 && s1.allocations != s0.allocations)
            fail_msg("second round of batches made %llu fresh allocations; "
                     "every buffer was idle in the handle or the depot",
                     (unsigned long long)(s1.allocations - s0.allocations));
    }
    expect_balanced(pool, "batches larger than depth");
    zp_cache_destroy(c);
    expect_balanced(pool, "batches larger than depth, handle destroyed");
    zp_pool_destroy(pool);
}

/* -------------------------------------------------------- cache_depth 0 */

/* A handle of a pool without caches holds nothing: its puts land in the
 * depot at once, so a trim gives every byte back, and no get is a cache
 * hit. */
static void test_depth_zero_caches_nothing(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = make_pool(4096, ZPT_MiB, 0, pv);
    zp_cache *c = make_cache(pool);
    void *bufs[20];
    zp_stats s;
    size_t released;
    int i, round;
    (void)state;
    for (round = 0; round < 3; round++) {
        for (i = 0; i < 20; i++) {
            bufs[i] = zp_cache_get(c, (size_t)4096 << (i % 4));
            assert_non_null(bufs[i]);
            zpt_fill(bufs[i], (size_t)4096 << (i % 4), (uint64_t)i);
        }
        for (i = 0; i < 20; i++)
            assert_int_equal(
                zpt_check(bufs[i], (size_t)4096 << (i % 4), (uint64_t)i),
                SIZE_MAX);
        for (i = 0; i < 20; i++)
            zp_cache_put(c, bufs[i]);
    }
    assert_int_equal(zp_cache_get_batch(c, 8192, bufs, 20), 0);
    zp_cache_put_batch(c, bufs, 20);
    assert_int_equal(zpt_stats(pool, &s), 0);
    zpt_stats_print("depth 0", &s);
    assert_int_equal(s.gets, 80);
    assert_int_equal(s.cache_hits, 0);
    assert_true(s.depot_hits > 0);
    expect_balanced(pool, "depth 0");

    /* nothing stayed in the handle: all idle memory is in the depot */
    released = zp_trim(pool, 0);
    assert_int_equal(zpt_stats(pool, &s), 0);
    if (s.bytes_reserved != 0 || s.bytes_cached != 0)
        fail_msg("cache_depth 0: after zp_trim(0) %llu bytes reserved and "
                 "%llu cached (released %zu): the handle kept buffers",
                 (unsigned long long)s.bytes_reserved,
                 (unsigned long long)s.bytes_cached, released);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zp_cache_destroy(c);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

/* Several handles of one pool are independent caches; a buffer moves
 * from one to another. */
static void test_two_handles_one_pool(void **state)
{
    zp_pool *pool = make_pool(4096, ZPT_MiB, 32, NULL);
    zp_cache *c1 = make_cache(pool), *c2 = make_cache(pool);
    void *x, *y;
    zp_stats s;
    (void)state;
    assert_ptr_not_equal(c1, c2);
    x = zp_cache_get(c1, 4096);
    assert_non_null(x);
    zpt_fill(x, 4096, 1);
    zp_cache_put(c2, x); /* c2 now caches it */
    y = zp_cache_get(c2, 4096); /* LIFO: the buffer c2 just took */
    assert_ptr_equal(x, y);
    zp_cache_put(c1, y);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.gets, 2);
    assert_int_equal(s.puts, 2);
    assert_int_equal(s.cache_hits, 1); /* c2's get */
    zp_cache_destroy(c1);
    zp_cache_destroy(c2);
    expect_balanced(pool, "two handles");
    zp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges_small_classes),
        cmocka_unit_test(test_edges_default_min_class),
        cmocka_unit_test(test_zero_on_get_through_handle),
        cmocka_unit_test(test_wipe_on_put_through_handle),
        cmocka_unit_test(test_errors_as_zp_get),
        cmocka_unit_test(test_batch_budget_all_or_nothing),
        cmocka_unit_test(test_batch_map_failure_all_or_nothing),
        cmocka_unit_test(test_batch_arguments),
        cmocka_unit_test(test_batch_larger_than_depth),
        cmocka_unit_test(test_depth_zero_caches_nothing),
        cmocka_unit_test(test_two_handles_one_pool),
    };
    return ZPT_RUN(tests);
}
