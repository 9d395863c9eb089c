/* Warm object get/put (single, batch, handle, across threads) makes no malloc, no provider call, no mmap-family call, and runs no init. */
#include "zp_test.h"

/*
 * Counting as test_zero_alloc does: the harness's allocator wrappers see
 * the library's malloc family and mmap-family calls; the provider counts
 * its maps. The type has init, reset and fini (the counting type, plus
 * hooks that touch the object): in steady state reset runs once per put
 * and init never.
 */

#if defined(ZPT_SANITIZED)
#define PAIRS 200000ul
#else
#define PAIRS 1000000ul
#endif

enum { DOOR_SINGLE, DOOR_BATCH, DOOR_HANDLE };

typedef struct counts {
    zpt_alloc_counts a;
    size_t maps, unmaps;
    unsigned long inits, resets, finis, failures;
} counts;

static void hook_reset(void *obj, zpt_objtype *ot)
{
    ((unsigned char *)obj)[ot->type.size - 1]++;
}

/* `pairs` get/put pairs, `hold` objects at a time, through one door. */
static unsigned long traffic(zp_pool *pool, zp_cache *h, size_t size, unsigned hold,
                             int door, unsigned long pairs)
{
    void *held[64];
    unsigned long done = 0, failures = 0;
    unsigned i;
    while (done < pairs) {
        if (door == DOOR_BATCH) {
            failures += zp_get_batch(pool, size, held, hold) != 0;
            zp_put_batch(pool, held, hold);
        } else {
            for (i = 0; i < hold; i++) {
                held[i] = door == DOOR_HANDLE ? zp_cache_get(h, size) : zp_get(pool, size);
                failures += held[i] == NULL;
            }
            for (i = 0; i < hold; i++) {
                if (door == DOOR_HANDLE)
                    zp_cache_put(h, held[i]);
                else
                    zp_put(pool, held[i]);
            }
        }
        done += hold;
    }
    return failures;
}

static void run(size_t size, size_t align, unsigned which, unsigned hold, int door, int debug)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(size, align, which);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .debug = debug);
    zp_cache *h = NULL;
    unsigned long pairs = zpt_scaled(PAIRS);
    size_t maps0, unmaps0;
    unsigned long inits0, resets0, finis0;
    zpt_alloc_counts probe;
    counts c;
    ot->on_reset = hook_reset;
    if (door == DOOR_HANDLE)
        assert_int_equal(zp_cache_create(pool, &h), 0);

    /* the counting itself works before a zero is trusted */
    zpt_alloc_count_start();
    {
        void *volatile p = malloc(16);
        free(p);
    }
    probe = zpt_alloc_count_stop();
    assert_true(probe.allocs >= 1);

    /* warm-up: the same traffic, twice over a cache's worth */
    traffic(pool, h, size, hold, door, 4ul * hold + 64);
    maps0 = atomic_load(&pv->map_calls);
    unmaps0 = atomic_load(&pv->unmaps);
    inits0 = atomic_load(&ot->init_calls);
    resets0 = atomic_load(&ot->resets);
    finis0 = atomic_load(&ot->finis);

    zpt_alloc_count_start();
    c.failures = traffic(pool, h, size, hold, door, pairs);
    c.a = zpt_alloc_count_stop();
    c.maps = atomic_load(&pv->map_calls) - maps0;
    c.unmaps = atomic_load(&pv->unmaps) - unmaps0;
    c.inits = atomic_load(&ot->init_calls) - inits0;
    c.resets = atomic_load(&ot->resets) - resets0;
    c.finis = atomic_load(&ot->finis) - finis0;

    print_message("# %zu-byte objects (align %zu, callbacks 0x%x), hold %u, door %d, debug "
                  "%d: %lu pairs, %lu mallocs, %lu frees, %lu mmap-family calls, %zu maps, "
                  "%zu unmaps, %lu inits, %lu resets, %lu finis\n",
                  size, align, which, hold, door, debug, pairs, c.a.allocs, c.a.frees,
                  c.a.syscalls, c.maps, c.unmaps, c.inits, c.resets, c.finis);
    assert_int_equal(c.failures, 0);
    assert_int_equal(c.a.allocs, 0);
    assert_int_equal(c.a.frees, 0);
    assert_int_equal(c.a.syscalls, 0);
    assert_int_equal(c.maps, 0);
    assert_int_equal(c.unmaps, 0);
    assert_int_equal(c.inits, 0);
    assert_int_equal(c.finis, 0);
    if (ot->type.reset)
        assert_int_equal(c.resets, (pairs + hold - 1) / hold * hold);
    zp_cache_destroy(h);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    if (ot->type.init && ot->type.fini)
        assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    zpt_assert_objtype_clean(ot);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* within the thread's cache */
static void test_single(void **state)
{
    (void)state;
    run(200, 8, ZPT_OBJ_ALL, 1, DOOR_SINGLE, 0);
    run(200, 8, ZPT_OBJ_ALL, 16, DOOR_SINGLE, 0);
}

/* more objects in flight than the cache holds: through the depot */
static void test_through_depot(void **state)
{
    (void)state;
    run(200, 8, ZPT_OBJ_ALL, 48, DOOR_SINGLE, 0);
}

/* no reset, a power-of-two stride: the bare put path */
static void test_bare_path(void **state)
{
    (void)state;
    run(64, 64, ZPT_OBJ_INIT | ZPT_OBJ_FINI, 16, DOOR_SINGLE, 0);
    run(64, 64, 0, 48, DOOR_SINGLE, 0);
}

static void test_batches(void **state)
{
    (void)state;
    run(200, 8, ZPT_OBJ_ALL, 16, DOOR_BATCH, 0);
    run(200, 8, ZPT_OBJ_ALL, 64, DOOR_BATCH, 0); /* larger than the cache */
}

static void test_handle(void **state)
{
    (void)state;
    run(200, 8, ZPT_OBJ_ALL, 16, DOOR_HANDLE, 0);
    run(200, 8, ZPT_OBJ_ALL, 48, DOOR_HANDLE, 0);
}

/* the checked path of debug level 1 allocates nothing either */
static void test_debug1(void **state)
{
    (void)state;
    run(200, 8, ZPT_OBJ_ALL, 48, DOOR_SINGLE, 1);
    run(3000, 4096, ZPT_OBJ_ALL, 16, DOOR_BATCH, 1);
}

/* Objects got here, put on another thread: once both threads' caches and
 * the depot are warm, the exchange allocates nothing and constructs
 * nothing. */
static void test_cross_thread(void **state)
{
    static zpt_xfer x;
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(200, 8, ZPT_OBJ_ALL);
    zpt_alloc_counts a;
    unsigned long r, rounds = zpt_scaled(4000), warm = 200, failures = 0, inits0 = 0;
    unsigned long resets0 = 0;
    size_t maps0 = 0;
    zp_pool *pool;
    int i;
    (void)state;
    pool = ZPT_POOL(.type = &ot->type, .pv = pv);
    /* more objects than can ever be in flight (two thread caches whose
       bins may each grow to cache_depth, 256, when the threads meet at the
       depot, the hand-off slot and main's batch), constructed up front */
    {
        static void *pre[1024];
        for (i = 0; i < 1024; i++)
            assert_non_null(pre[i] = zp_get(pool, 200));
        for (i = 0; i < 1024; i++)
            zp_put(pool, pre[i]);
    }
    zpt_xfer_start(&x, pool);
    for (r = 0; r < warm + rounds; r++) {
        void *batch[ZPT_XFER_BATCH];
        if (r == warm) {
            zpt_xfer_wait_put(&x, warm);
            maps0 = atomic_load(&pv->map_calls);
            inits0 = atomic_load(&ot->init_calls);
            resets0 = atomic_load(&ot->resets);
            zpt_alloc_count_start();
        }
        for (i = 0; i < 32; i++) {
            batch[i] = zp_get(pool, 200);
            failures += batch[i] == NULL;
        }
        zpt_xfer_hand(&x, batch);
    }
    zpt_xfer_wait_put(&x, warm + rounds);
    a = zpt_alloc_count_stop();
    zpt_xfer_stop(&x);
    print_message("# cross-thread: %lu mallocs, %lu frees, %lu mmap-family calls, %lu maps, "
                  "%lu inits, %lu resets\n",
                  a.allocs, a.frees, a.syscalls,
                  (unsigned long)(atomic_load(&pv->map_calls) - maps0),
                  atomic_load(&ot->init_calls) - inits0, atomic_load(&ot->resets) - resets0);
    assert_int_equal(failures, 0);
    assert_int_equal(a.allocs, 0);
    assert_int_equal(a.frees, 0);
    assert_int_equal(a.syscalls, 0);
    assert_int_equal(atomic_load(&pv->map_calls) - maps0, 0);
    assert_int_equal(atomic_load(&ot->init_calls) - inits0, 0);
    /* one reset per put of the counted rounds */
    assert_int_equal(atomic_load(&ot->resets) - resets0, 32 * rounds);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    zpt_assert_objtype_clean(ot);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single),
        cmocka_unit_test(test_through_depot),
        cmocka_unit_test(test_bare_path),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_handle),
        cmocka_unit_test(test_debug1),
        cmocka_unit_test(test_cross_thread),
    };
    return ZPT_RUN(tests);
}
