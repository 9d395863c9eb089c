/* zp_reserve: buffers made ready ahead (mapped, carved, constructed, every page written), so the first gets map nothing and fault no page; all or nothing under a budget; errors precise. */
#include "zp_test.h"

#include <pthread.h>

#include <sys/resource.h>

#define SIZE (64 * ZPT_KiB)
#define COUNT 48

static long minor_faults(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_minflt;
}

/* zp_reserve on a fresh pool, then the first COUNT gets: the page faults and maps they
 * made. The reserve itself counts as no get and no put, and everything it
 * made is idle (this thread's bin holds a first share, the depot the rest). */
static void first_gets(long *faults, size_t *maps)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.pv = pv);
    static void *bufs[COUNT];
    zp_stats s;
    size_t maps0;
    long faults0;
    int i;
    /* nothing before the reserve: it also makes this thread's cache (the
     * array the buffers' addresses go to is written first: its page is
     * the test's, not the library's) */
    memset(bufs, 0, sizeof bufs);
    assert_int_equal(zp_reserve(pool, SIZE, COUNT), 0);
    s = zpt_read(pool);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.puts, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(s.bytes_reserved >= (uint64_t)COUNT * SIZE);
    zpt_assert_stats(&s);

    maps0 = atomic_load(&pv->maps);
    faults0 = minor_faults();
    for (i = 0; i < COUNT; i++)
        bufs[i] = zp_get(pool, SIZE);
    *faults = minor_faults() - faults0;
    *maps = atomic_load(&pv->maps) - maps0;
    for (i = 0; i < COUNT; i++) {
        assert_non_null(bufs[i]);
        memset(bufs[i], 0xA5, SIZE);
    }
    print_message("%d gets of %zu KiB after zp_reserve: %ld page faults, %zu maps\n", COUNT,
                  SIZE / ZPT_KiB, *faults, *maps);
    for (i = 0; i < COUNT; i++)
        zp_put(pool, bufs[i]);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    zpt_assert_stats(&s);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* After zp_reserve the first gets map nothing. */
static void test_first_gets_map_nothing(void **state)
{
    long faults;
    size_t maps;
    (void)state;
    first_gets(&faults, &maps);
    assert_int_equal(maps, 0);
}

/* ... and fault no page (getrusage). Under TSan and valgrind the count
 * includes the tool's own shadow memory, which the library's accesses
 * fault in: not a figure of the library's. */
static void test_first_gets_fault_nothing(void **state)
{
    long faults;
    size_t maps;
    (void)state;
#ifdef ZPT_TSAN
    zpt_skip("page faults under TSan include its shadow memory");
#endif
    if (zpt_under_valgrind())
        zpt_skip("page faults under valgrind include its own memory");
    first_gets(&faults, &maps);
    assert_int_equal(faults, 0);
}

/* Idle buffers are used first: reserving what is already idle maps
 * nothing more. */
static void test_idle_used_first(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.pv = pv, .cache_depth = ZPT_ZERO);
    zp_stats before, after;
    (void)state;
    assert_int_equal(zp_reserve(pool, SIZE, COUNT), 0);
    before = zpt_read(pool);
    assert_int_equal(zp_reserve(pool, SIZE, COUNT), 0);
    after = zpt_read(pool);
    assert_int_equal(after.bytes_reserved, before.bytes_reserved);
    assert_int_equal(after.gets, 0);
    assert_int_equal(after.puts, 0);
    zp_pool_destroy(pool);
    zpt_provider_free(pv);
}

/* Under a budget: what fits is reserved; what does not fails with
 * -ENOBUFS and leaves nothing reserved. */
static void test_budget_all_or_nothing(void **state)
{
    zp_pool *pool = ZPT_POOL(.max_bytes = 2 * ZPT_MiB);
    zp_stats s;
    void *b;
    (void)state;
    assert_int_equal(zp_reserve(pool, SIZE, 64), -ENOBUFS); /* 4 MiB */
    assert_non_null(strstr(zp_strerror(-ENOBUFS), "zp_reserve"));
    s = zpt_read(pool);
    assert_int_equal(s.bytes_reserved, 0);
    assert_int_equal(zp_reserve(pool, SIZE, 16), 0); /* 1 MiB */
    s = zpt_read(pool);
    assert_true(s.bytes_reserved >= 16 * SIZE && s.bytes_reserved <= 2 * ZPT_MiB);
    /* still usable for gets */
    b = zp_get(pool, SIZE);
    assert_non_null(b);
    zp_put(pool, b);
    zp_pool_destroy(pool);
}

/* Object pools: reserved objects are constructed then, not at the gets. */
static void test_objects_constructed_ahead(void **state)
{
    zpt_objtype *ot = zpt_objtype_new(200, 0, ZPT_OBJ_ALL);
    zp_pool *pool = ZPT_POOL(.type = &ot->type);
    void *objs[10];
    unsigned long inits;
    int i;
    (void)state;
    assert_int_equal(zp_reserve(pool, 200, 10), 0);
    inits = atomic_load(&ot->inits);
    assert_true(inits >= 10);
    for (i = 0; i < 10; i++) {
        objs[i] = zp_get(pool, 200);
        assert_non_null(objs[i]);
        assert_true(zpt_obj_constructed(ot, objs[i]));
    }
    assert_int_equal(atomic_load(&ot->inits), inits);
    for (i = 0; i < 10; i++)
        zp_put(pool, objs[i]);
    assert_int_equal(zp_reserve(pool, 201, 1), -EOVERFLOW);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    assert_int_equal(atomic_load(&ot->bad), 0);
    zpt_objtype_free(ot);
}

static void *other_thread_gets(void *arg)
{
    zp_pool *pool = arg;
    static void *got[16];
    for (int i = 0; i < 16; i++)
        got[i] = zp_get(pool, 4096);
    for (int i = 0; i < 16; i++)
        zp_put(pool, got[i]);
    return NULL;
}

/* The calling thread's bin keeps what it holds (32 to start with): its
 * first 32 gets are cache hits; the rest wait in the depot, where the next
 * gets, and another thread's, find them (no allocation). */
static void test_caller_cache_keeps_a_bin(void **state)
{
    zp_pool *pool = ZPT_POOL();
    static void *bufs[48];
    zp_stats s;
    (void)state;
    assert_int_equal(zp_reserve(pool, 4096, 64), 0);
    for (int i = 0; i < 32; i++)
        assert_non_null(bufs[i] = zp_get(pool, 4096));
    s = zpt_read(pool);
    assert_int_equal(s.gets, 32);
    assert_int_equal(s.cache_hits, 32);
    assert_int_equal(s.depot_hits + s.allocations, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread_gets, pool), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (int i = 32; i < 48; i++)
        assert_non_null(bufs[i] = zp_get(pool, 4096));
    s = zpt_read(pool);
    assert_int_equal(s.gets, 64);
    assert_int_equal(s.allocations, 0); /* all 64 were reserved */
    assert_true(s.depot_hits >= 2);     /* the other thread's and ours */
    for (int i = 0; i < 48; i++)
        zp_put(pool, bufs[i]);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    zpt_assert_stats(&s);
    zp_pool_destroy(pool);
}

static void test_errors(void **state)
{
    zp_pool *pool = ZPT_POOL(.max_class = ZPT_MiB);
    zp_stats s;
    (void)state;
    assert_int_equal(zp_reserve(NULL, SIZE, 1), -EINVAL);
    assert_non_null(strstr(zp_strerror(-EINVAL), "zp_reserve"));
    assert_int_equal(zp_reserve(pool, 2 * ZPT_MiB, 1), -EINVAL);
    assert_non_null(strstr(zp_strerror(-EINVAL), "largest class"));
    assert_int_equal(zp_reserve(pool, SIZE, 0), 0);
    assert_int_equal(zp_reserve(pool, SIZE, SIZE_MAX), -ENOMEM);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_reserved, 0);
    zp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_gets_map_nothing),
        cmocka_unit_test(test_first_gets_fault_nothing),
        cmocka_unit_test(test_idle_used_first),
        cmocka_unit_test(test_budget_all_or_nothing),
        cmocka_unit_test(test_objects_constructed_ahead),
        cmocka_unit_test(test_caller_cache_keeps_a_bin),
        cmocka_unit_test(test_errors),
    };
    return ZPT_RUN(tests);
}
