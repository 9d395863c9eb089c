/* Tests that statistics add up exactly, also under provider failure. */
#include "zp_test.h"

#define MAXC (1 * ZPT_MiB) /* max_class of the pools here: oversize is cheap */

/* The invariants of a snapshot of a quiet pool: those of every snapshot,
 * and bytes_reserved is what the provider has mapped. */
#define check_invariants(s, pv) zpt_assert_stats_mapped((s), atomic_load(&(pv)->bytes_live))

static void test_fresh_pool(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.max_class = MAXC, .pv = pv);
    zp_stats s;
    void *a, *b, *c;
    (void)state;
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.puts, 0);
    assert_int_equal(s.misuse, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_cached, 0);
    check_invariants(&s, pv);
    assert_int_equal(s.nclasses, 9); /* 4 KiB .. 1 MiB */
    assert_int_equal(s.classes[0].size, 4096);
    assert_int_equal(s.classes[8].size, MAXC);

    /* refills start at one buffer and double: the first get carves one,
     * the second misses again and carves two (handing out one), the third
     * is a cache hit on the other */
    a = zp_get(pool, 4096);
    assert_non_null(a);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.gets, 1);
    assert_int_equal(s.allocations, 1);
    assert_int_equal(s.cache_hits, 0);
    assert_int_equal(s.bytes_outstanding, 4096);
    assert_int_equal(s.bytes_cached, 0);
    assert_int_equal(s.classes[0].gets, 1);
    assert_int_equal(s.classes[0].allocations, 1);
    assert_int_equal(s.classes[0].bytes_outstanding, 4096);
    assert_true(s.bytes_reserved >= 4096);
    check_invariants(&s, pv);
    b = zp_get(pool, 4096);
    assert_non_null(b);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.gets, 2);
    assert_int_equal(s.cache_hits, 0);
    assert_int_equal(s.allocations, 2);
    assert_int_equal(s.bytes_outstanding, 8192);
    assert_int_equal(s.bytes_cached, 4096);
    assert_int_equal(s.classes[0].allocations, 2);
    check_invariants(&s, pv);
    c = zp_get(pool, 4096);
    assert_non_null(c);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.gets, 3);
    assert_int_equal(s.cache_hits, 1);
    assert_int_equal(s.allocations, 2);
    assert_int_equal(s.bytes_outstanding, 12288);
    assert_int_equal(s.bytes_cached, 0);
    assert_int_equal(s.classes[0].cache_hits, 1);
    check_invariants(&s, pv);
    zp_put(pool, a);
    zp_put(pool, b);
    zp_put(pool, c);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.puts, 3);
    assert_int_equal(s.bytes_outstanding, 0);
    check_invariants(&s, pv);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

/* Random sizes held and released in waves: every count exact. */
static void test_single_thread_exact(void **state)
{
    enum { HOLD = 300 };
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.max_class = MAXC, .pv = pv);
    void *held[HOLD];
    int over[HOLD];
    uint64_t rng = 7, gets = 0, puts = 0, outstanding = 0, oversize = 0;
    uint64_t discards = 0;
    zp_stats s;
    int wave, i;
    (void)state;
    memset(held, 0, sizeof(held));
    for (wave = 0; wave < 6; wave++) {
        for (i = 0; i < HOLD; i++) {
            size_t size;
            if (held[i])
                continue;
            /* log-uniform 1 B .. MAXC, oversize one time in 16 */
            size = (size_t)(zpt_rand(&rng) %
                            ((size_t)1 << (zpt_rand(&rng) % 21))) + 1;
            if (zpt_rand(&rng) % 16 == 0)
                size = MAXC + 1 + (size_t)(zpt_rand(&rng) % (MAXC / 4));
            held[i] = zp_get(pool, size);
            assert_non_null(held[i]);
            gets++;
            over[i] = size > MAXC;
            oversize += (uint64_t)over[i];
            outstanding += zp_capacity(pool, held[i]);
        }
        assert_int_equal(zpt_stats(pool, &s), 0);
        assert_int_equal(s.gets, gets);
        assert_int_equal(s.puts, puts);
        assert_int_equal(s.oversize, oversize);
        assert_int_equal(s.discards, discards);
        assert_int_equal(s.bytes_outstanding, outstanding);
        check_invariants(&s, pv);
        /* release a random ~half */
        for (i = 0; i < HOLD; i++) {
            if (!held[i] || (zpt_rand(&rng) & 1))
                continue;
            outstanding -= zp_capacity(pool, held[i]);
            zp_put(pool, held[i]);
            held[i] = NULL;
            puts++;
            discards += (uint64_t)over[i];
        }
        assert_int_equal(zpt_stats(pool, &s), 0);
        assert_int_equal(s.gets, gets);
        assert_int_equal(s.puts, puts);
        assert_int_equal(s.discards, discards);
        assert_int_equal(s.bytes_outstanding, outstanding);
        check_invariants(&s, pv);
    }
    for (i = 0; i < HOLD; i++)
        if (held[i]) {
            zp_put(pool, held[i]);
            puts++;
        }
    assert_int_equal(zpt_stats(pool, &s), 0);
    zpt_stats_print("single thread", &s);
    assert_int_equal(s.gets, gets);
    assert_int_equal(s.puts, puts);
    assert_int_equal(gets, puts);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.oversize, oversize);
    assert_int_equal(s.discards, oversize);
    assert_int_equal(s.misuse, 0);
    check_invariants(&s, pv);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

/* An oversize buffer: counted as oversize on get, as a discard on put, and
 * its memory is mapped for exactly as long as it is held. */
static void test_oversize(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.max_class = MAXC, .pv = pv);
    zp_stats s0, s1, s2;
    size_t cap, maps0, unmaps0;
    void *b;
    (void)state;
    zp_put(pool, zp_get(pool, 4096));
    assert_int_equal(zpt_stats(pool, &s0), 0);
    maps0 = atomic_load(&pv->maps);
    b = zp_get(pool, MAXC + 1);
    assert_non_null(b);
    cap = zp_capacity(pool, b);
    assert_true(cap >= MAXC + 1);
    assert_int_equal(atomic_load(&pv->maps), maps0 + 1);
    assert_int_equal(zpt_stats(pool, &s1), 0);
    assert_int_equal(s1.gets, s0.gets + 1);
    assert_int_equal(s1.oversize, s0.oversize + 1);
    assert_int_equal(s1.cache_hits, s0.cache_hits);
    assert_int_equal(s1.allocations, s0.allocations);
    assert_int_equal(s1.bytes_outstanding, s0.bytes_outstanding + cap);
    assert_int_equal(s1.bytes_reserved, s0.bytes_reserved + cap);
    check_invariants(&s1, pv);
    unmaps0 = atomic_load(&pv->unmaps);
    zp_put(pool, b);
    assert_int_equal(atomic_load(&pv->unmaps), unmaps0 + 1);
    assert_int_equal(zpt_stats(pool, &s2), 0);
    assert_int_equal(s2.puts, s1.puts + 1);
    assert_int_equal(s2.discards, s1.discards + 1);
    assert_int_equal(s2.bytes_outstanding, s0.bytes_outstanding);
    assert_int_equal(s2.bytes_reserved, s0.bytes_reserved);
    assert_int_equal(s2.bytes_cached, s0.bytes_cached);
    assert_true(s2.peak_reserved >= s0.bytes_reserved + cap);
    check_invariants(&s2, pv);
    zp_pool_destroy(pool);
    zpt_provider_free(pv);
}

/* ------------------------------------------------------- multi-threaded */

enum { NTHREADS = 4, OPS = 20000, THOLD = 64 };

typedef struct mt {
    zp_pool *pool;
    pthread_barrier_t held, release;
    /* per thread, published before the barrier */
    uint64_t gets[NTHREADS], puts[NTHREADS], outstanding[NTHREADS];
    atomic_int failures;
} mt;

typedef struct mt_arg {
    mt *m;
    int id;
} mt_arg;

static void *mt_worker(void *arg)
{
    mt_arg *a = arg;
    mt *m = a->m;
    void *held[THOLD];
    uint64_t rng = (uint64_t)a->id * 1000003u + 1, gets = 0, puts = 0;
    uint64_t outstanding = 0;
    int i, op;
    memset(held, 0, sizeof(held));
    for (op = 0; op < OPS; op++) {
        i = (int)(zpt_rand(&rng) % THOLD);
        if (held[i]) {
            outstanding -= zp_capacity(m->pool, held[i]);
            zp_put(m->pool, held[i]);
            held[i] = NULL;
            puts++;
        } else {
            size_t size = (size_t)(zpt_rand(&rng) % (MAXC / 8)) + 1;
            if (zpt_rand(&rng) % 64 == 0)
                size = MAXC + 1 + size; /* oversize now and then */
            held[i] = zp_get(m->pool, size);
            if (!held[i]) {
                atomic_fetch_add(&m->failures, 1);
                continue;
            }
            gets++;
            outstanding += zp_capacity(m->pool, held[i]);
        }
    }
    m->gets[a->id] = gets;
    m->puts[a->id] = puts;
    m->outstanding[a->id] = outstanding;
    pthread_barrier_wait(&m->held);    /* main reads stats now */
    pthread_barrier_wait(&m->release); /* then everything goes back */
    for (i = 0; i < THOLD; i++)
        if (held[i]) {
            zp_put(m->pool, held[i]);
            puts++;
        }
    m->puts[a->id] = puts;
    return NULL;
}

static void test_multi_thread(void **state)
{
    mt m;
    mt_arg args[NTHREADS];
    pthread_t t[NTHREADS];
    zpt_provider *pv = zpt_provider_new();
    zp_stats s;
    uint64_t gets = 0, puts = 0, outstanding = 0;
    size_t mapped;
    int i, rc;
    (void)state;
    memset(&m, 0, sizeof(m));
    m.pool = ZPT_POOL(.max_class = MAXC, .pv = pv);
    pthread_barrier_init(&m.held, NULL, NTHREADS + 1);
    pthread_barrier_init(&m.release, NULL, NTHREADS + 1);
    for (i = 0; i < NTHREADS; i++) {
        args[i].m = &m;
        args[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, mt_worker, &args[i]), 0);
    }
    pthread_barrier_wait(&m.held);
    /* the threads are alive and idle, holding buffers: their per-thread
       counters must be part of the sum. Snapshot now, assert after the
       joins (a failed assertion must not strand the threads). */
    for (i = 0; i < NTHREADS; i++) {
        gets += m.gets[i];
        puts += m.puts[i];
        outstanding += m.outstanding[i];
    }
    rc = zpt_stats(m.pool, &s);
    mapped = atomic_load(&pv->bytes_live);
    pthread_barrier_wait(&m.release);
    for (i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);

    assert_int_equal(rc, 0);
    zpt_stats_print("threads alive", &s);
    assert_int_equal(atomic_load(&m.failures), 0);
    assert_int_equal(s.gets, gets);
    assert_int_equal(s.puts, puts);
    assert_int_equal(s.bytes_outstanding, outstanding);
    zpt_assert_stats_mapped(&s, mapped);

    puts = 0;
    for (i = 0; i < NTHREADS; i++)
        puts += m.puts[i];
    assert_int_equal(zpt_stats(m.pool, &s), 0);
    zpt_stats_print("threads joined", &s);
    assert_int_equal(s.gets, gets);
    assert_int_equal(s.puts, puts);
    assert_int_equal(gets, puts);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.discards, s.oversize);
    check_invariants(&s, pv);
    zp_pool_destroy(m.pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    pthread_barrier_destroy(&m.held);
    pthread_barrier_destroy(&m.release);
    zpt_provider_free(pv);
}

/* -------------------------------------------------------- struct_size */

static void test_struct_size(void **state)
{
    zp_pool *pool = ZPT_POOL(.max_class = MAXC);
    zp_stats s;
    unsigned char *raw = (unsigned char *)&s;
    size_t partial = offsetof(zp_stats, cache_hits), i;
    int rc;
    (void)state;
    zp_put(pool, zp_get(pool, 1));
    zp_put(pool, zp_get(pool, 1));

    memset(&s, 0, sizeof(s));
    s.struct_size = 0;
    assert_int_equal(zp_stats_read(pool, &s), -EINVAL);

    /* an older, shorter struct: either refused, or filled only so far */
    memset(&s, 0xAB, sizeof(s));
    s.struct_size = partial;
    rc = zp_stats_read(pool, &s);
    assert_true(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        assert_int_equal(s.gets, 2);
        assert_int_equal(s.puts, 2);
    }
    for (i = partial; i < sizeof(s); i++)
        if (raw[i] != 0xAB)
            fail_msg("zp_stats_read wrote byte %zu beyond struct_size %zu", i,
                     partial);

    memset(&s, 0xCD, sizeof(s));
    s.struct_size = sizeof(size_t);
    rc = zp_stats_read(pool, &s);
    assert_true(rc == 0 || rc == -EINVAL);
    for (i = sizeof(size_t); i < sizeof(s); i++)
        if (raw[i] != 0xCD)
            fail_msg("zp_stats_read wrote byte %zu beyond struct_size %zu", i,
                     sizeof(size_t));
    zp_pool_destroy(pool);
}

/* --------------------------------------------------- provider failure */

static void test_provider_fails_all(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool;
    zp_stats s;
    void *b;
    (void)state;
    atomic_store(&pv->fail_all, 1);
    pool = ZPT_POOL(.max_class = MAXC, .pv = pv);

    errno = 0;
    b = zp_get(pool, 4096);
    assert_null(b);
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    b = zp_get(pool, MAXC * 2); /* oversize */
    assert_null(b);
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    b = zp_get(pool, 4096); /* again: the failure left nothing behind */
    assert_null(b);
    assert_int_equal(errno, ENOMEM);
    assert_true(atomic_load(&pv->injected) >= 3);

    assert_int_equal(zpt_stats(pool, &s), 0);
    zpt_stats_print("all maps failing", &s);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_reserved, 0);
    assert_int_equal(s.puts, 0);
    check_invariants(&s, pv);

    /* the provider recovers: so does the pool */
    atomic_store(&pv->fail_all, 0);
    b = zp_get(pool, 4096);
    assert_non_null(b);
    zpt_fill(b, 4096, 1);
    assert_int_equal(zp_capacity(pool, b), 4096);
    zp_put(pool, b);
    b = zp_get(pool, MAXC * 2);
    assert_non_null(b);
    zp_put(pool, b);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.puts, 2);
    assert_int_equal(s.discards, 1);
    check_invariants(&s, pv);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* The nth map fails (n = 1..8): the gets that hit it fail with ENOMEM,
 * retrying them succeeds, and at destroy every map has been unmapped. */
static void test_provider_fails_nth(void **state)
{
    /* one buffer of every class 4 KiB .. 1 MiB, then two oversize */
    static const size_t sizes[] = {4096,   8192,   16384,       32768,
                                   65536,  131072, 262144,      524288,
                                   MAXC,   MAXC + 1, 3 * MAXC};
    enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
    size_t nth;
    (void)state;
    for (nth = 1; nth <= 8; nth++) {
        zpt_provider *pv = zpt_provider_new();
        zp_config cfg;
        zp_pool *pool = NULL;
        void *held[NS];
        zp_stats s;
        uint64_t outstanding = 0;
        int failed = 0, rc;
        size_t i;
        atomic_store(&pv->fail_nth, nth);
        ZPT_CONFIG(&cfg, .max_class = MAXC, .pv = pv);
        rc = zp_pool_create(&cfg, &pool);
        if (rc != 0) {
            /* creation may itself map; then it must fail cleanly */
            assert_int_equal(rc, -ENOMEM);
            assert_int_equal(atomic_load(&pv->maps),
                             atomic_load(&pv->unmaps));
            zpt_provider_free(pv);
            continue;
        }
        for (i = 0; i < NS; i++) {
            errno = 0;
            held[i] = zp_get(pool, sizes[i]);
            if (!held[i]) {
                assert_int_equal(errno, ENOMEM);
                failed++;
                held[i] = zp_get(pool, sizes[i]); /* map n+1 succeeds */
                if (!held[i])
                    fail_msg("n=%zu: retry of size %zu failed (errno %d)",
                             nth, sizes[i], errno);
            }
            zpt_fill(held[i], sizes[i], i);
            outstanding += zp_capacity(pool, held[i]);
        }
        assert_int_equal(atomic_load(&pv->injected), 1);
        assert_int_equal(failed, 1);
        assert_int_equal(zpt_stats(pool, &s), 0);
        assert_int_equal(s.bytes_outstanding, outstanding);
        check_invariants(&s, pv);
        for (i = 0; i < NS; i++) {
            assert_int_equal(zpt_check(held[i], sizes[i], i), SIZE_MAX);
            zp_put(pool, held[i]);
        }
        assert_int_equal(zpt_stats(pool, &s), 0);
        assert_int_equal(s.bytes_outstanding, 0);
        assert_int_equal(s.puts, NS);
        check_invariants(&s, pv);
        zp_pool_destroy(pool);
        if (atomic_load(&pv->maps) != atomic_load(&pv->unmaps))
            fail_msg("n=%zu: %zu maps but %zu unmaps at destroy", nth,
                     atomic_load(&pv->maps), atomic_load(&pv->unmaps));
        assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
        assert_int_equal(atomic_load(&pv->bad_args), 0);
        zpt_provider_free(pv);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_pool),
        cmocka_unit_test(test_single_thread_exact),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_multi_thread),
        cmocka_unit_test(test_struct_size),
        cmocka_unit_test(test_provider_fails_all),
        cmocka_unit_test(test_provider_fails_nth),
    };
    return ZPT_RUN(tests);
}
