/* Budget lifecycle, reading and configuration: create/destroy/read, sharing, private max_bytes, lifetimes. */
#include "zp_test.h"

static void test_create_invalid(void **state)
{
    zp_budget *b = (zp_budget *)&b;
    (void)state;
    assert_int_equal(zp_budget_create(0, &b), -EINVAL);
    assert_null(b);
    assert_int_equal(zp_budget_create(ZPT_MiB, NULL), -EINVAL);
    zp_budget_destroy(NULL); /* no-op */
}

static void test_read_fresh(void **state)
{
    zp_budget *b = NULL;
    zp_budget_stats s;
    (void)state;
    assert_int_equal(zp_budget_create(3 * ZPT_MiB + 5, &b), 0);
    assert_non_null(b);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.struct_size, sizeof(s));
    assert_int_equal(s.max_bytes, 3 * ZPT_MiB + 5);
    assert_int_equal(s.bytes_reserved, 0);
    assert_int_equal(s.peak_reserved, 0);
    assert_int_equal(s.failed_gets, 0);
    assert_int_equal(s.waited_gets, 0);
    assert_int_equal(s.waiters, 0);

    assert_int_equal(zp_budget_read(NULL, &s), -EINVAL);
    assert_int_equal(zp_budget_read(b, NULL), -EINVAL);
    memset(&s, 0, sizeof(s));
    assert_int_equal(zp_budget_read(b, &s), -EINVAL); /* struct_size 0 */

    /* an older, shorter struct: fields beyond struct_size are not written */
    memset(&s, 0xAB, sizeof(s));
    s.struct_size = offsetof(zp_budget_stats, waiters);
    assert_int_equal(zp_budget_read(b, &s), 0);
    assert_int_equal(s.max_bytes, 3 * ZPT_MiB + 5);
    assert_int_equal(s.waited_gets, 0);
    assert_int_equal(s.waiters, 0xABABABABABABABABull);
    zp_budget_destroy(b);
}

static void test_config_both_invalid(void **state)
{
    zp_budget *b = NULL;
    zp_config cfg;
    zp_pool *pool = (zp_pool *)&pool;
    (void)state;
    assert_int_equal(zp_budget_create(4 * ZPT_MiB, &b), 0);
    zp_config_init(&cfg);
    cfg.budget = b;
    cfg.max_bytes = ZPT_MiB;
    assert_int_equal(zp_pool_create(&cfg, &pool), -EINVAL);
    assert_null(pool);
    zp_budget_destroy(b);
}

/* max_bytes without a budget: a private budget of that size. */
static void test_private_budget(void **state)
{
    zp_pool *pool = ZPT_POOL(.max_bytes = 2 * ZPT_MiB);
    void *a, *b, *c;
    zp_stats s;
    (void)state;
    a = zp_get(pool, ZPT_MiB);
    b = zp_get(pool, ZPT_MiB);
    assert_non_null(a);
    assert_non_null(b);
    errno = 0;
    c = zp_get(pool, ZPT_MiB);
    assert_null(c);
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_reserved, 2 * ZPT_MiB);
    assert_int_equal(s.peak_reserved, 2 * ZPT_MiB);
    zp_put(pool, a);
    c = zp_get(pool, ZPT_MiB);
    assert_non_null(c);
    zp_put(pool, b);
    zp_put(pool, c);
    zp_pool_destroy(pool);
}

/* One budget, two pools: they draw from the same bytes, and what one gives
 * back the other can take. */
static void test_shared_by_two_pools(void **state)
{
    zp_budget *b = NULL;
    zp_pool *pa, *pb;
    void *x[3], *y[4];
    zp_budget_stats s;
    zp_stats sa, sb;
    int i;
    (void)state;
    assert_int_equal(zp_budget_create(4 * ZPT_MiB, &b), 0);
    pa = ZPT_POOL(.budget = b);
    pb = ZPT_POOL(.budget = b);
    for (i = 0; i < 3; i++) {
        x[i] = zp_get(pa, ZPT_MiB);
        assert_non_null(x[i]);
    }
    y[0] = zp_get(pb, ZPT_MiB);
    assert_non_null(y[0]);
    errno = 0;
    assert_null(zp_get(pb, ZPT_MiB));
    assert_int_equal(errno, ENOBUFS);

    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(zpt_stats(pa, &sa), 0);
    assert_int_equal(zpt_stats(pb, &sb), 0);
    assert_int_equal(s.bytes_reserved, 4 * ZPT_MiB);
    assert_int_equal(s.peak_reserved, 4 * ZPT_MiB);
    assert_int_equal(s.bytes_reserved, sa.bytes_reserved + sb.bytes_reserved);
    assert_int_equal(sa.bytes_reserved, 3 * ZPT_MiB);
    assert_int_equal(s.failed_gets, 1);

    for (i = 0; i < 3; i++)
        zp_put(pa, x[i]);
    assert_int_equal(zp_trim(pa, 0), 3 * ZPT_MiB);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, ZPT_MiB);
    assert_int_equal(s.peak_reserved, 4 * ZPT_MiB);
    for (i = 1; i < 4; i++) {
        y[i] = zp_get(pb, ZPT_MiB);
        assert_non_null(y[i]);
    }
    for (i = 0; i < 4; i++)
        zp_put(pb, y[i]);
    zp_pool_destroy(pa);
    zp_pool_destroy(pb);
    /* the pools are gone, the budget is still ours and all given back */
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 0);
    assert_int_equal(s.peak_reserved, 4 * ZPT_MiB);
    zp_budget_destroy(b);
}

/* The creator may drop its reference while pools use the budget: the
 * limit still holds and the budget goes with the last pool (ASan checks
 * there is no use after free and no leak). */
static void test_budget_outlives_creator(void **state)
{
    zp_budget *b = NULL;
    zp_pool *pa, *pb;
    void *x, *y;
    (void)state;
    assert_int_equal(zp_budget_create(2 * ZPT_MiB, &b), 0);
    pa = ZPT_POOL(.budget = b);
    pb = ZPT_POOL(.budget = b);
    zp_budget_destroy(b);
    x = zp_get(pa, ZPT_MiB);
    y = zp_get(pb, ZPT_MiB);
    assert_non_null(x);
    assert_non_null(y);
    errno = 0;
    assert_null(zp_get(pa, ZPT_MiB));
    assert_int_equal(errno, ENOBUFS);
    zp_put(pa, x);
    zp_pool_destroy(pa);
    /* pa's memory went back with it: pb can use it */
    x = zp_get(pb, ZPT_MiB);
    assert_non_null(x);
    zp_put(pb, x);
    zp_put(pb, y);
    zp_pool_destroy(pb);
}

/* Destroying a pool gives every byte it held back to the budget, idle or
 * (reported) outstanding. */
static void test_destroy_releases(void **state)
{
    zp_budget *b = NULL;
    zp_pool *pool;
    zp_budget_stats s;
    void *x, *y;
    (void)state;
    assert_int_equal(zp_budget_create(8 * ZPT_MiB, &b), 0);
    pool = ZPT_POOL(.budget = b);
    x = zp_get(pool, ZPT_MiB);
    y = zp_get(pool, 3 * ZPT_MiB); /* 4 MiB class */
    assert_non_null(x);
    assert_non_null(y);
    zp_put(pool, x); /* idle in this thread's cache */
    zp_put(pool, y);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 5 * ZPT_MiB);
    zp_pool_destroy(pool);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 0);
    zp_budget_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_invalid),
        cmocka_unit_test(test_read_fresh),
        cmocka_unit_test(test_config_both_invalid),
        cmocka_unit_test(test_private_budget),
        cmocka_unit_test(test_shared_by_two_pools),
        cmocka_unit_test(test_budget_outlives_creator),
        cmocka_unit_test(test_destroy_releases),
    };
    return ZPT_RUN(tests);
}
