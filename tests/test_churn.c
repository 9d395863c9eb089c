/* Thread churn: thousands of short-lived threads caching buffers; memory stays flat and every buffer comes back. */
/*
 * Thousands of short-lived threads (argv[1], default 5000) each get and
 * put a few buffers and exit holding cached ones; memory stays flat after
 * the first wave and every cached buffer is recovered. Also: a pool
 * destroyed while threads that cached its buffers live on, and a new pool
 * created at the very same address (test_destroy.c covers the
 * single-thread case without forcing the address).
 */
#include "zp_test.h"

static int g_threads = 5000;

enum { WAVE = 50 };

static const size_t churn_sizes[] = {4096, 16384, 65536, 262144};
#define NSIZES (sizeof(churn_sizes) / sizeof(churn_sizes[0]))

typedef struct churn {
    zp_pool *pool;
    pthread_barrier_t *held;  /* every thread of the wave holds its buffers */
    int id;
    void *keep;               /* a buffer left outstanding for main */
    size_t keep_size;
    int errors;
} churn;

static void *churn_thread(void *arg)
{
    churn *c = arg;
    void *b[6];
    size_t sz[6];
    int n = 3 + c->id % 4, i;
    for (i = 0; i < n; i++) {
        sz[i] = churn_sizes[(size_t)(c->id + i) % NSIZES];
        b[i] = zp_get(c->pool, sz[i]);
        if (b[i] == NULL) {
            c->errors++;
            continue;
        }
        zpt_fill(b[i], 256, (uint64_t)c->id * 8 + (uint64_t)i);
    }
    pthread_barrier_wait(c->held);
    for (i = 0; i < n; i++) {
        if (b[i] == NULL)
            continue;
        if (zpt_check(b[i], 256, (uint64_t)c->id * 8 + (uint64_t)i) != SIZE_MAX)
            c->errors++;
        /* every 10th thread leaves one buffer outstanding for main */
        if (i == 0 && c->id % 10 == 0) {
            c->keep = b[i];
            c->keep_size = sz[i];
            continue;
        }
        zp_put(c->pool, b[i]);
    }
    /* exits with its cache holding what it put (and refilled) */
    return NULL;
}

/* Most the idle memory can grow past the first wave's with the default
 * config (cache_depth 32: refills of 16 buffers): every thread of a wave
 * holding one full refill of every class it touches. */
static uint64_t refill_bound(void)
{
    uint64_t sum = 0;
    for (size_t k = 0; k < NSIZES; k++)
        sum += 16 * (uint64_t)churn_sizes[k];
    return WAVE * sum;
}

static void test_thread_churn(void **state)
{
    zp_pool *pool = ZPT_POOL();
    pthread_barrier_t held;
    churn jobs[WAVE];
    pthread_t t[WAVE];
    zp_stats s, first, steady;
    int wave, waves = (g_threads + WAVE - 1) / WAVE, i, kept = 0;
    (void)state;
    memset(&s, 0, sizeof(s));
    memset(&first, 0, sizeof(first));
    memset(&steady, 0, sizeof(steady));
    pthread_barrier_init(&held, NULL, WAVE);
    for (wave = 0; wave < waves; wave++) {
        for (i = 0; i < WAVE; i++) {
            memset(&jobs[i], 0, sizeof(jobs[i]));
            jobs[i].pool = pool;
            jobs[i].held = &held;
            jobs[i].id = wave * WAVE + i;
            assert_int_equal(pthread_create(&t[i], NULL, churn_thread, &jobs[i]), 0);
        }
        for (i = 0; i < WAVE; i++) {
            assert_int_equal(pthread_join(t[i], NULL), 0);
            assert_int_equal(jobs[i].errors, 0);
            if (jobs[i].keep) {
                assert_int_equal(zpt_check(jobs[i].keep, 256, (uint64_t)jobs[i].id * 8),
                                 SIZE_MAX);
                zp_put(pool, jobs[i].keep);
                kept++;
            }
        }
        assert_true(zpt_stats_consistent(pool, NULL, &s));
        if (s.bytes_outstanding != 0)
            fail_msg("wave %d: %llu bytes outstanding after every thread exited", wave,
                     (unsigned long long)s.bytes_outstanding);
        if (wave == 0) {
            first = s;
            zpt_stats_print("after the first wave", &s);
        } else if (s.bytes_reserved > first.bytes_reserved + refill_bound()) {
            zpt_stats_print("now", &s);
            fail_msg("wave %d: bytes_reserved grew from %llu to %llu, beyond what "
                     "%d threads' refills can hold (%llu)", wave,
                     (unsigned long long)first.bytes_reserved,
                     (unsigned long long)s.bytes_reserved, WAVE,
                     (unsigned long long)refill_bound());
        }
        /* flat: the waves are alike, so once the pool is warm (a quarter
         * of the waves, 1250 threads) memory stays put, give or take a
         * slab per class that scheduling may cost, and warming up costs at
         * most half the first wave's memory again */
        if (wave == waves / 4)
            steady = s;
        if (waves >= 40 && wave > waves / 4 &&
            s.bytes_reserved > steady.bytes_reserved + NSIZES * ((size_t)256 << 10)) {
            zpt_stats_print("warm", &steady);
            zpt_stats_print("now", &s);
            fail_msg("wave %d of %d: bytes_reserved grew from %llu to %llu after the "
                     "pool was warm (wave %d)", wave, waves,
                     (unsigned long long)steady.bytes_reserved,
                     (unsigned long long)s.bytes_reserved, waves / 4);
        }
        if (waves >= 40 && s.bytes_reserved > first.bytes_reserved / 2 * 3)
            fail_msg("wave %d: bytes_reserved %llu is more than 1.5x the first wave's "
                     "%llu", wave, (unsigned long long)s.bytes_reserved,
                     (unsigned long long)first.bytes_reserved);
    }
    pthread_barrier_destroy(&held);
    zpt_stats_print("after all waves", &s);
    assert_int_equal(s.puts, s.gets);
    assert_true(kept >= waves * WAVE / 10);

    /* every buffer the exited threads cached is back in the depot: the
     * main thread (its own cache flushed first, trimming nothing) can take
     * all of them without a single fresh one */
    assert_int_equal(zp_trim(pool, SIZE_MAX), 0);
    for (size_t k = 0; k < s.nclasses; k++) {
        const zp_class_stats *cs = &s.classes[k];
        size_t n = (size_t)(cs->bytes_cached / cs->size);
        void **all;
        zp_stats after;
        if (n == 0)
            continue;
        all = calloc(n, sizeof(void *));
        assert_non_null(all);
        assert_int_equal(zp_get_batch(pool, (size_t)cs->size, all, n), 0);
        assert_true(zpt_stats_consistent(pool, NULL, &after));
        if (after.allocations != s.allocations)
            fail_msg("class %llu: %zu buffers were cached, but taking them all "
                     "needed fresh ones", (unsigned long long)cs->size, n);
        assert_int_equal(after.classes[k].bytes_cached, 0);
        assert_int_equal(after.bytes_reserved, s.bytes_reserved);
        zp_put_batch(pool, all, n);
        free(all);
    }
    zp_pool_destroy(pool);
}

/* -------------------------------------- destroy while threads live on */

enum { LIVE = 4, LIVE_N = 12 };

typedef struct live {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int generation;      /* bumped by main for each command */
    int done;            /* threads that finished the current command */
    int exit;
    zp_pool *pool;       /* pool to use */
    zpt_provider *pv;    /* its provider: every buffer must lie in it */
    size_t size;
    atomic_int bad;      /* NULL gets, foreign buffers, bad contents */
} live;

static void live_use(live *l, zp_pool *pool, zpt_provider *pv, size_t size, int id)
{
    void *b[LIVE_N];
    int i;
    for (i = 0; i < LIVE_N; i++) {
        b[i] = zp_get(pool, size);
        if (b[i] == NULL || !zpt_provider_owns(pv, b[i]) ||
            zp_capacity(pool, b[i]) < size) {
            atomic_fetch_add(&l->bad, 1);
            b[i] = NULL;
            continue;
        }
        zpt_fill(b[i], size, (uint64_t)(id * 100 + i));
    }
    for (i = 0; i < LIVE_N; i++) {
        if (b[i] == NULL)
            continue;
        if (zpt_check(b[i], size, (uint64_t)(id * 100 + i)) != SIZE_MAX)
            atomic_fetch_add(&l->bad, 1);
        zp_put(pool, b[i]); /* stays in this thread's cache */
    }
}

typedef struct live_arg {
    live *l;
    int id;
} live_arg;

static void *live_thread(void *arg)
{
    live_arg *a = arg;
    live *l = a->l;
    int seen = 0;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (l->generation == seen && !l->exit)
            pthread_cond_wait(&l->cond, &l->lock);
        if (l->exit)
            break;
        seen = l->generation;
        zp_pool *pool = l->pool;
        zpt_provider *pv = l->pv;
        size_t size = l->size;
        pthread_mutex_unlock(&l->lock);
        live_use(l, pool, pv, size, a->id);
        pthread_mutex_lock(&l->lock);
        l->done++;
        pthread_cond_broadcast(&l->cond);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

/* Every live thread uses pool once; returns when all are done. */
static void live_round(live *l, zp_pool *pool, zpt_provider *pv, size_t size)
{
    pthread_mutex_lock(&l->lock);
    l->pool = pool;
    l->pv = pv;
    l->size = size;
    l->done = 0;
    l->generation++;
    pthread_cond_broadcast(&l->cond);
    while (l->done < LIVE)
        pthread_cond_wait(&l->cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
}

static zpt_misuse_log g_log = ZPT_MISUSE_LOG_INIT;

/* Uses pool a from every live thread, destroys it while they live on with
 * caches of it, and creates b at the address a had. Returns b. */
static zp_pool *destroy_and_recreate(live *l, zpt_provider *pva, zpt_provider *pvb,
                                     int *same)
{
    /* debug 1: any confusion of buffers shows as misuse */
    zp_pool *a = ZPT_POOL(.min_class = 4096, .max_class = 64 << 20, .debug = 1, .pv = pva), *b;
    uintptr_t old = (uintptr_t)a; /* a itself is gone after the destroy */
    zpt_capture cap;
    char *out;
    live_round(l, a, pva, 16384);
    live_round(l, a, pva, 4096);
    assert_int_equal(atomic_load(&l->bad), 0);
    assert_int_equal(zpt_capture_begin(&cap), 0);
    zpt_alloc_recycle(a); /* b is created at a's address */
    zp_pool_destroy(a);   /* their caches hold a's buffers */
    out = zpt_capture_end(&cap);
    assert_non_null(out);
    if (out[0])
        fail_msg("destroy with only cached buffers printed:\n%s", out);
    free(out);
    assert_int_equal(atomic_load(&pva->bytes_live), 0);
    assert_int_equal(atomic_load(&pva->maps), atomic_load(&pva->unmaps));
    /* other classes than a's: a stale cache used for b would show */
    b = ZPT_POOL(.min_class = 1024, .max_class = 4 << 20, .debug = 1, .pv = pvb);
    *same = (uintptr_t)b == old;
    assert_false(zpt_alloc_recycle_pending());
    return b;
}

/* The stale caches of the destroyed pool must not serve its (unmapped)
 * buffers for the new one, whose stats start from zero. */
static void use_new_pool(live *l, zp_pool *b, zpt_provider *pvb)
{
    zp_stats s;
    int round;
    assert_true(zpt_stats_consistent(b, pvb, &s));
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.bytes_cached, 0);
    for (round = 0; round < 3; round++) {
        live_round(l, b, pvb, 16384);
        live_round(l, b, pvb, 2048);
    }
    assert_int_equal(atomic_load(&l->bad), 0);
    assert_int_equal(zpt_misuse_count(&g_log), 0);
    assert_true(zpt_stats_consistent(b, pvb, &s));
    assert_int_equal(s.gets, (uint64_t)(6 * LIVE * LIVE_N));
    assert_int_equal(s.puts, s.gets);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.misuse, 0);
}

static void test_destroy_same_address(void **state)
{
    static live l; /* static: the threads outlive a failed assertion */
    live_arg args[LIVE];
    pthread_t t[LIVE];
    zpt_provider *pva = NULL, *pvb = NULL;
    zp_pool *b = NULL;
    zp_stats s;
    int i, attempt, same = 0;
    (void)state;
    zpt_misuse_reset(&g_log);
    zp_set_misuse_handler(zpt_misuse_record, &g_log);
    memset(&l, 0, sizeof(l));
    pthread_mutex_init(&l.lock, NULL);
    pthread_cond_init(&l.cond, NULL);
    for (i = 0; i < LIVE; i++) {
        args[i].l = &l;
        args[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, live_thread, &args[i]), 0);
    }

    /* the allocator wrapper hands the destroyed pool's memory to the next
     * pool (glibc does it often, not always; ASan and valgrind never soon) */
    for (attempt = 0; attempt < 3; attempt++) {
        if (b) {
            zp_pool_destroy(b);
            zpt_provider_free(pvb);
            zpt_provider_free(pva);
        }
        pva = zpt_provider_new();
        pvb = zpt_provider_new();
        b = destroy_and_recreate(&l, pva, pvb, &same);
        if (!same)
            fail_msg("attempt %d: the new pool is not at the destroyed pool's address", attempt);
        use_new_pool(&l, b, pvb);
    }

    /* the threads exit with caches of b: their buffers go back to b */
    pthread_mutex_lock(&l.lock);
    l.exit = 1;
    pthread_cond_broadcast(&l.cond);
    pthread_mutex_unlock(&l.lock);
    for (i = 0; i < LIVE; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_true(zpt_stats_consistent(b, pvb, &s));
    assert_int_equal(s.bytes_outstanding, 0);
    zp_trim(b, 0);
    assert_true(zpt_stats_consistent(b, pvb, &s));
    assert_int_equal(s.bytes_reserved, 0); /* every cached buffer came back */
    zp_pool_destroy(b);
    assert_int_equal(atomic_load(&pvb->bytes_live), 0);
    assert_int_equal(atomic_load(&pva->bad_unmaps), 0);
    assert_int_equal(atomic_load(&pvb->bad_unmaps), 0);
    zp_set_misuse_handler(NULL, NULL);
    zpt_provider_free(pva);
    zpt_provider_free(pvb);
    pthread_cond_destroy(&l.cond);
    pthread_mutex_destroy(&l.lock);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_churn),
        cmocka_unit_test(test_destroy_same_address),
    };
    if (argc > 1)
        g_threads = atoi(argv[1]);
    if (zpt_under_valgrind() && g_threads > 10 * WAVE)
        g_threads = 10 * WAVE; /* valgrind runs threads one at a time */
    if (g_threads < WAVE)
        g_threads = WAVE;
    return ZPT_RUN(tests);
}
