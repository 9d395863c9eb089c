/* ZP_DECAY_THREAD: idle memory goes back with no call at all into the pool, and wakes budget waiters. */
#include "zp_test.h"

#define BURST 64 /* x 1 MiB */

/* A pool with a decay thread, whose thread caches keep one 1 MiB buffer. */
#define DECAYING_POOL(...)                                                      \
    ZPT_POOL(.flags = ZP_DECAY_THREAD, .cache_bytes = ZPT_MiB, __VA_ARGS__)

/* Busy with 64 x 1 MiB, then left alone: only stats are read. Within a
 * few periods the pool is back to its minimum (this thread's cache). */
static void test_idle_pool_shrinks(void **state)
{
    const unsigned decay_ms = 50;
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = DECAYING_POOL(.decay_ms = decay_ms, .pv = pv);
    static void *bufs[BURST];
    size_t before, peak, after;
    uint64_t t0, reserved = 0, peak_reserved;
    (void)state;
    zpt_rss_burst(pool, bufs, BURST, &before, &peak);
    peak_reserved = zpt_reserved(pool);
    assert_int_equal(peak_reserved, BURST * ZPT_MiB);

    /* done when the provider has unmapped all but this thread's cache (the
     * stats may show a slab gone a moment before its unmap returns) */
    t0 = zpt_now_ns();
    while (zpt_ms_since(t0) < 3000.0) {
        reserved = atomic_load(&pv->bytes_live);
        if (reserved <= ZPT_MiB)
            break;
        zpt_sleep_ms(5);
    }
    after = zpt_rss_bytes();
    print_message("decay_ms %u, background thread, no calls: %.0f -> %.0f MiB reserved "
                  "after %.0f ms (%.1f periods); RSS before %.1f, peak %.1f, "
                  "after decay %.1f MiB\n",
                  decay_ms, zpt_mib(peak_reserved), zpt_mib(reserved), zpt_ms_since(t0),
                  zpt_ms_since(t0) / decay_ms, zpt_mib(before), zpt_mib(peak),
                  zpt_mib(after));
    assert_true(reserved <= ZPT_MiB);
    assert_true(zpt_reserved(pool) <= ZPT_MiB);
    zpt_check_rss(before, peak, after, peak_reserved - reserved);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* A waiter on a full budget is woken when another pool's decay thread
 * gives its idle memory back (no put, no trim). */
static void test_decay_wakes_waiter(void **state)
{
    const unsigned decay_ms = 200;
    zp_budget *b;
    zp_budget_stats s;
    zp_pool *idle_pool, *other;
    zpt_waiter w;
    void *bufs[4], *got;
    uint64_t t0;
    int i;
    (void)state;
    b = zpt_budget_new(4 * ZPT_MiB);
    idle_pool = DECAYING_POOL(.decay_ms = decay_ms, .budget = b);
    other = ZPT_POOL(.budget = b);
    for (i = 0; i < 4; i++) {
        bufs[i] = zp_get(idle_pool, ZPT_MiB);
        assert_non_null(bufs[i]);
    }
    for (i = 0; i < 4; i++)
        zp_put(idle_pool, bufs[i]); /* 1 in this thread's cache, 3 in the depot */
    t0 = zpt_now_ns();
    zpt_waiter_start(&w, other, 2 * ZPT_MiB, 10000);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    got = w.buf;
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    print_message("waiter for 2 MiB %s after %.0f ms (decay_ms %u, waited_gets %llu)\n",
                  got ? "served" : "not served", zpt_ms_since(t0), decay_ms,
                  (unsigned long long)s.waited_gets);
    if (got == NULL)
        fail_msg("the waiter was not woken by decay within 10 s");
    if (s.waited_gets != 1)
        print_message("(decay ran before the waiter queued: the wake-up was not "
                      "exercised this time)\n");
    zp_put(other, got);
    zp_pool_destroy(other);
    zp_pool_destroy(idle_pool);
    zp_budget_destroy(b);
}

/* Pools with a decay thread are created and destroyed promptly. */
static void test_create_destroy(void **state)
{
    uint64_t t0 = zpt_now_ns();
    int i;
    (void)state;
    for (i = 0; i < 20; i++) {
        zp_pool *pool = DECAYING_POOL(.decay_ms = 1000);
        void *x = zp_get(pool, 4096);
        assert_non_null(x);
        zp_put(pool, x);
        zp_pool_destroy(pool);
    }
    print_message("20 pools with a decay thread (decay_ms 1000) created and destroyed "
                  "in %.1f ms\n", zpt_ms_since(t0));
    assert_true(zpt_ms_since(t0) < 10000.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_pool_shrinks),
        cmocka_unit_test(test_decay_wakes_waiter),
        cmocka_unit_test(test_create_destroy),
    };
    return ZPT_RUN(tests);
}
