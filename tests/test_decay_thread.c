/* ZP_DECAY_THREAD: idle memory goes back with no call at all into the pool, and wakes budget waiters. */
#include "budget_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "rss_check.h"

#define BURST 64 /* x 1 MiB */

static zp_pool *decaying_pool(unsigned decay_ms, zp_budget *b, zpt_provider *pv)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    zp_config_init(&cfg);
    cfg.decay_ms = decay_ms;
    cfg.flags = ZP_DECAY_THREAD;
    cfg.cache_bytes = ZPT_MiB; /* this thread's cache keeps one 1 MiB buffer */
    cfg.budget = b;
    if (pv)
        zpt_provider_attach(&cfg, pv);
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    return pool;
}

/* Busy with 64 x 1 MiB, then left alone: only stats are read. Within a
 * few periods the pool is back to its minimum (this thread's cache). */
static void test_idle_pool_shrinks(void **state)
{
    const unsigned decay_ms = 50;
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = decaying_pool(decay_ms, NULL, pv);
    static void *bufs[BURST];
    size_t before, peak, after;
    uint64_t t0, reserved = 0, peak_reserved;
    (void)state;
    rss_burst(pool, bufs, BURST, &before, &peak);
    peak_reserved = zbt_reserved(pool);
    assert_int_equal(peak_reserved, BURST * ZPT_MiB);

    /* done when the provider has unmapped all but this thread's cache (the
     * stats may show a slab gone a moment before its unmap returns) */
    t0 = zbt_now_ns();
    while (zbt_ms_since(t0) < 3000.0) {
        reserved = atomic_load(&pv->bytes_live);
        if (reserved <= ZPT_MiB)
            break;
        zbt_sleep_ms(5);
    }
    after = zbt_rss_bytes();
    print_message("decay_ms %u, background thread, no calls: %.0f -> %.0f MiB reserved "
                  "after %.0f ms (%.1f periods); RSS before %.1f, peak %.1f, "
                  "after decay %.1f MiB\n",
                  decay_ms, zbt_mib(peak_reserved), zbt_mib(reserved), zbt_ms_since(t0),
                  zbt_ms_since(t0) / decay_ms, zbt_mib(before), zbt_mib(peak),
                  zbt_mib(after));
    assert_true(reserved <= ZPT_MiB);
    assert_true(zbt_reserved(pool) <= ZPT_MiB);
    check_rss(before, peak, after, peak_reserved - reserved);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

static void *timed_get(void *arg)
{
    zp_pool *pool = (zp_pool *)arg;
    return zp_get_timed(pool, 2 * ZPT_MiB, 10000);
}

/* A waiter on a full budget is woken when another pool's decay thread
 * gives its idle memory back (no put, no trim). */
static void test_decay_wakes_waiter(void **state)
{
    const unsigned decay_ms = 200;
    zp_budget *b = NULL;
    zp_budget_stats s;
    zp_pool *idle_pool, *other;
    zp_config cfg;
    void *bufs[4], *got;
    pthread_t t;
    uint64_t t0;
    int i;
    (void)state;
    assert_int_equal(zp_budget_create(4 * ZPT_MiB, &b), 0);
    idle_pool = decaying_pool(decay_ms, b, NULL);
    zp_config_init(&cfg);
    cfg.budget = b;
    assert_int_equal(zp_pool_create(&cfg, &other), 0);
    for (i = 0; i < 4; i++) {
        bufs[i] = zp_get(idle_pool, ZPT_MiB);
        assert_non_null(bufs[i]);
    }
    for (i = 0; i < 4; i++)
        zp_put(idle_pool, bufs[i]); /* 1 in this thread's cache, 3 in the depot */
    t0 = zbt_now_ns();
    assert_int_equal(pthread_create(&t, NULL, timed_get, other), 0);
    assert_int_equal(pthread_join(t, &got), 0);
    assert_int_equal(zbt_budget(b, &s), 0);
    print_message("waiter for 2 MiB %s after %.0f ms (decay_ms %u, waited_gets %llu)\n",
                  got ? "served" : "not served", zbt_ms_since(t0), decay_ms,
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
    uint64_t t0 = zbt_now_ns();
    int i;
    (void)state;
    for (i = 0; i < 20; i++) {
        zp_pool *pool = decaying_pool(1000, NULL, NULL);
        void *x = zp_get(pool, 4096);
        assert_non_null(x);
        zp_put(pool, x);
        zp_pool_destroy(pool);
    }
    print_message("20 pools with a decay thread (decay_ms 1000) created and destroyed "
                  "in %.1f ms\n", zbt_ms_since(t0));
    assert_true(zbt_ms_since(t0) < 10000.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_pool_shrinks),
        cmocka_unit_test(test_decay_wakes_waiter),
        cmocka_unit_test(test_create_destroy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
