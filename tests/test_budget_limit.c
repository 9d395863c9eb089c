/* A full budget: zp_get reclaims the pool's own idle memory, then fails with ENOBUFS (never ENOMEM); oversize counts. */
#include "zp_test.h"

/* 4 MiB budget: exactly four 1 MiB buffers, then ENOBUFS, counted. */
static void test_enobufs_when_full(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    void *bufs[4];
    zp_budget_stats s;
    int i;
    (void)state;
    zpt_get_mib(pool, bufs, 4);
    errno = 0;
    assert_null(zp_get(pool, ZPT_MiB));
    assert_int_equal(errno, ENOBUFS);
    errno = 0;
    assert_null(zp_get(pool, 64 * ZPT_KiB)); /* any class needing a slab */
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 4 * ZPT_MiB);
    assert_int_equal(s.peak_reserved, 4 * ZPT_MiB);
    assert_int_equal(s.failed_gets, 2);
    assert_int_equal(s.waited_gets, 0);
    assert_int_equal(zpt_reserved(pool), 4 * ZPT_MiB);

    zp_put(pool, bufs[3]);
    bufs[3] = zp_get(pool, ZPT_MiB); /* the cached one comes back */
    assert_non_null(bufs[3]);
    for (i = 0; i < 4; i++)
        zp_put(pool, bufs[i]);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* The budget is counted in slabs: 1 MiB of 4 KiB buffers is 256 of them. */
static void test_small_class_granularity(void **state)
{
    zp_budget *b = zpt_budget_new(ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    static void *bufs[257];
    int i, n = 0;
    (void)state;
    for (i = 0; i < 257; i++) {
        bufs[n] = zp_get(pool, 4096);
        if (bufs[n] == NULL) {
            assert_int_equal(errno, ENOBUFS);
            break;
        }
        n++;
    }
    assert_int_equal(n, 256);
    for (i = 0; i < n; i++)
        zp_put(pool, bufs[i]);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* The provider refusing memory is ENOMEM, not ENOBUFS, and the bytes
 * reserved for the failed map are given back. */
static void test_enomem_is_distinct(void **state)
{
    zp_budget *b = zpt_budget_new(8 * ZPT_MiB);
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.budget = b, .max_class = ZPT_MiB, .pv = pv);
    zp_budget_stats s;
    void *x;
    (void)state;
    atomic_store(&pv->fail_all, 1);
    errno = 0;
    assert_null(zp_get(pool, ZPT_MiB));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(zp_get(pool, 2 * ZPT_MiB)); /* oversize */
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(zp_get_timed(pool, ZPT_MiB, 1000));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 0);
    assert_int_equal(s.failed_gets, 0); /* only ENOBUFS / ETIMEDOUT count */
    assert_int_equal(s.waited_gets, 0);
    atomic_store(&pv->fail_all, 0);
    x = zp_get(pool, ZPT_MiB);
    assert_non_null(x);
    zp_put(pool, x);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
    zp_budget_destroy(b);
}

/* Oversize buffers (above max_class) are reserved too, rounded up to
 * 64 KiB, and given back on put. */
static void test_oversize_counts(void **state)
{
    zp_budget *b = zpt_budget_new(8 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b, .max_class = ZPT_MiB);
    zp_budget_stats s;
    void *x, *y, *z;
    (void)state;
    x = zp_get(pool, 3 * ZPT_MiB);
    assert_non_null(x);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 3 * ZPT_MiB);
    errno = 0;
    assert_null(zp_get(pool, 6 * ZPT_MiB));
    assert_int_equal(errno, ENOBUFS);
    y = zp_get(pool, 5 * ZPT_MiB);
    assert_non_null(y);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 8 * ZPT_MiB);
    errno = 0;
    assert_null(zp_get(pool, 4096)); /* nothing left for a slab either */
    assert_int_equal(errno, ENOBUFS);
    zp_put(pool, y);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 3 * ZPT_MiB);
    z = zp_get(pool, 2 * ZPT_MiB + 1);
    assert_non_null(z);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 5 * ZPT_MiB + 64 * ZPT_KiB);
    zp_put(pool, x);
    zp_put(pool, z);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 0);
    assert_int_equal(s.peak_reserved, 8 * ZPT_MiB);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* A request larger than the whole budget fails at once with ENOBUFS,
 * from zp_get and from zp_get_timed even with an infinite timeout. */
static void test_larger_than_budget(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);     /* 8 MiB class: slab > budget */
    zp_pool *small = ZPT_POOL(.budget = b, .max_class = ZPT_MiB); /* 5 MiB is oversize here */
    zp_budget_stats s;
    uint64_t t0;
    (void)state;
    errno = 0;
    assert_null(zp_get(pool, 5 * ZPT_MiB));
    assert_int_equal(errno, ENOBUFS);
    errno = 0;
    assert_null(zp_get(small, 5 * ZPT_MiB));
    assert_int_equal(errno, ENOBUFS);
    t0 = zpt_now_ns();
    errno = 0;
    assert_null(zp_get_timed(pool, 5 * ZPT_MiB, -1));
    assert_int_equal(errno, ENOBUFS);
    errno = 0;
    assert_null(zp_get_timed(small, 5 * ZPT_MiB, -1));
    assert_int_equal(errno, ENOBUFS);
    errno = 0;
    assert_null(zp_get_timed(small, 4 * ZPT_MiB + 1, 5000));
    assert_int_equal(errno, ENOBUFS);
    print_message("three too-large zp_get_timed calls returned in %.2f ms\n",
                  zpt_ms_since(t0));
    assert_true(zpt_ms_since(t0) < 2000.0);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 0);
    assert_int_equal(s.waited_gets, 0);
    assert_int_equal(s.waiters, 0);
    zp_pool_destroy(pool);
    zp_pool_destroy(small);
    zp_budget_destroy(b);
}

/* Idle buffers in the calling thread's cache are given back so a get of
 * another class fits. */
static void test_reclaims_own_cache(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    void *bufs[4], *big;
    zp_budget_stats s;
    int i;
    (void)state;
    zpt_get_mib(pool, bufs, 4);
    for (i = 0; i < 4; i++)
        zp_put(pool, bufs[i]); /* into this thread's cache */
    big = zp_get(pool, 2 * ZPT_MiB);
    assert_non_null(big);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_true(s.bytes_reserved <= 4 * ZPT_MiB);
    assert_int_equal(s.failed_gets, 0);
    zp_put(pool, big);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* Idle buffers in the depot (left by a thread that exited) are given back
 * so a get fits; a pool sharing the budget can use them after a trim. */
static void test_reclaims_depot(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    zp_pool *pool, *other;
    pthread_t t;
    void *rv, *big, *x;
    (void)state;
    pool = ZPT_POOL(.budget = b);
    other = ZPT_POOL(.budget = b);
    assert_int_equal(pthread_create(&t, NULL, zpt_get_put_exit, pool), 0);
    assert_int_equal(pthread_join(t, &rv), 0);
    assert_int_equal((intptr_t)rv, 4);
    assert_int_equal(zpt_reserved(pool), 4 * ZPT_MiB);

    big = zp_get(pool, 4 * ZPT_MiB);
    assert_non_null(big);
    assert_int_equal(zpt_reserved(pool), 4 * ZPT_MiB);
    zp_put(pool, big);

    /* what this pool trims, another pool on the budget can use */
    assert_int_equal(zp_trim(pool, 0), 4 * ZPT_MiB);
    x = zp_get(other, ZPT_MiB);
    assert_non_null(x);
    zp_put(other, x);
    zp_pool_destroy(other);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* zp_get_batch on a budget: all or nothing, -ENOBUFS when it cannot fit
 * even after reclaiming the pool's idle memory, and it does reclaim. */
static void test_batch(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    void *bufs[5];
    zp_budget_stats s;
    zp_stats ps;
    (void)state;
    memset(bufs, 0, sizeof(bufs));
    assert_int_equal(zp_get_batch(pool, ZPT_MiB, bufs, 5), -ENOBUFS);
    assert_int_equal(zpt_stats(pool, &ps), 0);
    assert_int_equal(ps.bytes_outstanding, 0);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_true(s.bytes_reserved <= 4 * ZPT_MiB);
    assert_int_equal(s.failed_gets, 1); /* the batch counts as one failed get */

    assert_int_equal(zp_get_batch(pool, ZPT_MiB, bufs, 4), 0);
    zp_put_batch(pool, bufs, 4); /* idle now, in this thread's cache */
    /* two 2 MiB buffers need the idle 1 MiB ones given back first */
    assert_int_equal(zp_get_batch(pool, 2 * ZPT_MiB, bufs, 2), 0);
    assert_int_equal(zp_capacity(pool, bufs[0]), 2 * ZPT_MiB);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 4 * ZPT_MiB);
    assert_true(s.peak_reserved <= 4 * ZPT_MiB);
    zp_put_batch(pool, bufs, 2);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enobufs_when_full),
        cmocka_unit_test(test_small_class_granularity),
        cmocka_unit_test(test_enomem_is_distinct),
        cmocka_unit_test(test_oversize_counts),
        cmocka_unit_test(test_larger_than_budget),
        cmocka_unit_test(test_reclaims_own_cache),
        cmocka_unit_test(test_reclaims_depot),
        cmocka_unit_test(test_batch),
    };
    return ZPT_RUN(tests);
}
