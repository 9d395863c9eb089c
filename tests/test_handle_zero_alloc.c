/* Tests that a million get/put pairs on a warm cache handle make no malloc, no provider map and no mmap-family system call. */
#include "zp_test.h"

/*
 * Counting: the harness's allocator wrappers (zp_test.h) count the malloc
 * family, free and the mmap family (mmap, munmap, mremap, madvise,
 * mprotect) as called by the library, in every build, sanitizers and
 * valgrind included. Only calls made between zpt_alloc_count_start and
 * _stop count, so cmocka and the warm-up allocate freely.
 */

#if defined(ZPT_SANITIZED)
#define PAIRS 200000ul
#else
#define PAIRS 1000000ul
#endif

enum { MODE_SINGLE, MODE_BATCH };

/* `pairs` get/put pairs through handle c: `hold` buffers of `size` at a
 * time, one by one or as one batch. Returns the failed gets. */
static unsigned long traffic(zp_cache *c, size_t size, unsigned hold,
                             unsigned long pairs, int mode)
{
    void *held[64];
    unsigned long done, failed = 0;
    unsigned i;
    for (done = 0; done < pairs; done += hold) {
        if (mode == MODE_BATCH) {
            failed += zp_cache_get_batch(c, size, held, hold) != 0 ? hold : 0;
            zp_cache_put_batch(c, held, hold);
            continue;
        }
        for (i = 0; i < hold; i++) {
            held[i] = zp_cache_get(c, size);
            failed += held[i] == NULL;
        }
        for (i = 0; i < hold; i++)
            zp_cache_put(c, held[i]);
    }
    return failed;
}

static void run(size_t size, unsigned hold, int debug, int mode)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.debug = debug, .pv = pv);
    zp_cache *c = NULL;
    zp_stats s0, s1;
    zpt_alloc_counts counts;
    unsigned long pairs = zpt_scaled(PAIRS), failed, mallocs, frees, sys;
    size_t maps0, unmaps0;
    assert_true(hold <= 64);
    /* debug 2 from the environment scans whole buffers: bound the bytes */
    if (zpt_env_debug() >= 2 && pairs * size > ((size_t)512 << 20))
        pairs = ((size_t)512 << 20) / size;
    if (pairs < 8ul * hold)
        pairs = 8ul * hold;
    assert_int_equal(zp_cache_create(pool, &c), 0);

    /* the counters work: a malloc while counting is seen */
    zpt_alloc_count_start();
    {
        void *volatile probe = malloc(24);
        free(probe);
    }
    counts = zpt_alloc_count_stop();
    assert_true(counts.allocs >= 1);
    assert_true(counts.frees >= 1);

    /* warm-up: the same traffic, a few times the handle's depth */
    assert_int_equal(traffic(c, size, hold, 8ul * hold + 128, mode), 0);
    assert_int_equal(zpt_stats(pool, &s0), 0);
    maps0 = atomic_load(&pv->map_calls);
    unmaps0 = atomic_load(&pv->unmaps);

    zpt_alloc_count_start();
    failed = traffic(c, size, hold, pairs, mode);
    counts = zpt_alloc_count_stop();

    mallocs = counts.allocs;
    frees = counts.frees;
    sys = counts.syscalls;
    assert_int_equal(zpt_stats(pool, &s1), 0);
    print_message("# %zu B x %u %s debug %d: %lu pairs: %lu mallocs, %lu "
                  "frees, %lu mmap-family calls, %zu maps, %zu unmaps\n",
                  size, hold, mode == MODE_BATCH ? "batch" : "single", debug,
                  pairs, mallocs, frees, sys,
                  atomic_load(&pv->map_calls) - maps0,
                  atomic_load(&pv->unmaps) - unmaps0);
    assert_int_equal(failed, 0);
    assert_int_equal(mallocs, 0);
    assert_int_equal(frees, 0);
    assert_int_equal(atomic_load(&pv->map_calls) - maps0, 0);
    assert_int_equal(atomic_load(&pv->unmaps) - unmaps0, 0);
    assert_int_equal(sys, 0);
    /* the pairs went through the pool's accounting, and add up */
    assert_true(s1.gets - s0.gets >= pairs);
    assert_int_equal(s1.gets - s0.gets, s1.puts - s0.puts);
    assert_int_equal(s1.allocations, s0.allocations);
    assert_true(zpt_stats_sum_ok(&s1) && zpt_stats_classes_ok(&s1));
    assert_int_equal(s1.bytes_outstanding, 0);

    zp_cache_destroy(c);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    zpt_provider_free(pv);
}

static void test_one_4k(void **state)
{
    (void)state;
    run(4096, 1, 0, MODE_SINGLE);
}

static void test_one_4m(void **state)
{
    (void)state;
    run(4 * ZPT_MiB, 1, 0, MODE_SINGLE);
}

static void test_held_16(void **state)
{
    (void)state;
    run(64 * ZPT_KiB, 16, 0, MODE_SINGLE);
}

/* more in flight than the handle holds (depth 32): it overflows into the
 * depot and refills from it, still without allocating */
static void test_held_48_through_depot(void **state)
{
    (void)state;
    run(16 * ZPT_KiB, 48, 0, MODE_SINGLE);
}

static void test_batches_of_32(void **state)
{
    (void)state;
    run(8 * ZPT_KiB, 32, 0, MODE_BATCH);
}

static void test_batches_beyond_depth(void **state)
{
    (void)state;
    run(8 * ZPT_KiB, 64, 0, MODE_BATCH);
}

static void test_debug1_path(void **state)
{
    (void)state;
    run(4096, 48, 1, MODE_SINGLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_4k),
        cmocka_unit_test(test_one_4m),
        cmocka_unit_test(test_held_16),
        cmocka_unit_test(test_held_48_through_depot),
        cmocka_unit_test(test_batches_of_32),
        cmocka_unit_test(test_batches_beyond_depth),
        cmocka_unit_test(test_debug1_path),
    };
    return ZPT_RUN(tests);
}
