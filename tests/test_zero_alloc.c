/* Tests that warm get/put calls make no malloc and no provider or mmap call. */
#include "zp_test.h"

/*
 * Counting: the harness's allocator wrappers (zp_test.h) count the malloc
 * family, free and the mmap family (mmap, munmap, mremap, madvise,
 * mprotect) as called by the library, in every build, sanitizers and
 * valgrind included. Only calls made between zpt_alloc_count_start and
 * _stop count, so cmocka and the warm-up may allocate freely.
 */

#if defined(ZPT_SANITIZED)
#define PAIRS 200000ul
#else
#define PAIRS 1000000ul
#endif

typedef struct counts {
    unsigned long mallocs, frees, syscalls, maps, unmaps, failures;
} counts;

/* One pattern of get/put traffic: `hold` buffers of `size` at a time,
 * `pairs` get/put pairs in all. */
static unsigned long traffic(zp_pool *pool, size_t size, unsigned hold,
                             unsigned long pairs)
{
    void *held[64];
    unsigned long done = 0, failures = 0;
    unsigned i;
    while (done < pairs) {
        for (i = 0; i < hold; i++) {
            held[i] = zp_get(pool, size);
            failures += held[i] == NULL;
        }
        for (i = 0; i < hold; i++)
            zp_put(pool, held[i]);
        done += hold;
    }
    return failures;
}

static counts measure(zp_pool *pool, zpt_provider *pv, size_t size,
                      unsigned hold, unsigned long pairs)
{
    counts c;
    zpt_alloc_counts a;
    size_t maps0, unmaps0;
    /* warm-up: the same traffic, twice over a cache's worth */
    traffic(pool, size, hold, 4ul * hold + 64);
    maps0 = atomic_load(&pv->map_calls);
    unmaps0 = atomic_load(&pv->unmaps);

    zpt_alloc_count_start();
    c.failures = traffic(pool, size, hold, pairs);
    a = zpt_alloc_count_stop();

    c.mallocs = a.allocs;
    c.frees = a.frees;
    c.syscalls = a.syscalls;
    c.maps = atomic_load(&pv->map_calls) - maps0;
    c.unmaps = atomic_load(&pv->unmaps) - unmaps0;
    return c;
}

static void run(size_t size, unsigned hold, int debug)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.debug = debug, .pv = pv);
    zp_stats s0, s1;
    zpt_alloc_counts probe;
    counts c;
    unsigned long pairs = zpt_scaled(PAIRS);
    /* debug 2 (through ZEROPOOL_DEBUG) scans every buffer: bound the bytes */
    if (zpt_env_debug() >= 2 && pairs > (512ul << 20) / size)
        pairs = (512ul << 20) / size > 4ul * hold ? (512ul << 20) / size
                                                  : 4ul * hold;

    /* make sure the counting itself works before trusting a zero */
    zpt_alloc_count_start();
    {
        void *volatile p = malloc(16);
        free(p);
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert_true(p != MAP_FAILED);
        munmap(p, 4096);
    }
    probe = zpt_alloc_count_stop();
    assert_true(probe.allocs >= 1);
    assert_true(probe.frees >= 1);
    assert_true(probe.syscalls >= 2);

    assert_int_equal(zpt_stats(pool, &s0), 0);
    c = measure(pool, pv, size, hold, pairs);
    assert_int_equal(zpt_stats(pool, &s1), 0);
    print_message("# size %zu hold %u debug %d: %lu pairs, %lu mallocs, %lu "
                  "frees, %lu mmap-family calls, %lu maps, %lu unmaps\n",
                  size, hold, debug, pairs, c.mallocs, c.frees, c.syscalls,
                  c.maps, c.unmaps);
    assert_int_equal(c.failures, 0);
    assert_int_equal(c.mallocs, 0);
    assert_int_equal(c.frees, 0);
    assert_int_equal(c.maps, 0);
    assert_int_equal(c.unmaps, 0);
    assert_int_equal(c.syscalls, 0);
    assert_true(s1.gets - s0.gets >= pairs);
    assert_int_equal(s1.bytes_outstanding, 0);

    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    zpt_provider_free(pv);
}

/* within one thread cache */
static void test_small_class(void **state)
{
    (void)state;
    run(4096, 1, 0);
}

static void test_large_class(void **state)
{
    (void)state;
    run(4 * ZPT_MiB, 1, 0);
}

static void test_small_class_held(void **state)
{
    (void)state;
    run(4096, 16, 0);
}

/* more buffers in flight than a thread cache holds: the cache overflows
 * into the depot and refills from it, still without allocating */
static void test_small_class_through_depot(void **state)
{
    (void)state;
    run(4096, 48, 0);
}

static void test_large_class_through_depot(void **state)
{
    (void)state;
    run(4 * ZPT_MiB, 24, 0); /* 4 MiB cache holds 16 */
}

/* the checked path of debug level 1 allocates nothing either */
static void test_debug_path(void **state)
{
    (void)state;
    run(4096, 48, 1);
}

/* A buffer put on another thread: that thread's cache and the depot warm up
 * once, then the exchange runs without allocating. */
static void test_cross_thread_warm(void **state)
{
    zpt_xfer x;
    zpt_provider *pv = zpt_provider_new();
    zpt_alloc_counts a;
    unsigned long r, rounds = zpt_scaled(4000), warm = 200, failures = 0;
    size_t maps0 = 0;
    zp_pool *pool;
    int i;
    (void)state;
    pool = ZPT_POOL(.pv = pv);
    /* carve more buffers than can ever be in flight (main's 32 + the slot's
       32 + two thread caches, whose bins may each grow to cache_depth (256)
       when the two threads meet at the depot: core/cache.c), so the steady
       state never needs fresh buffers, whatever the threads' relative
       timing */
    {
        static void *pre[1024];
        for (i = 0; i < 1024; i++)
            pre[i] = zp_get(pool, 8192);
        for (i = 0; i < 1024; i++)
            zp_put(pool, pre[i]);
    }
    zpt_xfer_start(&x, pool);
    for (r = 0; r < warm + rounds; r++) {
        void *batch[ZPT_XFER_BATCH];
        if (r == warm) {
            /* wait until the putter has finished the warm-up batches */
            zpt_xfer_wait_taken(&x);
            maps0 = atomic_load(&pv->map_calls);
            zpt_alloc_count_start();
        }
        for (i = 0; i < 32; i++) {
            batch[i] = zp_get(pool, 8192);
            failures += batch[i] == NULL;
        }
        zpt_xfer_hand(&x, batch);
    }
    zpt_xfer_wait_taken(&x);
    a = zpt_alloc_count_stop();
    zpt_xfer_stop(&x);

    print_message("# cross-thread: %lu mallocs, %lu frees, %lu mmap-family calls, "
                  "%lu maps\n", a.allocs, a.frees, a.syscalls,
                  (unsigned long)(atomic_load(&pv->map_calls) - maps0));
    assert_int_equal(failures, 0);
    assert_int_equal(a.allocs, 0);
    assert_int_equal(a.frees, 0);
    assert_int_equal(atomic_load(&pv->map_calls) - maps0, 0);
    assert_int_equal(a.syscalls, 0);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    zpt_provider_free(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_class),
        cmocka_unit_test(test_large_class),
        cmocka_unit_test(test_small_class_held),
        cmocka_unit_test(test_small_class_through_depot),
        cmocka_unit_test(test_large_class_through_depot),
        cmocka_unit_test(test_debug_path),
        cmocka_unit_test(test_cross_thread_warm),
    };
    return ZPT_RUN(tests);
}
