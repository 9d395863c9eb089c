/* Regression (defect 2): at debug 1 and 2 an oversize buffer put twice is reported as ZP_MISUSE_DOUBLE_PUT, even after many other oversize gets and puts. */
#include "zp_test.h"

#define MAX_CLASS ZPT_MiB

/* Exactly n reports so far, the last a DOUBLE_PUT of ptr in pool. */
#define expect_double_put(n, ptr, pool, what)                                  \
    zpt_assert_misuse(&zpt_g_misuse, (n), ZP_MISUSE_DOUBLE_PUT, (ptr), (pool), (what))

static zp_pool *make_pool(int debug)
{
    return ZPT_POOL(.max_class = MAX_CLASS, .debug = debug);
}

static void run_immediate(int debug)
{
    zp_pool *pool = make_pool(debug);
    void *x;
    zp_stats s;
    x = zp_get(pool, 3 * MAX_CLASS);
    assert_non_null(x);
    memset(x, 7, 3 * MAX_CLASS);
    zp_put(pool, x);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 0);
    zp_put(pool, x);
    expect_double_put(1, x, pool, "oversize put twice");
    /* through zp_put_batch too */
    x = zp_get(pool, MAX_CLASS + 1);
    assert_non_null(x);
    zp_put_batch(pool, &x, 1);
    zp_put_batch(pool, &x, 1);
    expect_double_put(2, x, pool, "oversize put twice by zp_put_batch");
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.misuse, 2);
    assert_int_equal(s.oversize, 2);
    assert_int_equal(s.discards, 2);
    assert_int_equal(s.puts, 2);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_pool_destroy(pool);
}

static void test_immediate_debug1(void **state)
{
    (void)state;
    run_immediate(1);
}

static void test_immediate_debug2(void **state)
{
    (void)state;
    run_immediate(2);
}

/* x is put, then 1000 other oversize buffers of various sizes come and go
 * (some at x's old address, as the OS reuses it), some still held; then x
 * is put again. */
static void run_after_churn(int debug)
{
    enum { CHURN = 1000, HOLD = 8 };
    zp_pool *pool = make_pool(debug);
    void *x, *held[HOLD];
    zp_stats s;
    int i, reused = 0;
    x = zp_get(pool, 2 * MAX_CLASS);
    assert_non_null(x);
    zp_put(pool, x);
    for (i = 0; i < CHURN; i++) {
        size_t sz = MAX_CLASS + 1 + (size_t)(i % 7) * 300000;
        void *y = zp_get(pool, sz);
        assert_non_null(y);
        reused += y == x;
        ((unsigned char *)y)[0] = 1;
        zp_put(pool, y);
    }
    for (i = 0; i < HOLD; i++) {
        held[i] = zp_get(pool, MAX_CLASS + 4096 * (size_t)(i + 1));
        assert_non_null(held[i]);
    }
    /* a held one may now cover x's address (the OS reuses it): then x
       would be that live buffer, or a pointer into it. Put such a buffer
       first, so x names no live buffer and its put is a double put. */
    for (i = 0; i < HOLD; i++) {
        uintptr_t lo = (uintptr_t)held[i];
        uintptr_t hi = lo + zp_capacity(pool, held[i]);
        if ((uintptr_t)x >= lo && (uintptr_t)x < hi) {
            zp_put(pool, held[i]);
            held[i] = NULL;
        }
    }
    print_message("# %d of %d later oversize buffers reused x's address\n",
                  reused, CHURN);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 0);
    zp_put(pool, x);
    expect_double_put(1, x, pool, "oversize put again after churn");
    for (i = 0; i < HOLD; i++)
        zp_put(pool, held[i]); /* NULL: already put above */
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 1);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.misuse, 1);
    assert_int_equal(s.oversize, 1 + CHURN + HOLD);
    assert_int_equal(s.puts, 1 + CHURN + HOLD);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_pool_destroy(pool);
}

static void test_after_churn_debug1(void **state)
{
    (void)state;
    run_after_churn(1);
}

static void test_after_churn_debug2(void **state)
{
    (void)state;
    run_after_churn(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        zpt_misuse_unit_test(test_immediate_debug1),
        zpt_misuse_unit_test(test_immediate_debug2),
        zpt_misuse_unit_test(test_after_churn_debug1),
        zpt_misuse_unit_test(test_after_churn_debug2),
    };
    if (getenv("ZEROPOOL_DEBUG") != NULL && *getenv("ZEROPOOL_DEBUG"))
        return zpt_skip_all("ZEROPOOL_DEBUG overrides the debug levels this test sets");
    return ZPT_RUN(tests);
}
