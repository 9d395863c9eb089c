/* Tests budgets with cache handles: a zp_get_timed waiter is woken when a handle holding the budget's bytes is flushed or destroyed; a handle's own cache is given back when its get needs room. */
#include "handles_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define CLS ((size_t)256 * 1024) /* a class whose slab is one buffer */
#define WAKE_BOUND_MS 1500.0     /* generous: the wake should take < 1 ms */

/* A thread in zp_get_timed(pool, CLS, timeout). */
typedef struct waiter {
    zp_pool *pool;
    int timeout_ms;
    atomic_int started;
    atomic_int done;
    void *buf;
    int err;
    uint64_t returned_ns;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    atomic_store(&w->started, 1);
    errno = 0;
    w->buf = zp_get_timed(w->pool, CLS, w->timeout_ms);
    w->err = errno;
    w->returned_ns = hu_now_ns();
    atomic_store(&w->done, 1);
    return NULL;
}

enum { WAKE_FLUSH, WAKE_DESTROY };

/* Budget of exactly one slab; a handle holds its only buffer (got and put
 * back through it); another thread waits in zp_get_timed; the handle is
 * flushed or destroyed: the waiter gets the buffer well before its
 * timeout. shared: the budget is a zp_budget (whose waiters the test can
 * read), else the pool's private max_bytes. */
static void run_wake(int how, int shared, int timeout_ms)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    zp_budget *budget = NULL;
    zp_cache *c = NULL;
    static waiter w;
    pthread_t t;
    void *held;
    uint64_t woke;
    double ms;
    zp_stats s;

    zp_config_init(&cfg);
    cfg.max_class = ZPT_MiB;
    if (shared) {
        assert_int_equal(zp_budget_create(CLS, &budget), 0);
        cfg.budget = budget;
    } else {
        cfg.max_bytes = CLS;
    }
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    assert_int_equal(zp_cache_create(pool, &c), 0);
    held = zp_cache_get(c, CLS);
    assert_non_null(held);
    zp_cache_put(c, held); /* cached in the handle: the budget is full */
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_reserved, CLS);
    /* a plain get on this thread cannot make room: ENOBUFS */
    errno = 0;
    assert_null(zp_get(pool, CLS));
    assert_int_equal(errno, ENOBUFS);

    memset(&w, 0, sizeof(w));
    w.pool = pool;
    w.timeout_ms = timeout_ms;
    hu_watchdog_arm(20, "a zp_get_timed waiter never woke after the handle "
                        "holding the budget was flushed or destroyed");
    assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
    if (shared) {
        uint64_t t0 = hu_now_ns();
        zp_budget_stats bs;
        for (;;) {
            memset(&bs, 0, sizeof(bs));
            bs.struct_size = sizeof(bs);
            assert_int_equal(zp_budget_read(budget, &bs), 0);
            if (bs.waiters >= 1 || atomic_load(&w.done) ||
                hu_ms_since(t0) > 2000)
                break;
            hu_sleep_ms(1);
        }
        assert_int_equal(bs.waiters, 1);
    } else {
        while (!atomic_load(&w.started))
            hu_sleep_ms(1);
        hu_sleep_ms(100); /* let it reach the wait (not a pass criterion) */
    }
    if (atomic_load(&w.done))
        fail_msg("zp_get_timed returned (%p, errno %d) while the only "
                 "buffer of the budget was cached in a handle", w.buf, w.err);

    woke = hu_now_ns();
    if (how == WAKE_FLUSH)
        zp_cache_flush(c);
    else
        zp_cache_destroy(c);
    assert_int_equal(pthread_join(t, NULL), 0);
    hu_watchdog_disarm();
    ms = (double)(w.returned_ns - woke) / 1e6;
    print_message("# %s, %s budget, timeout %d: waiter returned %s %.2f ms "
                  "after\n", how == WAKE_FLUSH ? "flush" : "destroy",
                  shared ? "shared" : "private", timeout_ms,
                  w.buf ? "a buffer" : "NULL", ms);
    if (w.buf == NULL)
        fail_msg("zp_get_timed(%d ms) failed with errno %d (%s) after the "
                 "handle was %s", timeout_ms, w.err, strerror(w.err),
                 how == WAKE_FLUSH ? "flushed" : "destroyed");
    if (ms > WAKE_BOUND_MS)
        fail_msg("zp_get_timed returned %.0f ms after the handle was %s "
                 "(timeout %d ms): it was not woken by it", ms,
                 how == WAKE_FLUSH ? "flushed" : "destroyed", timeout_ms);
    assert_int_equal(zp_capacity(pool, w.buf), CLS);
    zpt_fill(w.buf, CLS, 5);
    assert_int_equal(zpt_check(w.buf, CLS, 5), SIZE_MAX);
    zp_put(pool, w.buf);
    if (how == WAKE_FLUSH)
        zp_cache_destroy(c);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(s.bytes_reserved <= CLS);
    assert_true(zpt_stats_sum_ok(&s));
    zp_pool_destroy(pool);
    zp_budget_destroy(budget);
}

static void test_flush_wakes_waiter(void **state)
{
    (void)state;
    run_wake(WAKE_FLUSH, 1, 3000);
}

static void test_destroy_wakes_waiter(void **state)
{
    (void)state;
    run_wake(WAKE_DESTROY, 1, 3000);
}

static void test_flush_wakes_waiter_forever(void **state)
{
    (void)state;
    run_wake(WAKE_FLUSH, 1, -1);
}

static void test_destroy_wakes_waiter_forever(void **state)
{
    (void)state;
    run_wake(WAKE_DESTROY, 1, -1);
}

static void test_flush_wakes_waiter_private_budget(void **state)
{
    (void)state;
    run_wake(WAKE_FLUSH, 0, 3000);
}

static void test_destroy_wakes_waiter_private_budget(void **state)
{
    (void)state;
    run_wake(WAKE_DESTROY, 0, -1);
}

/* The budget is full of buffers idle in the handle; a get of another
 * class through the same handle gives the handle's idle memory back first
 * and succeeds (as a thread's own cache is given back for its zp_get). */
static void test_handle_get_reclaims_own_cache(void **state)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    zp_cache *c = NULL;
    void *bufs[4], *big;
    zp_stats s;
    int i;
    (void)state;
    zp_config_init(&cfg);
    cfg.max_class = ZPT_MiB;
    cfg.max_bytes = ZPT_MiB;
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    assert_int_equal(zp_cache_create(pool, &c), 0);
    for (i = 0; i < 4; i++) {
        bufs[i] = zp_cache_get(c, CLS);
        assert_non_null(bufs[i]);
    }
    for (i = 0; i < 4; i++)
        zp_cache_put(c, bufs[i]); /* 1 MiB idle in the handle: budget full */
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_reserved, ZPT_MiB);
    errno = 0;
    big = zp_cache_get(c, ZPT_MiB);
    if (big == NULL)
        fail_msg("zp_cache_get(1 MiB) with the whole budget idle in the same "
                 "handle failed (errno %d): the handle's cache should be "
                 "given back first, as a thread's own cache is", errno);
    assert_int_equal(zp_capacity(pool, big), ZPT_MiB);
    zpt_fill(big, ZPT_MiB, 9);
    assert_int_equal(zpt_check(big, ZPT_MiB, 9), SIZE_MAX);
    zp_cache_put(c, big);
    zp_cache_destroy(c);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_true(s.bytes_reserved <= ZPT_MiB);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flush_wakes_waiter),
        cmocka_unit_test(test_destroy_wakes_waiter),
        cmocka_unit_test(test_flush_wakes_waiter_forever),
        cmocka_unit_test(test_destroy_wakes_waiter_forever),
        cmocka_unit_test(test_flush_wakes_waiter_private_budget),
        cmocka_unit_test(test_destroy_wakes_waiter_private_budget),
        cmocka_unit_test(test_handle_get_reclaims_own_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
