/* Regression (defect 3): at most 65536 live pools with thread caches: the next create fails with -ENOMEM naming the limit, pools without caches are not counted, and a destroyed pool frees its slot. */
#include "zp_test.h"

#define LIMIT 65536

static void tiny_config(zp_config *cfg, unsigned depth)
{
    ZPT_CONFIG(cfg, .min_class = 4096, .max_class = 4096,
               .cache_depth = ZPT_EXACT(depth));
}

/* A pool works, and (with a cache) its second get is a cache hit. */
static void expect_usable(zp_pool *pool, int cached, const char *what)
{
    void *a, *b;
    zp_stats s0, s;
    assert_int_equal(zpt_stats(pool, &s0), 0);
    a = zp_get(pool, 4096);
    if (a == NULL)
        fail_msg("%s: zp_get failed (errno %d)", what, errno);
    zpt_fill(a, 4096, 3);
    assert_int_equal(zpt_check(a, 4096, 3), SIZE_MAX);
    zp_put(pool, a);
    b = zp_get(pool, 4096);
    assert_non_null(b);
    zp_put(pool, b);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.gets - s0.gets, 2);
    assert_int_equal(s.puts - s0.puts, 2);
    if (cached && s.cache_hits - s0.cache_hits < 1)
        fail_msg("%s: the second get was not a thread-cache hit "
                 "(cache_hits %llu more)", what,
                 (unsigned long long)(s.cache_hits - s0.cache_hits));
    if (!cached)
        assert_int_equal(s.cache_hits, 0);
}

static void test_cap(void **state)
{
    zp_pool **pools = calloc(LIMIT, sizeof(*pools));
    zp_pool *extra = NULL, *nocache[3];
    zp_cache *c = NULL;
    zp_config cfg;
    const char *msg;
    uint64_t t0 = zpt_now_ns();
    int i, rc;
    (void)state;
    assert_non_null(pools);
    tiny_config(&cfg, 1);
    for (i = 0; i < LIMIT; i++) {
        rc = zp_pool_create(&cfg, &pools[i]);
        if (rc != 0)
            fail_msg("pool %d of %d with thread caches: %d (%s)", i + 1, LIMIT,
                     rc, zp_strerror(rc));
    }
    print_message("# %d pools created in %.0f ms\n", LIMIT, zpt_ms_since(t0));

    rc = zp_pool_create(&cfg, &extra);
    msg = zp_strerror(rc);
    print_message("# pool %d: %d (%s)\n", LIMIT + 1, rc, msg);
    if (rc != -ENOMEM)
        fail_msg("pool %d with thread caches: %d (%s), expected -ENOMEM",
                 LIMIT + 1, rc, msg);
    if (msg == NULL || strstr(msg, "65536") == NULL)
        fail_msg("zp_strerror(-ENOMEM) after the refused create does not "
                 "name the limit 65536: \"%s\"", msg ? msg : "(null)");

    /* pools without thread caches are not limited */
    tiny_config(&cfg, 0);
    for (i = 0; i < 3; i++) {
        rc = zp_pool_create(&cfg, &nocache[i]);
        if (rc != 0)
            fail_msg("pool with cache_depth 0 at the limit: %d (%s)", rc,
                     zp_strerror(rc));
    }
    expect_usable(nocache[1], 0, "cache_depth 0 pool at the limit");
    /* a handle of a pool created at the limit works */
    assert_int_equal(zp_cache_create(pools[LIMIT - 1], &c), 0);
    {
        void *b = zp_cache_get(c, 4096);
        assert_non_null(b);
        zp_cache_put(c, b);
    }
    zp_cache_destroy(c);

    /* destroying one frees a slot, which the next create takes */
    tiny_config(&cfg, 1);
    zp_pool_destroy(pools[LIMIT / 2]);
    pools[LIMIT / 2] = NULL;
    rc = zp_pool_create(&cfg, &pools[LIMIT / 2]);
    if (rc != 0)
        fail_msg("create after a destroy at the limit: %d (%s)", rc,
                 zp_strerror(rc));
    expect_usable(pools[LIMIT / 2], 1, "pool in a freed slot");
    expect_usable(pools[LIMIT - 1], 1, "the last pool created");
    rc = zp_pool_create(&cfg, &extra);
    assert_int_equal(rc, -ENOMEM);

    for (i = 0; i < 3; i++)
        zp_pool_destroy(nocache[i]);
    t0 = zpt_now_ns();
    for (i = LIMIT; i-- > 0;)
        zp_pool_destroy(pools[i]);
    print_message("# %d pools destroyed in %.0f ms\n", LIMIT, zpt_ms_since(t0));
    free(pools);

    /* all slots free again */
    rc = zp_pool_create(&cfg, &extra);
    assert_int_equal(rc, 0);
    expect_usable(extra, 1, "pool after all were destroyed");
    zp_pool_destroy(extra);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap),
    };
    return ZPT_RUN(tests);
}
