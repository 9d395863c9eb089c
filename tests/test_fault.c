/* Provider failure at every call site: a clean ENOMEM, nothing leaked, exact stats, recovery. */
/*
 * A workload that maps K regions is replayed with the Nth map failing, for
 * N = 1..K, under several configurations. The failing call returns
 * NULL/ENOMEM with nothing taken, nothing leaks, stats stay exact, and the
 * pool works once the provider recovers. Also: a full outage while threads
 * keep going.
 */
#include "zp_test.h"

enum op_kind { GET, BATCH, TIMED, PUT_LAST, PUT_BATCH_LAST, TRIM };

typedef struct op {
    enum op_kind kind;
    size_t size;
    size_t n; /* BATCH: buffers; PUT_*: how many of the latest to put */
} op;

/* Every call site of the provider's map: slabs of small and big classes
 * (single get, cached batch, direct batch, timed get), oversize (single,
 * batch, timed), and refills after puts and a trim unmapped slabs. */
static const op workload[] = {
    {GET, 4096, 0},
    {GET, 4096, 0},
    {GET, 65536, 0},
    {GET, 1 << 20, 0},
    {BATCH, 4096, 20},       /* through the thread cache */
    {BATCH, 8192, 100},      /* larger than the cache: straight to the depot */
    {GET, 9 << 20, 0},       /* oversize (max_class 8 MiB) */
    {BATCH, 10 << 20, 3},    /* oversize batch: all or nothing */
    {TIMED, 2 << 20, 0},
    {TIMED, 12 << 20, 0},    /* oversize, timed */
    {PUT_LAST, 0, 3},
    {GET, 4096, 0},
    {BATCH, 4096, 40},       /* needs a second slab */
    {GET, 8 << 20, 0},       /* the largest class: one buffer per slab */
    {GET, 8 << 20, 0},
    {PUT_BATCH_LAST, 0, 2},
    {TRIM, 0, 0},            /* unmaps what is wholly idle */
    {GET, 8 << 20, 0},       /* maps again */
    {BATCH, 65536, 12},
    {PUT_BATCH_LAST, 0, 150},
    {TRIM, 0, 0},
    {BATCH, 4096, 64},
    {GET, 3 << 20, 0},
};
#define NOPS (sizeof(workload) / sizeof(workload[0]))

#define MAX_HELD 512

typedef struct run {
    zp_pool *pool;
    zpt_provider *pv;
    void *held[MAX_HELD];
    size_t cap[MAX_HELD];
    size_t nheld;
    uint64_t gets;       /* buffers handed out, as stats should count them */
    int failed_ops;      /* ops that failed */
    int failed_errno;    /* errno (or -rc) of the first failure */
} run;

/* Marks a buffer at its start, middle and end (big buffers stay cheap). */
static void mark(void *b, size_t cap, uint64_t seed)
{
    unsigned char *p = b;
    zpt_fill(p, 64, seed);
    zpt_fill(p + cap / 2, 64, seed + 1);
    zpt_fill(p + cap - 64, 64, seed + 2);
}

static int marked(const void *b, size_t cap, uint64_t seed)
{
    const unsigned char *p = b;
    return zpt_check(p, 64, seed) == SIZE_MAX &&
           zpt_check(p + cap / 2, 64, seed + 1) == SIZE_MAX &&
           zpt_check(p + cap - 64, 64, seed + 2) == SIZE_MAX;
}

static void hold(run *r, void *b, size_t size)
{
    size_t cap = zp_capacity(r->pool, b);
    if (cap < size)
        fail_msg("capacity %zu < size %zu", cap, size);
    assert_true(r->nheld < MAX_HELD);
    r->held[r->nheld] = b;
    r->cap[r->nheld] = cap;
    mark(b, cap, r->nheld);
    r->nheld++;
    r->gets++;
}

static void failed(run *r, int err, const char *what, size_t step)
{
    if (err != ENOMEM)
        fail_msg("step %zu (%s): errno %d, want ENOMEM", step, what, err);
    if (r->failed_ops++ == 0)
        r->failed_errno = err;
}

static void put_last(run *r, size_t n, int batch)
{
    if (n > r->nheld)
        n = r->nheld;
    for (size_t i = r->nheld - n; i < r->nheld; i++)
        if (!marked(r->held[i], r->cap[i], i))
            fail_msg("buffer %zu (%p) lost its contents", i, r->held[i]);
    if (batch)
        zp_put_batch(r->pool, r->held + r->nheld - n, n);
    else
        for (size_t i = r->nheld; i-- > r->nheld - n;)
            zp_put(r->pool, r->held[i]);
    r->nheld -= n;
}

static void play(run *r)
{
    for (size_t i = 0; i < NOPS; i++) {
        const op *o = &workload[i];
        void *b, *bufs[128];
        int rc;
        switch (o->kind) {
        case GET:
        case TIMED:
            errno = 0;
            b = o->kind == GET ? zp_get(r->pool, o->size)
                               : zp_get_timed(r->pool, o->size, 0);
            if (b)
                hold(r, b, o->size);
            else
                failed(r, errno, o->kind == GET ? "zp_get" : "zp_get_timed", i);
            break;
        case BATCH:
            assert_true(o->n <= 128);
            memset(bufs, 0, sizeof(bufs));
            rc = zp_get_batch(r->pool, o->size, bufs, o->n);
            if (rc == 0) {
                for (size_t k = 0; k < o->n; k++)
                    hold(r, bufs[k], o->size);
            } else {
                failed(r, -rc, "zp_get_batch", i);
            }
            break;
        case PUT_LAST:
        case PUT_BATCH_LAST:
            put_last(r, o->n, o->kind == PUT_BATCH_LAST);
            break;
        case TRIM:
            zp_trim(r->pool, 0);
            break;
        }
    }
}

/* Sum of the capacities of the class buffers we hold, and of oversize. */
static uint64_t held_bytes(const run *r)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < r->nheld; i++)
        sum += r->cap[i];
    return sum;
}

typedef struct setup_cfg {
    const char *name;
    unsigned cache_depth;
    int debug;
    size_t max_bytes;
} setup_cfg;

/* Plays the workload with map call `fail_at` failing (0: none); returns
 * how many map calls it made. */
static size_t play_with_failure(const setup_cfg *sc, size_t fail_at)
{
    run r;
    zp_stats s;
    size_t calls;
    memset(&r, 0, sizeof(r));
    r.pv = zpt_provider_new();
    r.pool = ZPT_POOL(.max_class = 8 << 20, .cache_depth = ZPT_EXACT(sc->cache_depth),
                      .debug = sc->debug, .max_bytes = sc->max_bytes, .pv = r.pv);
    atomic_store(&r.pv->fail_nth, fail_at);
    play(&r);
    calls = atomic_load(&r.pv->map_calls);

    if (fail_at == 0 && r.failed_ops != 0)
        fail_msg("%s: %d ops failed without injection", sc->name, r.failed_ops);
    if (fail_at != 0 && fail_at <= calls) {
        assert_int_equal(atomic_load(&r.pv->injected), 1);
        /* one failed map fails exactly one call, with ENOMEM */
        if (r.failed_ops != 1)
            fail_msg("%s, map %zu failing: %d calls failed, want 1", sc->name,
                     fail_at, r.failed_ops);
        assert_int_equal(r.failed_errno, ENOMEM);
    }
    atomic_store(&r.pv->fail_nth, 0);

    /* stats are exact: what succeeded is counted, what failed is not */
    if (!zpt_stats_consistent(r.pool, r.pv, &s))
        fail_msg("%s, map %zu failing: inconsistent stats", sc->name, fail_at);
    if (s.gets != r.gets || s.bytes_outstanding != held_bytes(&r))
        fail_msg("%s, map %zu failing: gets %llu outstanding %llu, want %llu and "
                 "%llu", sc->name, fail_at, (unsigned long long)s.gets,
                 (unsigned long long)s.bytes_outstanding,
                 (unsigned long long)r.gets, (unsigned long long)held_bytes(&r));
    assert_int_equal(s.misuse, 0);
    if (sc->max_bytes)
        assert_true(s.bytes_reserved <= sc->max_bytes);

    /* the provider is back: every kind of call works again */
    {
        void *b[4];
        assert_non_null(b[0] = zp_get(r.pool, 4096));
        assert_non_null(b[1] = zp_get(r.pool, 8 << 20));
        assert_non_null(b[2] = zp_get(r.pool, 20 << 20));
        assert_int_equal(zp_get_batch(r.pool, 16384, (void **)&b[3], 1), 0);
        for (int k = 0; k < 4; k++)
            hold(&r, b[k], 1);
    }

    /* everything back, trimmed: nothing stays mapped */
    put_last(&r, r.nheld, 1);
    zp_trim(r.pool, 0);
    if (!zpt_stats_consistent(r.pool, r.pv, &s))
        fail_msg("%s, map %zu failing: inconsistent stats at the end", sc->name,
                 fail_at);
    assert_int_equal(s.bytes_outstanding, 0);
    if (s.bytes_reserved != 0)
        fail_msg("%s, map %zu failing: %llu bytes still mapped after putting "
                 "everything and trimming", sc->name, fail_at,
                 (unsigned long long)s.bytes_reserved);
    assert_int_equal(s.puts, s.gets);
    zp_pool_destroy(r.pool);
    assert_int_equal(atomic_load(&r.pv->maps), atomic_load(&r.pv->unmaps));
    assert_int_equal(atomic_load(&r.pv->bytes_live), 0);
    assert_int_equal(atomic_load(&r.pv->bad_unmaps), 0);
    assert_int_equal(atomic_load(&r.pv->bad_args), 0);
    zpt_provider_free(r.pv);
    return calls;
}

static void every_call_site(const setup_cfg *sc)
{
    size_t k = play_with_failure(sc, 0), n;
    print_message("# %s: the workload maps %zu regions\n", sc->name, k);
    assert_true(k >= 10);
    for (n = 1; n <= k + 1; n++)
        play_with_failure(sc, n);
}

static void test_default(void **state)
{
    static const setup_cfg sc = {"default", 32, 0, 0};
    (void)state;
    every_call_site(&sc);
}

static void test_no_thread_cache(void **state)
{
    static const setup_cfg sc = {"cache_depth 0", 0, 0, 0};
    (void)state;
    every_call_site(&sc);
}

static void test_small_cache(void **state)
{
    static const setup_cfg sc = {"cache_depth 2", 2, 0, 0};
    (void)state;
    every_call_site(&sc);
}

static void test_debug2(void **state)
{
    static const setup_cfg sc = {"debug 2", 32, 2, 0};
    (void)state;
    every_call_site(&sc);
}

static void test_budget(void **state)
{
    static const setup_cfg sc = {"max_bytes 1 GiB", 32, 1, (size_t)1 << 30};
    (void)state;
    every_call_site(&sc);
}

/* A shared budget sees every failed reservation given back. */
static void test_budget_released_on_failure(void **state)
{
    zp_budget *budget = zpt_budget_new(64 << 20);
    zp_budget_stats bs;
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.budget = budget, .pv = pv);
    zp_stats s;
    void *b;
    int i;
    (void)state;
    atomic_store(&pv->fail_all, 1);
    for (i = 0; i < 20; i++) {
        errno = 0;
        assert_null(zp_get(pool, (size_t)4096 << (i % 12)));
        assert_int_equal(errno, ENOMEM);
    }
    errno = 0;
    assert_null(zp_get(pool, 100 << 20)); /* larger than the budget */
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(zpt_budget_stats(budget, &bs), 0);
    assert_int_equal(bs.bytes_reserved, 0);
    assert_true(zpt_stats_consistent(pool, pv, &s));
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.bytes_reserved, 0);
    atomic_store(&pv->fail_all, 0);
    assert_non_null(b = zp_get(pool, 4096));
    assert_int_equal(zp_budget_read(budget, &bs), 0);
    assert_int_equal(bs.bytes_reserved, atomic_load(&pv->bytes_live));
    zp_put(pool, b);
    zp_pool_destroy(pool);
    zp_budget_destroy(budget);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* ------------------------------------------------ outage under threads */

typedef struct outage {
    zp_pool *pool;
    atomic_int stop;
    atomic_int bad_errno;
    atomic_int corrupt;
    atomic_ulong got, failed;
} outage;

static void *outage_worker(void *arg)
{
    outage *o = arg;
    uint64_t rng = (uint64_t)(uintptr_t)&rng;
    void *held[8] = {0};
    size_t sizes[8] = {0};
    unsigned long ops = 0;
    while (!atomic_load(&o->stop)) {
        unsigned i = (unsigned)(zpt_rand(&rng) % 8);
        if (++ops % 256 == 0)
            zp_trim(o->pool, 0); /* own cache too: refills need slabs */
        if (held[i]) {
            if (zpt_check(held[i], 64, (uint64_t)(uintptr_t)held[i]) != SIZE_MAX)
                atomic_fetch_add(&o->corrupt, 1);
            zp_put(o->pool, held[i]);
            held[i] = NULL;
        } else {
            sizes[i] = (size_t)4096 << (zpt_rand(&rng) % 10);
            errno = 0;
            held[i] = zp_get(o->pool, sizes[i]);
            if (held[i]) {
                zpt_fill(held[i], 64, (uint64_t)(uintptr_t)held[i]);
                atomic_fetch_add(&o->got, 1);
            } else {
                if (errno != ENOMEM)
                    atomic_fetch_add(&o->bad_errno, 1);
                atomic_fetch_add(&o->failed, 1);
            }
        }
    }
    for (unsigned i = 0; i < 8; i++)
        zp_put(o->pool, held[i]);
    return NULL;
}

static void test_outage_under_threads(void **state)
{
    outage o;
    pthread_t t[3];
    zpt_provider *pv = zpt_provider_new();
    zp_stats s;
    int i, phase;
    (void)state;
    memset(&o, 0, sizeof(o));
    o.pool = ZPT_POOL(.max_cached_bytes = 8 << 20, /* trims under way too */
                      .pv = pv);
    for (i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, outage_worker, &o), 0);
    /* up, down, up, down, up */
    for (phase = 0; phase < 5; phase++) {
        atomic_store(&pv->fail_all, phase & 1);
        /* trimming makes the workers need fresh slabs, outage or not */
        for (i = 0; i < 20; i++) {
            zp_trim(o.pool, 0);
            usleep(5 * 1000);
        }
    }
    atomic_store(&o.stop, 1);
    for (i = 0; i < 3; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    print_message("# outage: %lu gets served, %lu refused, %zu maps refused\n",
                  (unsigned long)atomic_load(&o.got),
                  (unsigned long)atomic_load(&o.failed),
                  (size_t)atomic_load(&pv->injected));
    assert_int_equal(atomic_load(&o.bad_errno), 0);
    assert_int_equal(atomic_load(&o.corrupt), 0);
    assert_true(atomic_load(&pv->injected) > 0);
    assert_true(zpt_stats_consistent(o.pool, pv, &s));
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.gets, atomic_load(&o.got));
    assert_int_equal(s.puts, s.gets);
    assert_int_equal(s.misuse, 0);
    zp_pool_destroy(o.pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_no_thread_cache),
        cmocka_unit_test(test_small_cache),
        cmocka_unit_test(test_debug2),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_budget_released_on_failure),
        cmocka_unit_test(test_outage_under_threads),
    };
    unsetenv("ZEROPOOL_DEBUG");
    return ZPT_RUN(tests);
}
