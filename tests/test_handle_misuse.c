/* Tests misuse detection through cache handles: double puts and another pool's buffers (debug 1), foreign pointers (debug 0), writes after put (debug 2). */
#include "zp_test.h"

static zp_pool *make_pool(int debug)
{
    return ZPT_POOL(.max_class = 4 * ZPT_MiB, .debug = debug);
}

static zp_cache *make_cache(zp_pool *pool)
{
    zp_cache *c = NULL;
    assert_int_equal(zp_cache_create(pool, &c), 0);
    return c;
}

/* Exactly n reports so far, the last of the given kind, pointer and pool. */
#define expect_reports(n, kind, ptr, pool, what)                               \
    zpt_assert_misuse(&zpt_g_misuse, (n), (kind), (ptr), (pool), (what))

/* After misuse was ignored the handle is consistent: the next gets hand
 * out distinct buffers, none of them twice. */
static void expect_distinct_gets(zp_cache *c, size_t size, int n)
{
    void *bufs[64];
    int i, j;
    assert_true(n <= 64);
    for (i = 0; i < n; i++) {
        bufs[i] = zp_cache_get(c, size);
        assert_non_null(bufs[i]);
        for (j = 0; j < i; j++)
            if (bufs[i] == bufs[j])
                fail_msg("buffer %p handed out twice after an ignored "
                         "misuse", bufs[i]);
    }
    for (i = 0; i < n; i++)
        zp_cache_put(c, bufs[i]);
}

static void run_double_put(size_t size)
{
    zp_pool *pool = make_pool(1);
    zp_cache *c = make_cache(pool);
    void *a, *b, *batch[3];
    zp_stats s;

    /* handle put, then handle put again */
    a = zp_cache_get(c, size);
    assert_non_null(a);
    zp_cache_put(c, a);
    zp_cache_put(c, a);
    expect_reports(1, ZP_MISUSE_DOUBLE_PUT, a, pool, "handle put twice");

    /* zp_put, then a handle put */
    b = zp_cache_get(c, size);
    assert_non_null(b);
    zp_put(pool, b);
    zp_cache_put(c, b);
    expect_reports(2, ZP_MISUSE_DOUBLE_PUT, b, pool, "zp_put then handle put");

    /* handle put, then zp_put */
    b = zp_cache_get(c, size);
    assert_non_null(b);
    zp_cache_put(c, b);
    zp_put(pool, b);
    expect_reports(3, ZP_MISUSE_DOUBLE_PUT, b, pool, "handle put then zp_put");

    /* the same buffer twice in one handle put batch: once reported, the
       others still returned */
    a = zp_cache_get(c, size);
    b = zp_cache_get(c, size);
    assert_non_null(a);
    assert_non_null(b);
    batch[0] = a;
    batch[1] = b;
    batch[2] = a;
    zp_cache_put_batch(c, batch, 3);
    expect_reports(4, ZP_MISUSE_DOUBLE_PUT, a, pool, "duplicate in a batch");

    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.misuse, 4);
    assert_int_equal(s.gets, 5);
    assert_int_equal(s.puts, 5); /* the ignored ones are not counted */
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(zpt_stats_sum_ok(&s) && zpt_stats_classes_ok(&s));
    expect_distinct_gets(c, size, 40);
    zp_cache_destroy(c);
    zp_pool_destroy(pool);
}

static void test_double_put_debug1(void **state)
{
    (void)state;
    run_double_put(4096);
}

static void test_double_put_debug1_large_class(void **state)
{
    (void)state;
    run_double_put(ZPT_MiB);
}

/* An oversize buffer got through a handle and put twice through it. */
static void run_oversize_double_put(int debug)
{
    zp_pool *pool = make_pool(debug);
    zp_cache *c = make_cache(pool);
    void *x;
    zp_stats s;
    x = zp_cache_get(c, 5 * ZPT_MiB);
    assert_non_null(x);
    zp_cache_put(c, x);
    zp_cache_put(c, x);
    expect_reports(1, ZP_MISUSE_DOUBLE_PUT, x, pool, "oversize handle put twice");
    x = zp_cache_get(c, 6 * ZPT_MiB);
    assert_non_null(x);
    zp_put(pool, x);
    zp_cache_put_batch(c, &x, 1);
    expect_reports(2, ZP_MISUSE_DOUBLE_PUT, x, pool,
                   "oversize zp_put then handle put batch");
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.misuse, 2);
    assert_int_equal(s.oversize, 2);
    assert_int_equal(s.discards, 2);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_cache_destroy(c);
    zp_pool_destroy(pool);
}

static void test_oversize_double_put_debug1(void **state)
{
    (void)state;
    run_oversize_double_put(1);
}

static void test_oversize_double_put_debug2(void **state)
{
    (void)state;
    run_oversize_double_put(2);
}

/* A buffer of pool B put into a handle of pool A. */
static void run_wrong_pool(int debug, int expected_kind)
{
    zp_pool *a = make_pool(debug), *b = make_pool(debug);
    zp_cache *ca = make_cache(a);
    void *x;
    zp_stats sa, sb;
    x = zp_get(b, 8192);
    assert_non_null(x);
    zpt_fill(x, 8192, 42);
    zp_cache_put(ca, x);
    expect_reports(1, expected_kind, x, a, "another pool's buffer into a handle");
    /* ignored: x is still b's, intact, and goes back there */
    assert_int_equal(zpt_check(x, 8192, 42), SIZE_MAX);
    zp_put(b, x);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 1);
    assert_int_equal(zpt_stats(a, &sa), 0);
    assert_int_equal(zpt_stats(b, &sb), 0);
    assert_int_equal(sa.misuse, 1);
    assert_int_equal(sa.puts, 0);
    assert_int_equal(sb.puts, 1);
    assert_int_equal(sb.bytes_outstanding, 0);
    /* the same through a handle put batch */
    x = zp_get(b, 8192);
    assert_non_null(x);
    zp_cache_put_batch(ca, &x, 1);
    expect_reports(2, expected_kind, x, a, "another pool's buffer in a batch");
    zp_put(b, x);
    expect_distinct_gets(ca, 8192, 40);
    zp_cache_destroy(ca);
    zp_pool_destroy(a);
    zp_pool_destroy(b);
}

static void test_wrong_pool_debug1(void **state)
{
    (void)state;
    run_wrong_pool(1, ZP_MISUSE_WRONG_POOL);
}

static void test_wrong_pool_debug0_is_foreign(void **state)
{
    (void)state;
    run_wrong_pool(0, ZP_MISUSE_FOREIGN);
}

/* Pointers that are not the pool's at all, at debug 0. */
static void test_foreign_pointers(void **state)
{
    zp_pool *pool = make_pool(0);
    zp_cache *c = make_cache(pool);
    char *heap = malloc(4096), *buf;
    static char global[64];
    (void)state;
    assert_non_null(heap);
    zp_cache_put(c, heap);
    expect_reports(1, ZP_MISUSE_FOREIGN, heap, pool, "malloc'd pointer");
    zp_cache_put(c, global);
    expect_reports(2, ZP_MISUSE_FOREIGN, global, pool, "global array");
    buf = zp_cache_get(c, 8192);
    assert_non_null(buf);
    zp_cache_put(c, buf + 64); /* interior */
    expect_reports(3, ZP_MISUSE_FOREIGN, buf + 64, pool, "interior pointer");
    zp_cache_put(c, buf);
    zp_cache_put(c, NULL); /* NULL buffer: a no-op, not misuse */
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 3);
    free(heap);
    expect_distinct_gets(c, 8192, 40);
    zp_cache_destroy(c);
    zp_pool_destroy(pool);
}

/* Debug 2: a write after a handle put is caught on the next get of that
 * buffer. */
static void test_write_after_put_debug2(void **state)
{
    zp_pool *pool;
    zp_cache *c;
    unsigned char *a, *b;
    (void)state;
    pool = make_pool(2);
    c = make_cache(pool);
    a = zp_cache_get(c, 4096);
    assert_non_null(a);
    zp_cache_put(c, a);
    /* use after put, on purpose: ASan builds poison put buffers, so the
       byte is made addressable first, as uninstrumented code would find it */
    zpt_asan_unpoison(a + 100, 1);
    ((volatile unsigned char *)a)[100] = 0x11;
    b = zp_cache_get(c, 4096); /* LIFO: the same buffer */
    assert_ptr_equal(a, b);
    expect_reports(1, ZP_MISUSE_CORRUPTED, a, pool, "write after handle put");
    if (b != NULL)
        zp_cache_put(c, b);
    zp_cache_destroy(c);
    zp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        zpt_misuse_unit_test(test_double_put_debug1),
        zpt_misuse_unit_test(test_double_put_debug1_large_class),
        zpt_misuse_unit_test(test_oversize_double_put_debug1),
        zpt_misuse_unit_test(test_oversize_double_put_debug2),
        zpt_misuse_unit_test(test_wrong_pool_debug1),
        zpt_misuse_unit_test(test_wrong_pool_debug0_is_foreign),
        zpt_misuse_unit_test(test_foreign_pointers),
        zpt_misuse_unit_test(test_write_after_put_debug2),
    };
    if (getenv("ZEROPOOL_DEBUG") != NULL && *getenv("ZEROPOOL_DEBUG"))
        return zpt_skip_all("ZEROPOOL_DEBUG overrides the debug levels this test sets");
    return ZPT_RUN(tests);
}
