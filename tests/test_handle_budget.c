/* Tests budgets with cache handles: a zp_get_timed waiter is woken when a handle holding the budget's bytes puts, flushes or is destroyed; a handle's own cache is given back when its get needs room. */
#include "zp_test.h"

#define CLS ((size_t)256 * 1024) /* a class whose slab is one buffer */
#define WAKE_BOUND_MS 1500.0     /* generous: the wake should take < 1 ms */

/* How the handle gives the budget's only buffer back. PUT and PUT_BATCH:
 * the buffer is out (got through the handle) and is put through it;
 * FLUSH and DESTROY: it is idle in the handle's cache. */
enum { WAKE_PUT, WAKE_PUT_BATCH, WAKE_FLUSH, WAKE_DESTROY };

static const char *wake_name(int how)
{
    static const char *names[] = {"zp_cache_put", "zp_cache_put_batch",
                                  "zp_cache_flush", "zp_cache_destroy"};
    return names[how];
}

/* Budget of exactly one slab, taken by a buffer of the handle; another
 * thread waits in zp_get_timed for wsize (the same class, or a smaller
 * one that needs the slab unmapped first); the handle gives the buffer
 * back: the waiter succeeds well before its timeout. shared: the budget is
 * a zp_budget (whose waiters the test can read), else the pool's private
 * max_bytes. */
static void run_wake(int how, int shared, int timeout_ms, size_t wsize)
{
    zp_pool *pool;
    zp_budget *budget = shared ? zpt_budget_new(CLS) : NULL;
    zp_cache *c = NULL;
    static zpt_waiter w;
    void *held;
    uint64_t woke;
    double ms;
    zp_stats s;

    pool = ZPT_POOL(.max_class = ZPT_MiB, .budget = budget,
                    .max_bytes = shared ? 0 : CLS);
    assert_int_equal(zp_cache_create(pool, &c), 0);
    held = zp_cache_get(c, CLS);
    assert_non_null(held);
    if (how == WAKE_FLUSH || how == WAKE_DESTROY)
        zp_cache_put(c, held); /* cached in the handle: the budget is full */
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_reserved, CLS);
    /* a plain get on this thread cannot make room: ENOBUFS */
    errno = 0;
    assert_null(zp_get(pool, wsize));
    assert_int_equal(errno, ENOBUFS);

    zpt_watchdog(20, "a zp_get_timed waiter never woke after a cache "
                     "handle gave the budget's bytes back");
    zpt_waiter_start(&w, pool, wsize, timeout_ms);
    zpt_waiter_settle(&w, budget); /* shared: budget; private: NULL */
    if (atomic_load(&w.done))
        fail_msg("zp_get_timed returned (%p, errno %d) while the only "
                 "buffer of the budget was the handle's", w.buf, w.err);

    woke = zpt_now_ns();
    switch (how) {
    case WAKE_PUT:
        zp_cache_put(c, held);
        break;
    case WAKE_PUT_BATCH:
        zp_cache_put_batch(c, &held, 1);
        break;
    case WAKE_FLUSH:
        zp_cache_flush(c);
        break;
    default:
        zp_cache_destroy(c);
        c = NULL;
    }
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    zpt_watchdog_off();
    ms = (double)(w.returned_ns - woke) / 1e6;
    print_message("# %s, %s budget, timeout %d, waiter for %zu: returned %s "
                  "%.2f ms after\n", wake_name(how),
                  shared ? "shared" : "private", timeout_ms, wsize,
                  w.buf ? "a buffer" : "NULL", ms);
    if (w.buf == NULL)
        fail_msg("zp_get_timed(%zu, %d ms) failed with errno %d (%s) after "
                 "%s gave the budget's bytes back", wsize, timeout_ms, w.err,
                 strerror(w.err), wake_name(how));
    if (ms > WAKE_BOUND_MS)
        fail_msg("zp_get_timed(%zu, %d ms) returned %.0f ms after %s: it was "
                 "not woken by it", wsize, timeout_ms, ms, wake_name(how));
    assert_int_equal(zp_capacity(pool, w.buf), wsize);
    zpt_fill(w.buf, wsize, 5);
    assert_int_equal(zpt_check(w.buf, wsize, 5), SIZE_MAX);
    zp_put(pool, w.buf);
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
    run_wake(WAKE_FLUSH, 1, 3000, CLS);
}

static void test_destroy_wakes_waiter(void **state)
{
    (void)state;
    run_wake(WAKE_DESTROY, 1, 3000, CLS);
}

static void test_flush_wakes_waiter_forever(void **state)
{
    (void)state;
    run_wake(WAKE_FLUSH, 1, -1, CLS);
}

static void test_destroy_wakes_waiter_forever(void **state)
{
    (void)state;
    run_wake(WAKE_DESTROY, 1, -1, CLS);
}

static void test_flush_wakes_waiter_private_budget(void **state)
{
    (void)state;
    run_wake(WAKE_FLUSH, 0, 3000, CLS);
}

static void test_destroy_wakes_waiter_private_budget(void **state)
{
    (void)state;
    run_wake(WAKE_DESTROY, 0, -1, CLS);
}

/* a put through a handle is a put: it wakes the waiter as zp_put does */
static void test_put_wakes_waiter(void **state)
{
    (void)state;
    run_wake(WAKE_PUT, 1, 3000, CLS);
    run_wake(WAKE_PUT_BATCH, 0, 3000, CLS);
}

/* a waiter for another class needs the slab unmapped: a handle's put,
 * flush or destroy makes that room as any put does */
static void test_other_class_waiter(void **state)
{
    (void)state;
    run_wake(WAKE_PUT, 1, 3000, 64 * ZPT_KiB);
    run_wake(WAKE_PUT_BATCH, 1, 3000, 64 * ZPT_KiB);
    run_wake(WAKE_FLUSH, 0, 3000, 64 * ZPT_KiB);
    run_wake(WAKE_DESTROY, 0, 3000, 64 * ZPT_KiB);
}

/* Fills the 1 MiB budget with 64 KiB buffers idle in handle c. */
static void fill_handle(zp_pool *pool, zp_cache *c)
{
    void *bufs[16];
    zp_stats s;
    int i;
    for (i = 0; i < 16; i++) {
        bufs[i] = zp_cache_get(c, 64 * ZPT_KiB);
        assert_non_null(bufs[i]);
    }
    for (i = 0; i < 16; i++)
        zp_cache_put(c, bufs[i]);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_reserved, ZPT_MiB);
    assert_int_equal(s.bytes_outstanding, 0);
}

/* The budget is full of buffers idle in the handle; a get of another
 * class through the same handle (single, batch, oversize) gives the
 * handle's idle memory back first and succeeds, as a thread's own cache
 * is given back for its zp_get. */
static void run_reclaims_own_cache(size_t max_class)
{
    zp_pool *pool = ZPT_POOL(.max_class = max_class, .max_bytes = ZPT_MiB);
    zp_cache *c = NULL;
    void *big, *two[2];
    zp_stats s;
    int rc, i;
    assert_int_equal(zp_cache_create(pool, &c), 0);

    fill_handle(pool, c);
    errno = 0;
    big = zp_cache_get(c, 512 * ZPT_KiB); /* a class, or oversize */
    if (big == NULL)
        fail_msg("zp_cache_get(512 KiB, max_class %zu) with the whole budget "
                 "idle in the same handle failed (errno %d): the handle's "
                 "cache should be given back first", max_class, errno);
    assert_true(zp_capacity(pool, big) >= 512 * ZPT_KiB);
    zpt_fill(big, 512 * ZPT_KiB, 9);
    assert_int_equal(zpt_check(big, 512 * ZPT_KiB, 9), SIZE_MAX);
    zp_cache_put(c, big);

    fill_handle(pool, c);
    rc = zp_cache_get_batch(c, 400 * ZPT_KiB, two, 2);
    if (rc != 0)
        fail_msg("zp_cache_get_batch(2 x 400 KiB, max_class %zu) with the "
                 "whole budget idle in the same handle: %d (%s)", max_class,
                 rc, zp_strerror(rc));
    for (i = 0; i < 2; i++) {
        assert_true(zp_capacity(pool, two[i]) >= 400 * ZPT_KiB);
        zpt_fill(two[i], 400 * ZPT_KiB, (uint64_t)i);
    }
    for (i = 0; i < 2; i++)
        assert_int_equal(zpt_check(two[i], 400 * ZPT_KiB, (uint64_t)i),
                         SIZE_MAX);
    zp_cache_put_batch(c, two, 2);

    zp_cache_destroy(c);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_true(s.bytes_reserved <= ZPT_MiB);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(zpt_stats_sum_ok(&s) && zpt_stats_classes_ok(&s));
    zp_pool_destroy(pool);
}

static void test_handle_get_reclaims_own_cache(void **state)
{
    (void)state;
    run_reclaims_own_cache(ZPT_MiB); /* 512 and 400 KiB are classes */
}

static void test_handle_oversize_reclaims_own_cache(void **state)
{
    (void)state;
    run_reclaims_own_cache(256 * ZPT_KiB); /* both are oversize */
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
        cmocka_unit_test(test_put_wakes_waiter),
        cmocka_unit_test(test_other_class_waiter),
        cmocka_unit_test(test_handle_get_reclaims_own_cache),
        cmocka_unit_test(test_handle_oversize_reclaims_own_cache),
    };
    return ZPT_RUN(tests);
}
