/* Tests the contention counter: 0 without conflicts, counted per class when threads fight over a depot. */
#include "zp_test.h"

/*
 * contention counts depot lock acquisitions that found the lock already
 * held. A single thread can never find it held, whatever it does (reading
 * stats included); two threads on different classes use different locks;
 * two threads on one class's depot must eventually collide. The collision
 * tests run in rounds (threads start together at a barrier, the stats are
 * read only after they are joined, so the reader never causes a conflict)
 * until one is counted or a generous bound of rounds has passed.
 */
#define MAXC (1 * ZPT_MiB)

static uint64_t class_contention_sum(const zp_stats *s)
{
    uint64_t sum = 0;
    uint32_t c;
    for (c = 0; c < s->nclasses; c++)
        sum += s->classes[c].contention;
    return sum;
}

static void expect_no_contention(const zp_stats *s, const char *what)
{
    if (s->contention != 0 || class_contention_sum(s) != 0) {
        zpt_stats_print_classes(what, s);
        fail_msg("%s: contention %llu without any conflict", what,
                 (unsigned long long)s->contention);
    }
}

/* ------------------------------------------------------- single thread */

/* Everything one thread can do: singles, batches through the cache and
 * past it, oversize, overflowing caches, trims, stats reads and writes. */
static void workload(zp_pool *pool, uint64_t seed)
{
    enum { N = 100 };
    void *bufs[N];
    FILE *null = fopen("/dev/null", "w");
    uint64_t rng = seed;
    zp_stats s;
    int round, i;
    assert_non_null(null);
    for (round = 0; round < 30; round++) {
        size_t size = (size_t)4096 << (zpt_rand(&rng) % 9);
        size_t n = 1 + (size_t)(zpt_rand(&rng) % N);
        assert_int_equal(zp_get_batch(pool, size, bufs, n), 0);
        zp_put_batch(pool, bufs, n);
        for (i = 0; i < N; i++)
            bufs[i] = zp_get(pool, (size_t)4096 << (i % 3));
        s = zpt_read(pool);
        for (i = 0; i < N; i++)
            zp_put(pool, bufs[i]);
        bufs[0] = zp_get(pool, 2 * MAXC);
        zp_put(pool, bufs[0]);
        assert_int_equal(zp_stats_write(pool, null, ZP_FORMAT_PROMETHEUS), 0);
        if (round % 10 == 9)
            zp_trim(pool, 0);
    }
    (void)s;
    fclose(null);
}

static void test_single_thread(void **state)
{
    unsigned depths[3] = {0, 1, 32};
    int k;
    (void)state;
    for (k = 0; k < 3; k++) {
        zp_pool *pool = ZPT_POOL(.max_class = MAXC, .cache_depth = ZPT_EXACT(depths[k]));
        char what[64];
        zp_stats s;
        workload(pool, (uint64_t)k + 1);
        s = zpt_read(pool);
        assert_true(s.gets > 1000);
        snprintf(what, sizeof what, "one thread, cache_depth %u", depths[k]);
        expect_no_contention(&s, what);
        zp_pool_destroy(pool);
    }
}

/* ------------------------------------------------------------- threads */

enum { MODE_SINGLES, MODE_BATCHES };

typedef struct fight {
    zp_pool *pool;
    pthread_barrier_t start;
    int mode;
    size_t size[2];   /* class each thread works on */
    int ops;          /* per thread per round */
    atomic_int failures;
} fight;

typedef struct fighter {
    fight *f;
    int id;
} fighter;

static void *fighter_main(void *arg)
{
    fighter *me = arg;
    fight *f = me->f;
    size_t size = f->size[me->id];
    void *bufs[40];
    int op;
    pthread_barrier_wait(&f->start);
    for (op = 0; op < f->ops; op++) {
        if (f->mode == MODE_SINGLES) {
            /* two gets then two puts: with cache_depth 0 or 1 each of them
             * (or every other one) goes to the depot */
            void *a = zp_get(f->pool, size), *b = zp_get(f->pool, size);
            if (!a || !b) {
                atomic_fetch_add(&f->failures, 1);
                return NULL;
            }
            zp_put(f->pool, a);
            zp_put(f->pool, b);
        } else {
            /* bigger than the cache: straight to the depot and back */
            if (zp_get_batch(f->pool, size, bufs, 40) != 0) {
                atomic_fetch_add(&f->failures, 1);
                return NULL;
            }
            zp_put_batch(f->pool, bufs, 40);
        }
    }
    return NULL;
}

/* Runs rounds of two threads until contention is counted or max_rounds;
 * returns the final stats. */
static zp_stats run_rounds(fight *f, int max_rounds, int *rounds_run)
{
    fighter me[2];
    pthread_t t[2];
    zp_stats s;
    int round, i;
    memset(&s, 0, sizeof s);
    for (round = 0; round < max_rounds; round++) {
        pthread_barrier_init(&f->start, NULL, 2);
        for (i = 0; i < 2; i++) {
            me[i].f = f;
            me[i].id = i;
            assert_int_equal(pthread_create(&t[i], NULL, fighter_main, &me[i]), 0);
        }
        for (i = 0; i < 2; i++)
            assert_int_equal(pthread_join(t[i], NULL), 0);
        pthread_barrier_destroy(&f->start);
        assert_int_equal(atomic_load(&f->failures), 0);
        s = zpt_read(f->pool);
        if (s.contention > 0)
            break;
    }
    *rounds_run = round + 1;
    return s;
}

static void expect_conflicts_in(const zp_stats *s, size_t size, int rounds, const char *what)
{
    int c = zpt_class(s, size);
    uint32_t k;
    assert_true(c >= 0);
    fprintf(stderr, "# %s: contention %llu after %d round(s)\n", what,
            (unsigned long long)s->contention, rounds);
    if (s->contention == 0)
        fail_msg("%s: two threads on one depot, %d rounds, and no contention counted",
                 what, rounds);
    if (s->classes[c].contention != s->contention || class_contention_sum(s) != s->contention) {
        zpt_stats_print_classes(what, s);
        fail_msg("%s: contention is not all in class %zu, or classes do not sum to total",
                 what, size);
    }
    for (k = 0; k < s->nclasses; k++)
        if ((int)k != c && s->classes[k].contention)
            fail_msg("%s: contention in class %llu nobody shared", what,
                     (unsigned long long)s->classes[k].size);
}

static void fight_one(unsigned depth, int mode, const char *what)
{
    fight f;
    zp_stats s, after;
    int rounds, i;
    memset(&f, 0, sizeof f);
    f.pool = ZPT_POOL(.max_class = MAXC, .cache_depth = ZPT_EXACT(depth));
    f.mode = mode;
    f.size[0] = f.size[1] = 8192;
    f.ops = 50000;
    atomic_init(&f.failures, 0);
    s = run_rounds(&f, 100, &rounds);
    expect_conflicts_in(&s, 8192, rounds, what);
    /* one thread alone adds nothing */
    for (i = 0; i < 2000; i++)
        zp_put(f.pool, zp_get(f.pool, 8192));
    after = zpt_read(f.pool);
    assert_int_equal(after.contention, s.contention);
    /* and a reset starts it from 0 */
    zp_stats_reset(f.pool);
    after = zpt_read(f.pool);
    assert_int_equal(after.contention, 0);
    assert_int_equal(class_contention_sum(&after), 0);
    zp_pool_destroy(f.pool);
}

static void test_no_cache_singles(void **state)
{
    (void)state;
    fight_one(0, MODE_SINGLES, "cache_depth 0, single gets and puts");
}

static void test_depth_one_singles(void **state)
{
    (void)state;
    fight_one(1, MODE_SINGLES, "cache_depth 1, single gets and puts");
}

static void test_batches(void **state)
{
    (void)state;
    fight_one(32, MODE_BATCHES, "default cache, batches past the cache");
}

/* Two threads on two different classes share no depot lock: 0. */
static void test_disjoint_classes(void **state)
{
    fight f;
    zp_stats s;
    int rounds;
    (void)state;
    memset(&f, 0, sizeof f);
    f.pool = ZPT_POOL(.max_class = MAXC, .cache_depth = ZPT_ZERO);
    f.mode = MODE_SINGLES;
    f.size[0] = 4096;
    f.size[1] = 65536;
    f.ops = 20000;
    atomic_init(&f.failures, 0);
    s = run_rounds(&f, 3, &rounds);
    assert_true(s.gets >= 2u * 2 * 20000);
    expect_no_contention(&s, "two threads, different classes");
    zp_pool_destroy(f.pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_thread),
        cmocka_unit_test(test_disjoint_classes),
        cmocka_unit_test(test_no_cache_singles),
        cmocka_unit_test(test_depth_one_singles),
        cmocka_unit_test(test_batches),
    };
    return ZPT_RUN(tests);
}
