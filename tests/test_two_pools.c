/* Tests that one thread using several pools keeps a warm cache for each. */
#include "zp_test.h"

#define ROUNDS ((int)zpt_scaled(20000))
#define NPOOLS 3

static void make_pools(zp_pool **pools, int n)
{
    int i;
    for (i = 0; i < n; i++)
        pools[i] = ZPT_POOL();
}

static void destroy_pools(zp_pool **pools, int n)
{
    int i;
    for (i = 0; i < n; i++)
        zp_pool_destroy(pools[i]);
}

/* After warm-up, gets that alternate between pools all hit the cache:
 * switching pools flushes nothing. `hold` buffers per pool are in flight at
 * once (all within one cache). */
static void run_alternate(size_t size, int hold)
{
    zp_pool *pools[NPOOLS];
    zp_stats before[NPOOLS], after[NPOOLS];
    void *held[NPOOLS][8];
    int r, p, h;
    uint64_t fails = 0;
    make_pools(pools, NPOOLS);

    /* warm-up: fill each pool's cache for this thread */
    for (r = 0; r < 2; r++) {
        for (p = 0; p < NPOOLS; p++)
            for (h = 0; h < hold; h++)
                held[p][h] = zp_get(pools[p], size);
        for (p = 0; p < NPOOLS; p++)
            for (h = 0; h < hold; h++)
                zp_put(pools[p], held[p][h]);
    }
    for (p = 0; p < NPOOLS; p++)
        assert_int_equal(zpt_stats(pools[p], &before[p]), 0);

    for (r = 0; r < ROUNDS; r++) {
        for (p = 0; p < NPOOLS; p++)
            for (h = 0; h < hold; h++) {
                held[p][h] = zp_get(pools[p], size);
                fails += held[p][h] == NULL;
            }
        for (p = 0; p < NPOOLS; p++)
            for (h = 0; h < hold; h++)
                zp_put(pools[p], held[p][h]);
    }
    assert_int_equal(fails, 0);

    for (p = 0; p < NPOOLS; p++) {
        uint64_t n = (uint64_t)ROUNDS * (uint64_t)hold;
        assert_int_equal(zpt_stats(pools[p], &after[p]), 0);
        assert_int_equal(after[p].gets - before[p].gets, n);
        assert_int_equal(after[p].puts - before[p].puts, n);
        if (after[p].cache_hits - before[p].cache_hits != n) {
            zpt_stats_print("before", &before[p]);
            zpt_stats_print("after", &after[p]);
            fail_msg("pool %d: %llu cache hits for %llu gets", p,
                     (unsigned long long)(after[p].cache_hits -
                                          before[p].cache_hits),
                     (unsigned long long)n);
        }
        assert_int_equal(after[p].depot_hits, before[p].depot_hits);
        assert_int_equal(after[p].allocations, before[p].allocations);
        assert_int_equal(after[p].bytes_reserved, before[p].bytes_reserved);
        assert_int_equal(after[p].bytes_outstanding, 0);
    }
    destroy_pools(pools, NPOOLS);
}

static void test_alternate_one(void **state)
{
    (void)state;
    run_alternate(4096, 1);
}

static void test_alternate_several(void **state)
{
    (void)state;
    run_alternate(4096, 8);
}

static void test_alternate_large(void **state)
{
    (void)state;
    run_alternate(ZPT_MiB, 4);
}

/* Interleaved get/put A, get/put B, one at a time, with the buffers of each
 * pool belonging to that pool. */
static void test_interleaved_ownership(void **state)
{
    zp_pool *pools[2];
    zp_stats s0[2], s1[2];
    int r, p;
    uint64_t wrong = 0;
    (void)state;
    make_pools(pools, 2);
    for (p = 0; p < 2; p++) {
        zp_put(pools[p], zp_get(pools[p], 4096));
        assert_int_equal(zpt_stats(pools[p], &s0[p]), 0);
    }
    for (r = 0; r < ROUNDS; r++) {
        for (p = 0; p < 2; p++) {
            void *b = zp_get(pools[p], 4096);
            wrong += zp_capacity(pools[p], b) != 4096;
            wrong += zp_capacity(pools[1 - p], b) != 0;
            zp_put(pools[p], b);
        }
    }
    assert_int_equal(wrong, 0);
    for (p = 0; p < 2; p++) {
        assert_int_equal(zpt_stats(pools[p], &s1[p]), 0);
        assert_int_equal(s1[p].cache_hits - s0[p].cache_hits, ROUNDS);
        assert_int_equal(s1[p].misuse, 0);
    }
    destroy_pools(pools, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alternate_one),
        cmocka_unit_test(test_alternate_several),
        cmocka_unit_test(test_alternate_large),
        cmocka_unit_test(test_interleaved_ownership),
    };
    return ZPT_RUN(tests);
}
