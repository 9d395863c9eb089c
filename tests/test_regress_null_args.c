/* Regression (defect 4): a NULL pool or cache handle is an invalid argument everywhere, never dereferenced: -EINVAL, NULL with errno EINVAL, 0, or a no-op that leaves the buffer the caller's. */
#include "zp_test.h"

static zp_pool *g_pool;

static int setup(void **state)
{
    zpt_misuse_setup(state);
    assert_int_equal(zp_pool_create(NULL, &g_pool), 0); /* NULL config: defaults */
    return 0;
}

static int teardown(void **state)
{
    zp_stats s;
    /* none of the NULL calls may have reached the misuse handler or the
       real pool */
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 0);
    assert_int_equal(zpt_stats(g_pool, &s), 0);
    assert_int_equal(s.misuse, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_pool_destroy(g_pool);
    return zpt_misuse_teardown(state);
}

/* A buffer of the real pool, patterned. */
static void *patterned(size_t size, uint64_t seed)
{
    void *b = zp_get(g_pool, size);
    assert_non_null(b);
    zpt_fill(b, size, seed);
    return b;
}

static void expect_null_einval(void *got, const char *call)
{
    int err = errno;
    if (got != NULL || err != EINVAL)
        fail_msg("%s returned %p with errno %d (%s); expected NULL, EINVAL",
                 call, got, err, strerror(err));
}

static void test_get_family(void **state)
{
    void *bufs[4] = {NULL, NULL, NULL, NULL};
    int rc;
    (void)state;
    errno = 0;
    expect_null_einval(zp_get(NULL, 4096), "zp_get(NULL, 4096)");
    errno = 0;
    expect_null_einval(zp_get(NULL, 0), "zp_get(NULL, 0)");
    errno = 0;
    expect_null_einval(zp_get_timed(NULL, 4096, 0), "zp_get_timed(NULL, 4096, 0)");
    errno = 0;
    expect_null_einval(zp_get_timed(NULL, 4096, 100),
                       "zp_get_timed(NULL, 4096, 100)");
    zpt_watchdog(10, "zp_get_timed(NULL, 4096, -1) waited");
    errno = 0;
    expect_null_einval(zp_get_timed(NULL, 4096, -1),
                       "zp_get_timed(NULL, 4096, -1)");
    zpt_watchdog_off();
    rc = zp_get_batch(NULL, 4096, bufs, 4);
    if (rc != -EINVAL)
        fail_msg("zp_get_batch(NULL, 4096, bufs, 4) = %d, expected -EINVAL", rc);
    rc = zp_get_batch(NULL, 4096, bufs, 0);
    if (rc != -EINVAL)
        fail_msg("zp_get_batch(NULL, 4096, bufs, 0) = %d, expected -EINVAL "
                 "(a NULL pool is invalid whatever n)", rc);
}

static void test_put_family(void **state)
{
    void *a = patterned(8192, 1), *b = patterned(4096, 2);
    void *pair[2];
    zp_stats s0, s1;
    (void)state;
    pair[0] = a;
    pair[1] = b;
    assert_int_equal(zpt_stats(g_pool, &s0), 0);
    zp_put(NULL, a);
    zp_put(NULL, NULL);
    zp_put_batch(NULL, pair, 2);
    zp_put_batch(NULL, NULL, 3);
    zp_cache_put(NULL, a);
    zp_cache_put(NULL, NULL);
    zp_cache_put_batch(NULL, pair, 2);
    zp_cache_put_batch(NULL, NULL, 3);
    assert_int_equal(zpt_stats(g_pool, &s1), 0);
    assert_int_equal(s1.puts, s0.puts);
    assert_int_equal(s1.bytes_outstanding, 8192 + 4096);
    /* still the caller's and intact: they go back to their own pool */
    assert_int_equal(zpt_check(a, 8192, 1), SIZE_MAX);
    assert_int_equal(zpt_check(b, 4096, 2), SIZE_MAX);
    assert_int_equal(zp_capacity(g_pool, a), 8192);
    zp_put(g_pool, a);
    zp_put_batch(g_pool, &b, 1);
    assert_int_equal(zpt_stats(g_pool, &s1), 0);
    assert_int_equal(s1.puts, s0.puts + 2);
    assert_int_equal(s1.bytes_outstanding, 0);
}

static void test_other_functions(void **state)
{
    void *a = patterned(4096, 3);
    zp_stats st;
    FILE *f;
    int rc;
    (void)state;
    assert_int_equal(zp_trim(NULL, 0), 0);
    assert_int_equal(zp_trim(NULL, SIZE_MAX), 0);
    assert_int_equal(zp_capacity(NULL, a), 0);
    assert_int_equal(zp_capacity(NULL, NULL), 0);
    memset(&st, 0, sizeof(st));
    st.struct_size = sizeof(st);
    assert_int_equal(zp_stats_read(NULL, &st), -EINVAL);
    zp_stats_reset(NULL);
    f = tmpfile();
    assert_non_null(f);
    rc = zp_stats_write(NULL, f, ZP_FORMAT_TEXT);
    assert_int_equal(rc, -EINVAL);
    assert_int_equal(zp_stats_write(NULL, f, ZP_FORMAT_JSON), -EINVAL);
    assert_int_equal(zp_stats_write(NULL, f, ZP_FORMAT_PROMETHEUS), -EINVAL);
    fclose(f);
    assert_null(zp_pool_name(NULL));
    zp_pool_destroy(NULL);
    assert_int_equal(zpt_check(a, 4096, 3), SIZE_MAX);
    zp_put(g_pool, a);
}

static void test_cache_functions(void **state)
{
    zp_cache *c = NULL;
    void *bufs[3] = {NULL, NULL, NULL};
    int rc;
    (void)state;
    rc = zp_cache_create(NULL, &c);
    if (rc != -EINVAL)
        fail_msg("zp_cache_create(NULL, &c) = %d, expected -EINVAL", rc);
    rc = zp_cache_create(g_pool, NULL);
    if (rc != -EINVAL)
        fail_msg("zp_cache_create(pool, NULL) = %d, expected -EINVAL", rc);
    rc = zp_cache_create(NULL, NULL);
    assert_int_equal(rc, -EINVAL);
    zp_cache_destroy(NULL);
    zp_cache_flush(NULL);
    errno = 0;
    expect_null_einval(zp_cache_get(NULL, 4096), "zp_cache_get(NULL, 4096)");
    errno = 0;
    expect_null_einval(zp_cache_get(NULL, 0), "zp_cache_get(NULL, 0)");
    rc = zp_cache_get_batch(NULL, 4096, bufs, 3);
    if (rc != -EINVAL)
        fail_msg("zp_cache_get_batch(NULL, 4096, bufs, 3) = %d, expected "
                 "-EINVAL", rc);
    rc = zp_cache_get_batch(NULL, 4096, bufs, 0);
    if (rc != -EINVAL)
        fail_msg("zp_cache_get_batch(NULL, 4096, bufs, 0) = %d, expected "
                 "-EINVAL", rc);
    /* a real handle still works after all that */
    c = NULL;
    assert_int_equal(zp_cache_create(g_pool, &c), 0);
    bufs[0] = zp_cache_get(c, 4096);
    assert_non_null(bufs[0]);
    zp_cache_put(NULL, bufs[0]); /* no-op: still ours */
    zp_cache_put(c, bufs[0]);
    zp_cache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_functions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_functions, setup, teardown),
    };
    return ZPT_RUN(tests);
}
