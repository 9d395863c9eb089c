/* zp_get_timed on a full budget: woken by a put or a trim on the same budget, timeouts honoured, 0 never waits. */
#include "zp_test.h"

#define LONG_WAIT_MS 10000
#define SLACK_MS 2000.0

/* Fills a budget of n MiB with 1 MiB buffers of pool. */
static void fill(zp_pool *pool, void **bufs, int n)
{
    zpt_get_mib(pool, bufs, n);
    errno = 0;
    assert_null(zp_get(pool, ZPT_MiB));
    assert_int_equal(errno, ENOBUFS);
}

/* Waits for w to be queued, then releases room with `release` and checks
 * that w got its buffer (not a timeout); prints the wake-up latency. */
static void expect_woken(zp_budget *b, zpt_waiter *w, void (*release)(void *), void *arg,
                         const char *what)
{
    uint64_t t_release;
    zp_budget_stats s;
    assert_true(zpt_wait_waiters(b, 1, 5000));
    assert_int_equal(atomic_load(&w->done), 0);
    t_release = zpt_now_ns();
    release(arg);
    assert_int_equal(pthread_join(w->thread, NULL), 0);
    print_message("waiter woken by %s after %.3f ms\n", what,
                  (double)(w->returned_ns - t_release) / 1e6);
    if (w->buf == NULL)
        fail_msg("waiter returned NULL (errno %d: %s) instead of being woken by %s",
                 w->err, strerror(w->err), what);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.waiters, 0);
    assert_true(s.waited_gets >= 1);
    assert_true(s.bytes_reserved <= s.max_bytes);
}

static zp_pool *g_put_pool;
static void put_one(void *buf)
{
    zp_put(g_put_pool, buf);
}

static void put_one_batch(void *buf)
{
    zp_put_batch(g_put_pool, &buf, 1);
}

static zp_pool *g_trim_pool;
static void trim_all(void *arg)
{
    size_t *released = (size_t *)arg;
    *released = zp_trim(g_trim_pool, 0);
}

/* A full budget of two 1 MiB buffers, a waiter for a third on the same
 * pool, woken when `release` gives back held[1]; if after is not NULL it
 * gets the budget's stats once the waiter is served. */
static void woken_in_same_pool(void (*release)(void *), const char *what,
                               zp_budget_stats *after)
{
    zp_budget *b = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    void *held[2];
    zpt_waiter w;
    fill(pool, held, 2);
    zpt_waiter_start(&w, pool, ZPT_MiB, LONG_WAIT_MS);
    g_put_pool = pool;
    expect_woken(b, &w, release, held[1], what);
    if (after)
        assert_int_equal(zpt_budget_stats(b, after), 0);
    zp_put(pool, w.buf); /* got on the waiter's thread, put here */
    zp_put(pool, held[0]);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* A put on another thread wakes the waiter. */
static void test_woken_by_put(void **state)
{
    zp_budget_stats s;
    (void)state;
    woken_in_same_pool(put_one, "a put", &s);
    assert_int_equal(s.waited_gets, 1);
    assert_int_equal(s.failed_gets, 1); /* only fill()'s probe */
}

/* -1 waits as long as it takes. */
static void test_forever_woken_by_put(void **state)
{
    zp_budget *b = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    void *held[2];
    zpt_waiter w;
    (void)state;
    fill(pool, held, 2);
    zpt_waiter_start(&w, pool, ZPT_MiB, -1);
    assert_true(zpt_wait_waiters(b, 1, 5000));
    zpt_sleep_ms(50); /* it keeps waiting */
    assert_int_equal(atomic_load(&w.done), 0);
    g_put_pool = pool;
    expect_woken(b, &w, put_one, held[0], "a put (timeout -1)");
    zp_put(pool, w.buf);
    zp_put(pool, held[1]);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* A put into another pool on the same budget wakes the waiter. */
static void test_woken_by_put_other_pool(void **state)
{
    zp_budget *b = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pa = ZPT_POOL(.budget = b), *pb = ZPT_POOL(.budget = b);
    void *held[2];
    zpt_waiter w;
    (void)state;
    fill(pa, held, 2);
    zpt_waiter_start(&w, pb, ZPT_MiB, LONG_WAIT_MS);
    g_put_pool = pa;
    expect_woken(b, &w, put_one, held[0], "a put into another pool");
    zp_put(pb, w.buf);
    zp_put(pa, held[1]);
    zp_pool_destroy(pa);
    zp_pool_destroy(pb);
    zp_budget_destroy(b);
}

/* Giving back an oversize buffer (unmapped on put) wakes the waiter. */
static void test_woken_by_oversize_put(void **state)
{
    zp_budget *b = zpt_budget_new(3 * ZPT_MiB);
    zp_pool *big, *pool = ZPT_POOL(.budget = b);
    void *over, *x;
    zpt_waiter w;
    (void)state;
    big = ZPT_POOL(.budget = b, .max_class = 256 * ZPT_KiB); /* 3 MiB is oversize here */
    over = zp_get(big, 3 * ZPT_MiB);
    assert_non_null(over);
    errno = 0;
    x = zp_get(pool, ZPT_MiB);
    assert_null(x);
    assert_int_equal(errno, ENOBUFS);
    zpt_waiter_start(&w, pool, ZPT_MiB, LONG_WAIT_MS);
    g_put_pool = big;
    expect_woken(b, &w, put_one, over, "an oversize put");
    zp_put(pool, w.buf);
    zp_pool_destroy(pool);
    zp_pool_destroy(big);
    zp_budget_destroy(b);
}

/* zp_put_batch wakes the waiter as zp_put does. */
static void test_woken_by_put_batch(void **state)
{
    (void)state;
    woken_in_same_pool(put_one_batch, "a batch put", NULL);
}

/* A trim of another pool's idle memory wakes the waiter. */
static void test_woken_by_trim(void **state)
{
    zp_budget *b = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pa = ZPT_POOL(.budget = b), *pb = ZPT_POOL(.budget = b);
    void *held[2];
    size_t released = 0;
    zpt_waiter w;
    (void)state;
    fill(pa, held, 2);
    zp_put(pa, held[0]); /* idle in this thread's cache of pa */
    zp_put(pa, held[1]);
    zpt_waiter_start(&w, pb, 2 * ZPT_MiB, LONG_WAIT_MS);
    g_trim_pool = pa;
    expect_woken(b, &w, trim_all, &released, "a trim of another pool");
    assert_int_equal(released, 2 * ZPT_MiB);
    assert_int_equal(zp_capacity(pb, w.buf), 2 * ZPT_MiB);
    zp_put(pb, w.buf);
    zp_pool_destroy(pa);
    zp_pool_destroy(pb);
    zp_budget_destroy(b);
}

/* Nothing makes room: NULL with ETIMEDOUT after the timeout, within a
 * tolerance; the budget is then back to normal. */
static void test_timeout_honoured(void **state)
{
    const int timeouts[] = {1, 50, 300};
    zp_budget *b = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    void *held[2], *x;
    zp_budget_stats s;
    unsigned i;
    (void)state;
    fill(pool, held, 2);
    for (i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++) {
        uint64_t t0 = zpt_now_ns();
        double ms;
        errno = 0;
        x = zp_get_timed(pool, ZPT_MiB, timeouts[i]);
        ms = zpt_ms_since(t0);
        print_message("timeout %d ms: returned after %.3f ms\n", timeouts[i], ms);
        assert_null(x);
        assert_int_equal(errno, ETIMEDOUT);
        assert_true(ms >= (double)timeouts[i]);
        assert_true(ms < (double)timeouts[i] + SLACK_MS);
    }
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.waiters, 0);
    assert_int_equal(s.waited_gets, 3);
    assert_int_equal(s.failed_gets, 4); /* fill()'s probe and the three */

    /* the same from another thread, while this one holds the memory */
    {
        zpt_waiter w;
        zpt_waiter_start(&w, pool, ZPT_MiB, 100);
        assert_int_equal(pthread_join(w.thread, NULL), 0);
        assert_null(w.buf);
        assert_int_equal(w.err, ETIMEDOUT);
    }
    /* no waiter left behind: plain gets and puts work as before */
    zp_put(pool, held[0]);
    held[0] = zp_get(pool, ZPT_MiB);
    assert_non_null(held[0]);
    zp_put(pool, held[0]);
    zp_put(pool, held[1]);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* Timeout 0 never waits; with room, zp_get_timed does not wait either. */
static void test_zero_never_waits(void **state)
{
    zp_budget *b = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    void *held[2], *x;
    zp_budget_stats s;
    uint64_t t0;
    (void)state;
    x = zp_get_timed(pool, ZPT_MiB, 0);
    assert_non_null(x);
    zp_put(pool, x);
    x = zp_get_timed(pool, ZPT_MiB, LONG_WAIT_MS);
    assert_non_null(x);
    zp_put(pool, x);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.waited_gets, 0);

    fill(pool, held, 2);
    t0 = zpt_now_ns();
    errno = 0;
    x = zp_get_timed(pool, ZPT_MiB, 0);
    print_message("timeout 0 on a full budget: errno %s after %.3f ms\n",
                  errno == ENOBUFS ? "ENOBUFS" : errno == ETIMEDOUT ? "ETIMEDOUT" : "other",
                  zpt_ms_since(t0));
    assert_null(x);
    assert_true(errno == ENOBUFS || errno == ETIMEDOUT);
    assert_true(zpt_ms_since(t0) < SLACK_MS);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.waited_gets, 0);
    assert_int_equal(s.waiters, 0);
    zp_put(pool, held[0]);
    zp_put(pool, held[1]);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* Bad arguments; a pool without a budget behaves as zp_get. */
static void test_arguments(void **state)
{
    zp_pool *pool;
    void *x;
    (void)state;
    errno = 0;
    assert_null(zp_get_timed(NULL, 4096, 10));
    assert_int_equal(errno, EINVAL);
    pool = ZPT_POOL();
    errno = 0;
    assert_null(zp_get_timed(pool, 4096, -2));
    assert_int_equal(errno, EINVAL);
    x = zp_get_timed(pool, 4096, -1);
    assert_non_null(x);
    zp_put(pool, x);
    errno = 0;
    assert_null(zp_get_timed(pool, SIZE_MAX, -1));
    assert_int_equal(errno, EOVERFLOW);
    zp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_woken_by_put),
        cmocka_unit_test(test_forever_woken_by_put),
        cmocka_unit_test(test_woken_by_put_other_pool),
        cmocka_unit_test(test_woken_by_put_batch),
        cmocka_unit_test(test_woken_by_oversize_put),
        cmocka_unit_test(test_woken_by_trim),
        cmocka_unit_test(test_timeout_honoured),
        cmocka_unit_test(test_zero_never_waits),
        cmocka_unit_test(test_arguments),
    };
    return ZPT_RUN(tests);
}
