/* zp_get_timed waiters are served in arrival order; a big waiter is not starved or overtaken by small gets. */
#include "zp_test.h"

/* Classes >= 256 KiB: each buffer is its own slab, so a put while someone
 * waits unmaps it and gives its bytes back to the budget at once. */
#define LONG_WAIT_MS 10000
#define NWAIT 5

static atomic_int g_done;     /* waiters finished so far */
static int g_order[NWAIT];    /* waiter ids in the order they finished:
                                 entry i is written before g_done passes i */
static pthread_mutex_t g_order_lock = PTHREAD_MUTEX_INITIALIZER;

/* on_return of the waiters that count: records the arrival order. */
static void record_order(zpt_waiter *w)
{
    pthread_mutex_lock(&g_order_lock);
    g_order[atomic_load(&g_done)] = w->id;
    atomic_fetch_add(&g_done, 1);
    pthread_mutex_unlock(&g_order_lock);
}

/* Starts waiter id and waits until it is queued behind the others. */
static void enqueue(zp_budget *b, zpt_waiter *w, int id, zp_pool *pool, size_t size)
{
    zpt_waiter_start_then(w, pool, size, LONG_WAIT_MS, record_order, id);
    if (!zpt_wait_waiters(b, (uint64_t)id + 1, 5000))
        fail_msg("waiter %d did not queue within 5 s", id);
}

static void reset_order(void)
{
    int i;
    atomic_store(&g_done, 0);
    for (i = 0; i < NWAIT; i++)
        g_order[i] = -1;
}

/* Five waiters, alternating between two pools of one budget; each put of
 * 1 MiB serves exactly the next one in arrival order. */
static void test_arrival_order(void **state)
{
    zp_budget *b = zpt_budget_new(NWAIT * ZPT_MiB);
    zp_pool *pa = ZPT_POOL(.budget = b), *pb = ZPT_POOL(.budget = b);
    void *held[NWAIT];
    zpt_waiter w[NWAIT];
    zp_budget_stats s;
    int i;
    (void)state;
    reset_order();
    zpt_get_mib(pa, held, NWAIT);
    for (i = 0; i < NWAIT; i++)
        enqueue(b, &w[i], i, i % 2 ? pb : pa, ZPT_MiB);
    assert_int_equal(atomic_load(&g_done), 0);

    for (i = 0; i < NWAIT; i++) {
        uint64_t t_put = zpt_now_ns();
        zp_put(pa, held[i]);
        if (!zpt_wait_count(&g_done, i + 1, LONG_WAIT_MS))
            fail_msg("no waiter served after put %d", i);
        print_message("put %d served waiter %d after %.3f ms\n", i, g_order[i],
                      (double)(w[g_order[i]].returned_ns - t_put) / 1e6);
        assert_int_equal(g_order[i], i);
    }
    for (i = 0; i < NWAIT; i++) {
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
        assert_non_null(w[i].buf);
    }
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.waiters, 0);
    assert_int_equal(s.waited_gets, NWAIT);
    assert_true(s.peak_reserved <= NWAIT * ZPT_MiB);
    for (i = 0; i < NWAIT; i++)
        zp_put(w[i].pool, w[i].buf);
    zp_pool_destroy(pa);
    zp_pool_destroy(pb);
    zp_budget_destroy(b);
}

/* The first waiter wants 2 MiB, the second 1 MiB. When 1 MiB comes free
 * the second must not overtake, and neither may a plain zp_get; when the
 * second MiB comes free the first is served, then the second. */
static void test_big_head_not_overtaken(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    zp_pool *other = ZPT_POOL(.budget = b);
    void *held[4];
    zpt_waiter big, small;
    zp_budget_stats s;
    (void)state;
    reset_order();
    zpt_get_mib(pool, held, 4);
    enqueue(b, &big, 0, pool, 2 * ZPT_MiB);
    enqueue(b, &small, 1, other, ZPT_MiB);

    zp_put(pool, held[0]); /* 1 MiB free: not enough for the head */
    zpt_sleep_ms(100);
    assert_int_equal(atomic_load(&g_done), 0);
    errno = 0;
    assert_null(zp_get(other, 256 * ZPT_KiB)); /* would need new bytes */
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 3 * ZPT_MiB);
    assert_int_equal(s.waiters, 2);

    zp_put(pool, held[1]); /* 2 MiB free: the head */
    assert_true(zpt_wait_count(&g_done, 1, LONG_WAIT_MS));
    assert_int_equal(g_order[0], 0);
    zpt_sleep_ms(50);
    assert_int_equal(atomic_load(&g_done), 1); /* budget full again */

    zp_put(pool, held[2]);
    assert_true(zpt_wait_count(&g_done, 2, LONG_WAIT_MS));
    assert_int_equal(g_order[1], 1);
    assert_int_equal(pthread_join(big.thread, NULL), 0);
    assert_int_equal(pthread_join(small.thread, NULL), 0);
    assert_non_null(big.buf);
    assert_non_null(small.buf);
    assert_int_equal(zp_capacity(pool, big.buf), 2 * ZPT_MiB);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_true(s.peak_reserved <= 4 * ZPT_MiB);
    zp_put(pool, big.buf);
    zp_put(other, small.buf);
    zp_put(pool, held[3]);
    zp_pool_destroy(pool);
    zp_pool_destroy(other);
    zp_budget_destroy(b);
}

/* While someone waits, a get that needs no new budget bytes (a buffer in
 * the caller's cache) is still served; one that would need new bytes fails
 * with ENOBUFS even though they are free; the put of the cached buffer
 * then makes room for the waiter. */
static void test_cached_gets_still_served(void **state)
{
    zp_budget *b = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    void *held, *c, *x;
    zpt_waiter w;
    zp_budget_stats s;
    (void)state;
    reset_order();
    held = zp_get(pool, ZPT_MiB);
    c = zp_get(pool, 256 * ZPT_KiB);
    assert_non_null(held);
    assert_non_null(c);
    zp_put(pool, c); /* cached by this thread; 1.25 MiB reserved */
    enqueue(b, &w, 0, pool, ZPT_MiB); /* needs 1 MiB, 0.75 MiB free */

    x = zp_get(pool, 256 * ZPT_KiB);
    assert_ptr_equal(x, c); /* from the cache, no new bytes */
    errno = 0;
    assert_null(zp_get(pool, 512 * ZPT_KiB)); /* would need new bytes */
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, ZPT_MiB + 256 * ZPT_KiB);
    assert_int_equal(atomic_load(&g_done), 0);

    zp_put(pool, x); /* its slab is unmapped: room for the waiter */
    assert_true(zpt_wait_count(&g_done, 1, LONG_WAIT_MS));
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    assert_non_null(w.buf);
    zp_put(pool, w.buf);
    zp_put(pool, held);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* The head wants 2 MiB and gives up (timeout) while 1 MiB is free: the
 * next waiter, who fits, is served at once, without another put. */

static void test_head_timeout_passes_turn(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    void *held[4];
    zpt_waiter big, small;
    int i;
    (void)state;
    reset_order();
    zpt_get_mib(pool, held, 4);
    zpt_waiter_start(&big, pool, 2 * ZPT_MiB, 300); /* not in g_order: it gives up */
    assert_true(zpt_wait_waiters(b, 1, 5000));
    enqueue(b, &small, 1, pool, ZPT_MiB);
    zp_put(pool, held[0]); /* 1 MiB free: not enough for the head */

    assert_int_equal(pthread_join(big.thread, NULL), 0);
    assert_null(big.buf);
    assert_int_equal(big.err, ETIMEDOUT);
    if (!zpt_wait_count(&g_done, 1, LONG_WAIT_MS))
        fail_msg("the 1 MiB waiter was not served after the 2 MiB head timed out "
                 "with 1 MiB free");
    assert_int_equal(pthread_join(small.thread, NULL), 0);
    print_message("head timed out; the next waiter was served %.3f ms from its return\n",
                  ((double)small.returned_ns - (double)big.returned_ns) / 1e6);
    assert_non_null(small.buf);
    zp_put(pool, small.buf);
    for (i = 1; i < 4; i++)
        zp_put(pool, held[i]);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* ------------------------------------------- big waiter vs small stream */

#define SMALL_THREADS 2
#define SMALL_HOLD 4 /* x 256 KiB: the two threads fill what main leaves */

static zp_pool *g_pool;
static atomic_int g_stop;
static atomic_long g_small_ok, g_small_enobufs, g_small_bad;

static void *small_stream(void *arg)
{
    void *bufs[SMALL_HOLD];
    (void)arg;
    while (!atomic_load(&g_stop)) {
        int n = 0, i;
        for (i = 0; i < SMALL_HOLD; i++) {
            bufs[n] = zp_get(g_pool, 256 * ZPT_KiB);
            if (bufs[n] != NULL) {
                memset(bufs[n], i, 64);
                n++;
                atomic_fetch_add(&g_small_ok, 1);
            } else if (errno == ENOBUFS) {
                atomic_fetch_add(&g_small_enobufs, 1);
            } else {
                atomic_fetch_add(&g_small_bad, 1);
            }
        }
        for (i = 0; i < n; i++)
            zp_put(g_pool, bufs[i]);
        if (n < SMALL_HOLD)
            sched_yield();
    }
    return NULL;
}

/* The budget is full: main holds 2 MiB, two threads cycle 256 KiB buffers
 * through the other 2 MiB (kept in their caches between cycles). A waiter
 * for 2 MiB must be served from what the stream gives back, even though
 * the stream keeps asking. */
static void test_big_not_starved(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    pthread_t small[SMALL_THREADS];
    void *held[2];
    zpt_waiter big;
    zp_budget_stats s;
    uint64_t t0;
    long ok_before;
    int i;
    (void)state;
    reset_order();
    g_pool = ZPT_POOL(.budget = b);
    zpt_get_mib(g_pool, held, 2);
    atomic_store(&g_stop, 0);
    for (i = 0; i < SMALL_THREADS; i++)
        assert_int_equal(pthread_create(&small[i], NULL, small_stream, NULL), 0);
    /* let the stream take the rest of the budget */
    t0 = zpt_now_ns();
    do {
        zpt_sleep_ms(1);
        assert_int_equal(zpt_budget_stats(b, &s), 0);
    } while ((s.bytes_reserved < 4 * ZPT_MiB || atomic_load(&g_small_ok) < 100) &&
             zpt_ms_since(t0) < 5000);
    print_message("small stream: %ld gets so far, budget %.2f of 4 MiB reserved\n",
                  atomic_load(&g_small_ok), zpt_mib(s.bytes_reserved));
    assert_int_equal(s.bytes_reserved, 4 * ZPT_MiB);

    ok_before = atomic_load(&g_small_ok);
    t0 = zpt_now_ns();
    zpt_waiter_start_then(&big, g_pool, 2 * ZPT_MiB, LONG_WAIT_MS, record_order, 0);
    assert_true(zpt_wait_count(&g_done, 1, LONG_WAIT_MS + 5000));
    assert_int_equal(pthread_join(big.thread, NULL), 0);
    atomic_store(&g_stop, 1);
    for (i = 0; i < SMALL_THREADS; i++)
        assert_int_equal(pthread_join(small[i], NULL), 0);

    print_message("2 MiB waiter: %s after %.3f ms; meanwhile %ld small gets, "
                  "%ld small ENOBUFS\n",
                  big.buf ? "served" : strerror(big.err),
                  (double)(big.returned_ns - t0) / 1e6,
                  atomic_load(&g_small_ok) - ok_before, atomic_load(&g_small_enobufs));
    assert_non_null(big.buf);
    assert_int_equal(atomic_load(&g_small_bad), 0);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.waited_gets, 1); /* it really had to wait */
    assert_true(s.peak_reserved <= 4 * ZPT_MiB);
    assert_int_equal(s.waiters, 0);
    zp_put(g_pool, big.buf);
    zp_put(g_pool, held[0]);
    zp_put(g_pool, held[1]);
    zp_pool_destroy(g_pool);
    zp_budget_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arrival_order),
        cmocka_unit_test(test_big_head_not_overtaken),
        cmocka_unit_test(test_cached_gets_still_served),
        cmocka_unit_test(test_head_timeout_passes_turn),
        cmocka_unit_test(test_big_not_starved),
    };
    return ZPT_RUN(tests);
}
