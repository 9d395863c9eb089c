/* Tests that a thread's cached buffers go back to the pool when it exits. */
#include "zp_test.h"

#define N 16 /* fits a default thread cache (32) without overflowing it */

typedef struct job {
    zp_pool *pool;
    size_t size;
    int n;          /* buffers to get */
    int put_back;   /* put them before exiting, else hand them to main */
    void *bufs[64];
    atomic_int failures;
} job;

static void *worker(void *arg)
{
    job *j = arg;
    int i;
    for (i = 0; i < j->n; i++) {
        j->bufs[i] = zp_get(j->pool, j->size);
        if (!j->bufs[i]) {
            atomic_fetch_add(&j->failures, 1);
            continue;
        }
        zpt_fill(j->bufs[i], j->size, (uint64_t)i);
    }
    if (j->put_back)
        for (i = 0; i < j->n; i++)
            zp_put(j->pool, j->bufs[i]);
    return NULL;
}

static void run_worker(job *j)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, worker, j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&j->failures), 0);
}

/* After the exited thread's cache went back, the main thread is served
 * from the depot and nothing new is mapped. */
static void run_exit_then_main(size_t size)
{
    zp_pool *pool = ZPT_POOL();
    job j;
    zp_stats s1, s2;
    void *bufs[N];
    int i;
    memset(&j, 0, sizeof(j));
    j.pool = pool;
    j.size = size;
    j.n = N;
    j.put_back = 1;
    run_worker(&j);

    assert_int_equal(zpt_stats(pool, &s1), 0);
    assert_int_equal(s1.gets, N);
    assert_int_equal(s1.puts, N);
    assert_int_equal(s1.bytes_outstanding, 0);
    assert_true(s1.bytes_cached >= (uint64_t)N * size);

    for (i = 0; i < N; i++) {
        bufs[i] = zp_get(pool, size);
        assert_non_null(bufs[i]);
    }
    assert_int_equal(zpt_stats(pool, &s2), 0);
    zpt_stats_print("after main's gets", &s2);
    assert_true(s2.depot_hits > s1.depot_hits);
    assert_int_equal(s2.allocations, s1.allocations);
    assert_int_equal(s2.bytes_reserved, s1.bytes_reserved);
    assert_true(zpt_stats_sum_ok(&s2));
    for (i = 0; i < N; i++)
        zp_put(pool, bufs[i]);
    zp_pool_destroy(pool);
}

static void test_exit_then_main_4k(void **state)
{
    (void)state;
    run_exit_then_main(4096);
}

static void test_exit_then_main_1m(void **state)
{
    (void)state;
    run_exit_then_main(ZPT_MiB);
}

/* Many threads one after another, each getting and putting N buffers:
 * memory stays what the first thread needed. */
static void test_thread_churn_no_growth(void **state)
{
    zp_pool *pool = ZPT_POOL();
    job j;
    zp_stats first, s;
    int t;
    (void)state;
    for (t = 0; t < 64; t++) {
        memset(&j, 0, sizeof(j));
        j.pool = pool;
        j.size = 65536;
        j.n = N;
        j.put_back = 1;
        run_worker(&j);
        if (t == 0)
            assert_int_equal(zpt_stats(pool, &first), 0);
    }
    assert_int_equal(zpt_stats(pool, &s), 0);
    zpt_stats_print("after 64 threads", &s);
    assert_int_equal(s.gets, 64 * N);
    assert_int_equal(s.puts, 64 * N);
    assert_int_equal(s.bytes_reserved, first.bytes_reserved);
    assert_int_equal(s.allocations, first.allocations);
    /* each later thread starts with an empty cache and nothing new is
       carved, so its first get at least is a depot hit */
    assert_true(s.depot_hits >= first.depot_hits + 63);
    assert_true(zpt_stats_sum_ok(&s));
    zp_pool_destroy(pool);
}

/* Buffers a thread still holds when it exits stay valid: another thread
 * reads them intact and puts them. */
static void test_outstanding_survive_exit(void **state)
{
    zp_pool *pool = ZPT_POOL();
    job j;
    zp_stats s;
    int i;
    (void)state;
    memset(&j, 0, sizeof(j));
    j.pool = pool;
    j.size = 8192;
    j.n = 40; /* more than a cache holds */
    j.put_back = 0;
    run_worker(&j);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 40 * 8192);
    for (i = 0; i < 40; i++) {
        assert_int_equal(zpt_check(j.bufs[i], 8192, (uint64_t)i), SIZE_MAX);
        assert_int_equal(zp_capacity(pool, j.bufs[i]), 8192);
        zp_put(pool, j.bufs[i]);
    }
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.puts, 40);
    assert_int_equal(s.misuse, 0);
    zp_pool_destroy(pool);
}

/* A thread that used two pools gives both caches back on exit. */
static void *two_pool_worker(void *arg)
{
    zp_pool **pools = arg;
    void *a[N], *b[N];
    int i;
    for (i = 0; i < N; i++) {
        a[i] = zp_get(pools[0], 4096);
        b[i] = zp_get(pools[1], 4096);
    }
    for (i = 0; i < N; i++) {
        zp_put(pools[0], a[i]);
        zp_put(pools[1], b[i]);
    }
    return NULL;
}

static void test_exit_two_pools(void **state)
{
    zp_pool *pools[2];
    zp_stats before[2], after[2];
    void *bufs[N];
    pthread_t t;
    int p, i;
    (void)state;
    pools[0] = ZPT_POOL();
    pools[1] = ZPT_POOL();
    assert_int_equal(pthread_create(&t, NULL, two_pool_worker, pools), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (p = 0; p < 2; p++) {
        assert_int_equal(zpt_stats(pools[p], &before[p]), 0);
        assert_int_equal(before[p].gets, N);
        for (i = 0; i < N; i++) {
            bufs[i] = zp_get(pools[p], 4096);
            assert_non_null(bufs[i]);
        }
        assert_int_equal(zpt_stats(pools[p], &after[p]), 0);
        assert_true(after[p].depot_hits > before[p].depot_hits);
        assert_int_equal(after[p].allocations, before[p].allocations);
        assert_int_equal(after[p].bytes_reserved, before[p].bytes_reserved);
        for (i = 0; i < N; i++)
            zp_put(pools[p], bufs[i]);
    }
    zp_pool_destroy(pools[0]);
    zp_pool_destroy(pools[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_then_main_4k),
        cmocka_unit_test(test_exit_then_main_1m),
        cmocka_unit_test(test_thread_churn_no_growth),
        cmocka_unit_test(test_outstanding_survive_exit),
        cmocka_unit_test(test_exit_two_pools),
    };
    return ZPT_RUN(tests);
}
