/* fork() while other threads are inside the pool: the child can use every pool; the other threads' buffers are lost, not corrupted. */
/*
 * The contract (the library's pthread_atfork handlers): the forking thread
 * may go on using every inherited pool and create new ones in the child;
 * buffers cached or held by the parent's other threads are lost to the
 * child, not corrupted; budget waiters and decay threads of the parent do
 * not exist in the child.
 */
#include "zp_test.h"

/* Misuse reports, counted by a handler that takes no lock (a parent thread
 * could hold a lock of ours at fork time): zpt_misuse_tally. */
static atomic_int g_misuse;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            printf("child: %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            fflush(stdout);                                                  \
            return 1;                                                        \
        }                                                                    \
    } while (0)

/* Uses pool as an application would; 0 if everything holds. */
static int use_pool(zp_pool *pool, uint64_t seed)
{
    static void *b[200];
    void *batch[40];
    zp_stats s;
    char stackbuf[64], why[256];
    FILE *devnull;
    size_t i, j;
    for (i = 0; i < 200; i++) {
        size_t size = (size_t)4096 << (i % 6);
        b[i] = zp_get(pool, size);
        CHECK(b[i] != NULL);
        CHECK(zp_capacity(pool, b[i]) >= size);
        zpt_fill(b[i], 4096, seed + i);
    }
    for (i = 0; i < 200; i++)
        CHECK(zpt_check(b[i], 4096, seed + i) == SIZE_MAX);
    for (i = 0; i < 200; i++)
        for (j = 0; j < i; j++)
            CHECK(b[i] != b[j]);
    CHECK(zp_get_batch(pool, 8192, batch, 40) == 0);
    zp_put_batch(pool, batch, 40);
    for (i = 0; i < 200; i++)
        zp_put(pool, b[i]);
    b[0] = zp_get(pool, 100 << 20); /* oversize */
    CHECK(b[0] != NULL);
    zp_put(pool, b[0]);
    b[0] = zp_get_timed(pool, 4096, 0);
    CHECK(b[0] != NULL);
    zp_put(pool, b[0]);
    /* the misuse handler and its lock work in the child */
    {
        int before = atomic_load(&g_misuse);
        zp_put(pool, stackbuf);
        CHECK(atomic_load(&g_misuse) == before + 1);
    }
    zp_trim(pool, 0);
    CHECK(zpt_stats(pool, &s) == 0);
    if (!zpt_stats_ok(&s, why, sizeof why)) {
        printf("child: stats invariant broken: %s\n", why);
        fflush(stdout);
        return 1;
    }
    devnull = fopen("/dev/null", "w");
    CHECK(devnull != NULL);
    CHECK(zp_stats_write(pool, devnull, ZP_FORMAT_JSON) == 0);
    fclose(devnull);
    return 0;
}

/* ----------------------------------------- threads busy in the pool */

/* GCC's libasan does not hold its allocator's lock across fork(): a child
 * forked while another thread was inside malloc hangs in its first malloc
 * (the engine mallocs a thread cache there). Under ASan the busy threads
 * therefore warm up first and then keep to paths that allocate nothing;
 * the pool's own locks are still taken all the time. */
#if defined(ZPT_ASAN)
#define ALLOC_FREE_ONLY 1
#else
#define ALLOC_FREE_ONLY 0
#endif

typedef struct busy {
    zp_pool *pool;
    atomic_int stop;
    atomic_int warm;   /* threads past their warm-up */
    atomic_ulong ops;
} busy;

static void *busy_thread(void *arg)
{
    busy *w = arg;
    uint64_t rng = (uint64_t)(uintptr_t)&rng;
    void *held[16] = {0};
    char stackbuf[16];
    unsigned long n = 0;
    while (!atomic_load(&w->stop)) {
        unsigned i = (unsigned)(zpt_rand(&rng) % 16);
        if (held[i]) {
            zp_put(w->pool, held[i]);
            held[i] = NULL;
        } else {
            held[i] = zp_get(w->pool, (size_t)4096 << (zpt_rand(&rng) % 8));
        }
        if (++n == 20000)
            atomic_fetch_add(&w->warm, 1);
        if (ALLOC_FREE_ONLY && n > 20000) {
            atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
            continue; /* warm: gets and puts that allocate nothing */
        }
        if (n % 64 == 0)
            zp_trim(w->pool, 0); /* the depot and the pool lock */
        if (n % 256 == 0) {
            void *b[20];
            if (zp_get_batch(w->pool, 16384, b, 20) == 0)
                zp_put_batch(w->pool, b, 20);
        }
        if (n % 1024 == 0) {
            zp_stats s;
            zpt_stats(w->pool, &s); /* the registry lock */
            zp_put(w->pool, stackbuf); /* the misuse handler */
        }
        if (n % 4096 == 0) {
            zp_pool *tmp = NULL; /* the registry, from create and destroy */
            if (zp_pool_create(NULL, &tmp) == 0) {
                zp_put(tmp, zp_get(tmp, 4096));
                zp_pool_destroy(tmp);
            }
        }
        atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
    }
    for (unsigned i = 0; i < 16; i++)
        zp_put(w->pool, held[i]);
    return NULL;
}

static zp_pool *g_inherited;

static int child_busy(void *arg)
{
    zp_pool *fresh = NULL;
    int rc;
    (void)arg;
    zpt_child_no_leak_check(); /* the parent's threads' caches are lost here */
    /* a deadlock here is killed by zpt_run_child's timeout (60 s) and
     * reported as timed out; no alarm of its own: a 10 s one fired once
     * under TSan with the machine loaded, on a child that was only slow */
    rc = use_pool(g_inherited, 1);
    if (rc)
        return 10 + rc;
    CHECK(zp_pool_create(NULL, &fresh) == 0);
    rc = use_pool(fresh, 2);
    if (rc)
        return 20 + rc;
    zp_pool_destroy(fresh);
    /* the inherited pool goes too: what the parent's threads held is
     * reported as outstanding, nothing crashes */
    zp_pool_destroy(g_inherited);
    CHECK(zp_pool_create(NULL, &fresh) == 0);
    rc = use_pool(fresh, 3);
    if (rc)
        return 30 + rc;
    zp_pool_destroy(fresh);
    return 0;
}

static void test_fork_while_busy(void **state)
{
    static busy w; /* static: the threads outlive a failed assertion */
    static zpt_child c;
    pthread_t t[2];
    int i, forks = zpt_under_valgrind() ? 5 : 40, failed_at = -1;
    (void)state;
    memset(&w, 0, sizeof(w));
    zp_set_misuse_handler(zpt_misuse_tally, &g_misuse);
    w.pool = ZPT_POOL();
    g_inherited = w.pool;
    for (i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, busy_thread, &w), 0);
    while (ALLOC_FREE_ONLY && atomic_load(&w.warm) < 2)
        usleep(1000); /* past the warm-up */
    for (i = 0; i < forks && failed_at < 0; i++) {
        usleep(1000 * (unsigned)(i % 7));
        if (zpt_run_child(child_busy, NULL, 60, &c) != 0 || !zpt_child_exited(&c, 0))
            failed_at = i;
    }
    atomic_store(&w.stop, 1);
    for (i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    if (failed_at >= 0)
        fail_msg("fork %d: child status 0x%x%s\n%s", failed_at, c.status,
                 c.timed_out ? " (timed out)" : "", c.out);
    print_message("# %d forks while the threads made %lu calls\n", forks,
                  (unsigned long)atomic_load(&w.ops));
    /* the parent is unaffected */
    assert_int_equal(use_pool(w.pool, 4), 0);
    {
        zp_stats s;
        assert_true(zpt_stats_consistent(w.pool, NULL, &s));
        assert_int_equal(s.bytes_outstanding, 0);
    }
    zp_pool_destroy(w.pool);
    zp_set_misuse_handler(NULL, NULL);
}

/* ------------------------------------------------ a budget waiter */

static zp_pool *g_budget_pool;
static void *g_budget_held;

static int child_budget(void *arg)
{
    void *b;
    (void)arg;
    zpt_child_no_leak_check(); /* the parent's threads' caches are lost here */
    /* the parent's waiter does not exist here: once room is made, a plain
     * get is served (it would fail with ENOBUFS while a waiter queued) */
    zp_put(g_budget_pool, g_budget_held);
    zp_trim(g_budget_pool, 0);
    b = zp_get(g_budget_pool, 1 << 20);
    CHECK(b != NULL);
    zp_put(g_budget_pool, b);
    b = zp_get_timed(g_budget_pool, 1 << 20, 0);
    CHECK(b != NULL);
    zp_put(g_budget_pool, b);
    CHECK(use_pool(g_budget_pool, 5) == 0);
    zp_pool_destroy(g_budget_pool);
    return 0;
}

static void test_fork_with_budget_waiter(void **state)
{
    static zpt_waiter w; /* static: the thread outlives a failed assertion */
    static zpt_child c;
    int child_ok;
    zp_budget *budget;
    (void)state;
    zp_set_misuse_handler(zpt_misuse_tally, &g_misuse);
    budget = zpt_budget_new(200 << 20);
    g_budget_pool = ZPT_POOL(.budget = budget);
    /* exhaust the budget with one oversize buffer */
    g_budget_held = zp_get(g_budget_pool, 200 << 20);
    assert_non_null(g_budget_held);
    zpt_waiter_start(&w, g_budget_pool, 1 << 20, 60000);
    assert_true(zpt_wait_waiters(budget, 1, 5000));
    assert_int_equal(zpt_waiters(budget), 1);

    child_ok = zpt_run_child(child_budget, NULL, 60, &c) == 0 && zpt_child_exited(&c, 0);

    /* in the parent the waiter is still there and gets its buffer */
    zp_put(g_budget_pool, g_budget_held);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    if (!child_ok)
        fail_msg("child status 0x%x%s\n%s", c.status, c.timed_out ? " (timed out)" : "",
                 c.out);
    assert_non_null(w.buf);
    zp_put(g_budget_pool, w.buf);
    zp_pool_destroy(g_budget_pool);
    zp_budget_destroy(budget);
    zp_set_misuse_handler(NULL, NULL);
}

/* ------------------------------------------------ a decay thread */

static zp_pool *g_decay_pool;

static int child_decay(void *arg)
{
    (void)arg;
    zpt_child_no_leak_check(); /* the parent's threads' caches are lost here */
    CHECK(use_pool(g_decay_pool, 6) == 0);
    /* its decay thread stayed in the parent: destroy must not wait for it */
    zp_pool_destroy(g_decay_pool);
    return 0;
}

static void test_fork_with_decay_thread(void **state)
{
    static zpt_child c;
    int i;
    (void)state;
    zp_set_misuse_handler(zpt_misuse_tally, &g_misuse);
    /* the thread waits on its condition variable at fork time (what the
     * child must reinitialise); under ASan it must not be trimming then
     * (trim allocates: see ALLOC_FREE_ONLY) */
    g_decay_pool = ZPT_POOL(.flags = ZP_DECAY_THREAD, .decay_ms = ALLOC_FREE_ONLY ? 10000 : 2);
    for (i = 0; i < 5; i++) {
        zp_put(g_decay_pool, zp_get(g_decay_pool, 65536));
        usleep(3000);
        assert_int_equal(zpt_run_child(child_decay, NULL, 60, &c), 0);
        if (!zpt_child_exited(&c, 0))
            fail_msg("child status 0x%x%s\n%s", c.status,
                     c.timed_out ? " (timed out)" : "", c.out);
    }
    /* the parent's decay thread still runs and stops at destroy */
    zp_pool_destroy(g_decay_pool);
    zp_set_misuse_handler(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_while_busy),
        cmocka_unit_test(test_fork_with_budget_waiter),
        cmocka_unit_test(test_fork_with_decay_thread),
    };
    unsetenv("ZEROPOOL_DEBUG");
    return ZPT_RUN(tests);
}
