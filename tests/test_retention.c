/* Retention cap (max_cached_bytes): after a burst, idle memory above the cap goes back to the provider, up to the cap stays warm. */
#include "zp_test.h"

#define CAP (8 * ZPT_MiB)
#define BURST 32 /* x 1 MiB */

/* Pools here: the retention cap, and thread caches of cache_bytes 1 MiB
 * (one 1 MiB buffer per thread cache). */

/* One thread: 32 x 1 MiB got and touched, then all put. The thread keeps
 * one in its cache; the depot keeps the cap, the rest is unmapped. */
static void test_cap_after_burst(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.max_cached_bytes = CAP, .cache_bytes = ZPT_MiB, .pv = pv);
    static void *bufs[BURST];
    size_t before, peak, after;
    zp_stats s;
    int i;
    (void)state;
    zpt_rss_burst(pool, bufs, BURST, &before, &peak);
    after = zpt_rss_bytes();
    assert_int_equal(zpt_stats(pool, &s), 0);
    print_message("burst of %d MiB, cap %.0f MiB: %.1f MiB still reserved "
                  "(peak %.1f MiB); RSS before %.1f, peak %.1f, after %.1f MiB\n",
                  BURST, zpt_mib(CAP), zpt_mib(s.bytes_reserved), zpt_mib(s.peak_reserved),
                  zpt_mib(before), zpt_mib(peak), zpt_mib(after));
    assert_int_equal(s.peak_reserved, BURST * ZPT_MiB);
    /* at most the cap in the depot plus this thread's cache */
    assert_true(s.bytes_reserved <= CAP + ZPT_MiB);
    /* and the cap is kept warm, not thrown away with the excess */
    assert_true(s.bytes_reserved >= CAP);
    assert_int_equal(atomic_load(&pv->bytes_live), s.bytes_reserved);
    /* the released memory left the process */
    zpt_check_rss(before, peak, after, s.peak_reserved - s.bytes_reserved);

    /* a second burst reuses what was kept */
    for (i = 0; i < BURST; i++) {
        bufs[i] = zp_get(pool, ZPT_MiB);
        assert_non_null(bufs[i]);
    }
    for (i = 0; i < BURST; i++)
        zp_put(pool, bufs[i]);
    assert_true(zpt_reserved(pool) <= CAP + ZPT_MiB);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* ------------------------------------------------------ several threads */

#define NTHREADS 4
#define PER_THREAD 16

static zp_pool *g_pool;
static pthread_barrier_t g_got, g_counted, g_put, g_checked;
static atomic_int g_fail;

static void *burst_worker(void *arg)
{
    void *bufs[PER_THREAD];
    int i;
    (void)arg;
    for (i = 0; i < PER_THREAD; i++) {
        bufs[i] = zp_get(g_pool, ZPT_MiB);
        if (bufs[i] == NULL) {
            atomic_fetch_add(&g_fail, 1);
            continue;
        }
        zpt_touch(bufs[i], ZPT_MiB, (unsigned char)i);
    }
    pthread_barrier_wait(&g_got);
    pthread_barrier_wait(&g_counted); /* main has read the stats */
    for (i = 0; i < PER_THREAD; i++)
        zp_put(g_pool, bufs[i]);
    pthread_barrier_wait(&g_put);
    pthread_barrier_wait(&g_checked); /* stay alive while main checks */
    return NULL;
}

/* Four threads burst 64 MiB together and put it all back while staying
 * alive: at most the cap plus each thread's cache stays reserved. */
static void test_cap_after_threaded_burst(void **state)
{
    pthread_t t[NTHREADS];
    zp_stats s;
    void *x;
    int i;
    (void)state;
    g_pool = ZPT_POOL(.max_cached_bytes = CAP, .cache_bytes = ZPT_MiB);
    atomic_store(&g_fail, 0);
    pthread_barrier_init(&g_got, NULL, NTHREADS + 1);
    pthread_barrier_init(&g_counted, NULL, NTHREADS + 1);
    pthread_barrier_init(&g_put, NULL, NTHREADS + 1);
    pthread_barrier_init(&g_checked, NULL, NTHREADS + 1);
    for (i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, burst_worker, NULL), 0);
    pthread_barrier_wait(&g_got);
    assert_int_equal(atomic_load(&g_fail), 0);
    assert_int_equal(zpt_reserved(g_pool), NTHREADS * PER_THREAD * ZPT_MiB);
    pthread_barrier_wait(&g_counted);
    pthread_barrier_wait(&g_put);
    assert_int_equal(zpt_stats(g_pool, &s), 0);
    print_message("%d threads x %d MiB put back, cap %.0f MiB: %.1f MiB reserved\n",
                  NTHREADS, PER_THREAD, zpt_mib(CAP), zpt_mib(s.bytes_reserved));
    assert_int_equal(atomic_load(&g_fail), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(s.bytes_reserved <= CAP + NTHREADS * ZPT_MiB);
    pthread_barrier_wait(&g_checked);
    for (i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);

    /* the exited threads' caches went to the depot; the next slow path
     * enforces the cap again */
    x = zp_get(g_pool, ZPT_MiB);
    assert_non_null(x);
    zp_put(g_pool, x);
    assert_int_equal(zpt_stats(g_pool, &s), 0);
    print_message("after the threads exited and one get/put: %.1f MiB reserved\n",
                  zpt_mib(s.bytes_reserved));
    assert_true(s.bytes_reserved <= CAP + ZPT_MiB);
    pthread_barrier_destroy(&g_got);
    pthread_barrier_destroy(&g_counted);
    pthread_barrier_destroy(&g_put);
    pthread_barrier_destroy(&g_checked);
    zp_pool_destroy(g_pool);
}

/* Small buffers in slabs that stay in use: the cap is met by releasing
 * the pages of idle buffers (measured per buffer with mincore). */
#define NSMALL 512 /* x 64 KiB = 32 MiB, 4 per slab */
static void test_cap_by_purging(void **state)
{
    const size_t size = 64 * ZPT_KiB;
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.max_cached_bytes = CAP, .cache_bytes = ZPT_MiB,
                             .pv = pv); /* cache: 16 x 64 KiB */
    void **bufs = calloc(NSMALL, sizeof(void *));
    unsigned char **slab_of = calloc(NSMALL, sizeof(unsigned char *));
    char *in_use = calloc(NSMALL, 1);
    size_t resident = 0, idle = 0, rsize;
    int i, j;
    (void)state;
    assert_non_null(bufs);
    assert_non_null(slab_of);
    assert_non_null(in_use);
    for (i = 0; i < NSMALL; i++) {
        bufs[i] = zp_get(pool, size);
        assert_non_null(bufs[i]);
        zpt_touch(bufs[i], size, 1);
        assert_true(zpt_provider_region(pv, bufs[i], &slab_of[i], &rsize));
    }
    /* the first buffer of each slab stays in use, the others are put */
    for (i = 0; i < NSMALL; i++) {
        in_use[i] = 1;
        for (j = 0; j < i && in_use[i]; j++)
            if (slab_of[j] == slab_of[i])
                in_use[i] = 0;
    }
    for (i = 0; i < NSMALL; i++)
        if (!in_use[i]) {
            zp_put(pool, bufs[i]);
            idle += size;
        }
    for (i = 0; i < NSMALL; i++)
        if (!in_use[i])
            resident += zpt_resident_in(bufs[i], size);
    print_message("%.1f MiB of 64 KiB buffers idle in slabs still in use, cap %.0f MiB: "
                  "%.1f MiB of them resident\n",
                  zpt_mib(idle), zpt_mib(CAP), zpt_mib(resident));
    assert_true(idle > 2 * CAP);
    /* the cap in the depot, plus one thread cache of 64 KiB buffers */
    assert_true(resident <= CAP + ZPT_MiB);
    assert_true(resident >= CAP); /* the cap is kept warm */
    assert_int_equal(zpt_reserved(pool), NSMALL / 4 * 256 * ZPT_KiB);

    for (i = 0; i < NSMALL; i++)
        if (in_use[i])
            zp_put(pool, bufs[i]);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
    free(bufs);
    free(slab_of);
    free(in_use);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_after_burst),
        cmocka_unit_test(test_cap_after_threaded_burst),
        cmocka_unit_test(test_cap_by_purging),
    };
    return ZPT_RUN(tests);
}
