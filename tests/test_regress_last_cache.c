/* Tests the hit paths' one-pointer lookup of the thread's last-used cache: a destroyed pool's cache never serves a new pool (also at the same address), and a pool that loses the "last" spot to another still finds its cache. */
#include "zp_test.h"

#include <pthread.h>

/* A thread warms pool A's cache, A is destroyed, and pools are created
 * until one lands at A's address: its gets and puts must be its own
 * (counted in its stats, its buffers), never the old cache's. */
static void test_same_address_after_destroy(void **state)
{
    (void)state;
    zp_pool *a;
    assert_int_equal(zp_pool_create(NULL, &a), 0);
    void *old[4];
    for (int i = 0; i < 4; i++)
        old[i] = zp_get(a, 4096);
    for (int i = 0; i < 4; i++)
        zp_put(a, old[i]);
    void *a_addr = a;
    zp_pool_destroy(a);

    zp_pool *made[64];
    int n = 0, same = -1;
    for (; n < 64; n++) {
        assert_int_equal(zp_pool_create(NULL, &made[n]), 0);
        if ((void *)made[n] == a_addr) {
            same = n;
            break;
        }
    }
    if (same < 0)
        print_message("# no pool landed at the old address %p (last %p); checking the newest one\n", a_addr, (void *)made[n - 1]);
    zp_pool *b = same >= 0 ? made[same] : made[n - 1];
    for (int r = 0; r < 100; r++) {
        void *buf = zp_get(b, 4096);
        assert_non_null(buf);
        /* b's own buffer (the old pool's slabs are unmapped: the kernel may
         * hand their addresses to b's, so the address proves nothing) */
        assert_int_equal(zp_capacity(b, buf), 4096);
        memset(buf, 0x5a, 4096);
        zp_put(b, buf);
    }
    zp_stats s;
    assert_int_equal(zpt_stats(b, &s), 0);
    assert_int_equal(s.gets, 100);
    assert_int_equal(s.puts, 100);
    assert_int_equal(s.misuse, 0);
    assert_int_equal(s.cache_hits + s.depot_hits + s.allocations, 100);
    assert_int_equal(s.allocations, 1);
    assert_int_equal(s.cache_hits, 99);
    for (int i = 0; i <= (same >= 0 ? same : n - 1); i++)
        zp_pool_destroy(made[i]);
}

/* Batches and single calls interleaved over two pools: every call on a
 * pool that is not the last used one still reaches that pool's cache. */
static void test_batches_switch_pools(void **state)
{
    (void)state;
    zp_pool *a = ZPT_POOL(), *b = ZPT_POOL();
    void *ba[8], *bb[8];
    for (int r = 0; r < 200; r++) {
        assert_int_equal(zp_get_batch(a, 4096, ba, 8), 0);
        void *one = zp_get(b, 8192);
        assert_non_null(one);
        assert_int_equal(zp_get_batch(b, 4096, bb, 8), 0);
        zp_put(b, one);
        zp_put_batch(a, ba, 8);
        zp_put_batch(b, bb, 8);
    }
    zp_stats sa, sb;
    assert_int_equal(zpt_stats(a, &sa), 0);
    assert_int_equal(zpt_stats(b, &sb), 0);
    assert_int_equal(sa.gets, 1600);
    assert_int_equal(sa.puts, 1600);
    assert_int_equal(sb.gets, 1800);
    assert_int_equal(sb.puts, 1800);
    assert_int_equal(sa.misuse + sb.misuse, 0);
    /* warm after the first round: every later get is a cache hit */
    assert_int_equal(sa.cache_hits, 1600 - sa.depot_hits - sa.allocations);
    assert_true(sa.allocations <= 8 && sa.depot_hits == 0);
    assert_true(sb.allocations <= 9 && sb.depot_hits == 0);
    zp_pool_destroy(a);
    zp_pool_destroy(b);
}

static void *use_pool(void *arg)
{
    zp_pool *p = arg;
    for (int i = 0; i < 1000; i++)
        zp_put(p, zp_get(p, 4096));
    return NULL;
}

/* A thread whose last cache belonged to a pool destroyed meanwhile (by
 * another thread) goes on with a new pool. */
static void test_destroyed_under_thread(void **state)
{
    (void)state;
    zp_pool *a = ZPT_POOL();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, use_pool, a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    use_pool(a); /* this thread's last cache: a's */
    zp_pool_destroy(a);
    zp_pool *b = ZPT_POOL();
    use_pool(b);
    zp_stats s;
    assert_int_equal(zpt_stats(b, &s), 0);
    assert_int_equal(s.gets, 1000);
    assert_int_equal(s.cache_hits, 999);
    zp_pool_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_address_after_destroy),
        cmocka_unit_test(test_batches_switch_pools),
        cmocka_unit_test(test_destroyed_under_thread),
    };
    return ZPT_RUN(tests);
}
