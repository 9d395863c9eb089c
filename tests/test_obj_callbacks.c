/* Where object callbacks run: init on the getting thread; init, reset and fini with no library lock held (they use other pools, handles, the pool's own stats, the registry). */
/*
 * A deadlock here means a callback ran while the library held a lock the
 * callback's own calls need; the watchdog turns it into a failure naming
 * the stage. Each constructed object holds a 4 KiB sub-buffer of a byte
 * pool, got by init and put back by fini, so at every quiet point that
 * pool's outstanding bytes are exactly (inits - finis) x 4 KiB.
 */
#include "zp_test.h"

typedef struct obj {
    unsigned char stamp[ZPT_OBJ_STAMP];
    void *sub;              /* a buffer of the byte pool, from init */
    pthread_t constructor;  /* the thread init ran on */
    uint64_t payload;
} obj;

#define SIZE 200
#define SUB 4096

typedef struct ctx {
    zp_pool *objs;          /* the object pool (its own stats are read) */
    zp_pool *bytes;         /* the other pool */
    zp_cache *handle;       /* a handle of the other pool, or NULL */
    int registry_probes;    /* how many callbacks still create a scratch pool */
    int read_own_stats;     /* callbacks read the object pool's stats */
    int destroying;         /* zp_pool_destroy of the object pool is running */
    atomic_int wrong_thread;    /* inits not on a getting thread */
    atomic_int failures;        /* a call inside a callback failed */
} ctx;

static ctx g;
static _Thread_local int t_getting; /* this thread is inside a get */

/* A pool made and destroyed: takes the registry lock. */
static void probe_registry(void)
{
    zp_pool *scratch = NULL;
    zp_config cfg;
    void *b;
    zp_config_init(&cfg);
    cfg.max_class = 64 * ZPT_KiB;
    if (zp_pool_create(&cfg, &scratch) != 0) {
        atomic_fetch_add(&g.failures, 1);
        return;
    }
    b = zp_get(scratch, 4096);
    if (b == NULL)
        atomic_fetch_add(&g.failures, 1);
    zp_put(scratch, b);
    zp_pool_destroy(scratch);
}

static void use_other_pool(void)
{
    void *tmp = zp_get(g.bytes, SUB);
    if (tmp == NULL)
        atomic_fetch_add(&g.failures, 1);
    zp_put(g.bytes, tmp);
}

static void read_own_stats(void)
{
    zp_stats s;
    if (g.read_own_stats && !g.destroying && zpt_stats(g.objs, &s) != 0)
        atomic_fetch_add(&g.failures, 1);
}

static int hook_init(void *p, zpt_objtype *ot)
{
    obj *o = p;
    (void)ot;
    if (!t_getting)
        atomic_fetch_add(&g.wrong_thread, 1);
    o->constructor = pthread_self();
    use_other_pool();
    read_own_stats();
    if (g.registry_probes > 0) {
        g.registry_probes--;
        probe_registry();
    }
    o->sub = g.handle ? zp_cache_get(g.handle, SUB) : zp_get(g.bytes, SUB);
    if (o->sub == NULL)
        return ENOMEM;
    memset(o->sub, 0x5C, 64);
    return 0;
}

static void hook_reset(void *p, zpt_objtype *ot)
{
    obj *o = p;
    (void)ot;
    o->payload = 0;
    use_other_pool();
    read_own_stats();
}

static void hook_fini(void *p, zpt_objtype *ot)
{
    obj *o = p;
    (void)ot;
    if (o->sub == NULL || !zpt_all_bytes(o->sub, 64, 0x5C)) {
        atomic_fetch_add(&g.failures, 1);
        return;
    }
    read_own_stats();
    if (g.registry_probes > 0) {
        g.registry_probes--;
        probe_registry();
    }
    zp_put(g.bytes, o->sub); /* any thread may put */
    o->sub = NULL;
}

static zpt_objtype *setup_type(void)
{
    zpt_objtype *ot = zpt_objtype_new(SIZE, 8, ZPT_OBJ_ALL);
    ot->on_init = hook_init;
    ot->on_reset = hook_reset;
    ot->on_fini = hook_fini;
    return ot;
}

static void setup_ctx(zp_pool *objs, zp_pool *bytes)
{
    memset(&g, 0, sizeof g);
    g.objs = objs;
    g.bytes = bytes;
    g.read_own_stats = 1;
}

/* The byte pool lends exactly one sub-buffer per constructed object. */
#define check_subs(ot) check_subs_at(__FILE__, __LINE__, (ot))
static void check_subs_at(const char *file, int line, zpt_objtype *ot)
{
    zp_stats s = zpt_read(g.bytes);
    uint64_t live = atomic_load(&ot->inits) - atomic_load(&ot->finis);
    if (s.bytes_outstanding != live * SUB)
        zpt_fail_at(file, line, "the byte pool lends %llu bytes for %llu constructed objects",
                    (unsigned long long)s.bytes_outstanding, (unsigned long long)live);
    if (atomic_load(&g.failures))
        zpt_fail_at(file, line, "%d calls inside callbacks failed", atomic_load(&g.failures));
    if (atomic_load(&g.wrong_thread))
        zpt_fail_at(file, line, "init ran %d times on a thread that was not getting",
                    atomic_load(&g.wrong_thread));
    zpt_assert_objtype_clean_at(file, line, ot);
}

static void *get1(zp_pool *pool)
{
    void *p;
    t_getting = 1;
    p = zp_get(pool, SIZE);
    t_getting = 0;
    return p;
}

static void *hget1(zp_cache *h)
{
    void *p;
    t_getting = 1;
    p = zp_cache_get(h, SIZE);
    t_getting = 0;
    return p;
}

static int getn(zp_pool *pool, void **b, size_t n)
{
    int rc;
    t_getting = 1;
    rc = zp_get_batch(pool, SIZE, b, n);
    t_getting = 0;
    return rc;
}

/* One thread through every door and every release path. */
static void run_doors(int init_uses_handle)
{
    zp_pool *bytes = ZPT_POOL(.max_class = 64 * ZPT_KiB);
    zpt_objtype *ot = setup_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type);
    zp_cache *h = NULL;
    void *o[300];
    int i;
    setup_ctx(pool, bytes);
    if (init_uses_handle)
        assert_int_equal(zp_cache_create(bytes, &g.handle), 0);
    g.registry_probes = 4;

    zpt_watchdog(60, "single gets and puts");
    for (i = 0; i < 300; i++)
        assert_non_null(o[i] = get1(pool));
    for (i = 0; i < 300; i++)
        zp_put(pool, o[i]);
    check_subs(ot);

    zpt_watchdog(60, "batches");
    assert_int_equal(getn(pool, o, 300), 0);
    zp_put_batch(pool, o, 300);
    assert_int_equal(getn(pool, o, 20), 0);
    zp_put_batch(pool, o, 20);
    check_subs(ot);

    zpt_watchdog(60, "a handle of the object pool");
    assert_int_equal(zp_cache_create(pool, &h), 0);
    for (i = 0; i < 300; i++)
        assert_non_null(o[i] = hget1(h));
    for (i = 0; i < 300; i++)
        zp_cache_put(h, o[i]);
    zp_cache_destroy(h);
    check_subs(ot);

    zpt_watchdog(60, "zp_trim (fini)");
    g.registry_probes = 4;
    zp_trim(pool, 0);
    assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    check_subs(ot);

    zpt_watchdog(60, "zp_pool_destroy (fini of idle objects)");
    for (i = 0; i < 300; i++)
        assert_non_null(o[i] = get1(pool));
    for (i = 0; i < 300; i++)
        zp_put(pool, o[i]);
    g.destroying = 1;
    g.registry_probes = 4;
    zp_pool_destroy(pool);
    zpt_watchdog_off();
    assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    check_subs(ot);
    zp_cache_destroy(g.handle);
    assert_int_equal(zpt_read(bytes).bytes_outstanding, 0);
    zp_pool_destroy(bytes);
    zpt_objtype_free(ot);
}

static void test_doors(void **state)
{
    (void)state;
    run_doors(0);
}

/* init takes its sub-buffer from a handle of the other pool */
static void test_doors_init_uses_handle(void **state)
{
    (void)state;
    run_doors(1);
}

/* fini run by the retention cap and by decay (its thread, or a slow path)
 * uses other pools too. */
static void release_path(unsigned decay_ms, unsigned flags, size_t max_cached)
{
    zp_pool *bytes = ZPT_POOL(.max_class = 64 * ZPT_KiB);
    zpt_objtype *ot = setup_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .cache_depth = ZPT_ZERO,
                             .decay_ms = decay_ms, .flags = flags,
                             .max_cached_bytes = max_cached);
    void **o = malloc(3000 * sizeof *o);
    uint64_t start;
    int i;
    assert_non_null(o);
    setup_ctx(pool, bytes);
    g.registry_probes = 4;
    zpt_watchdog(60, "fini from the retention cap or decay");
    for (i = 0; i < 3000; i++)
        assert_non_null(o[i] = get1(pool));
    for (i = 0; i < 3000; i++)
        zp_put(pool, o[i]);
    start = zpt_now_ns();
    while (atomic_load(&ot->finis) == 0 && zpt_ms_since(start) < 20000) {
        zpt_sleep_ms(10);
        if (!(flags & ZP_DECAY_THREAD) && decay_ms) /* a slow path ends the epoch */
            zp_put(pool, get1(pool));
    }
    zpt_watchdog_off();
    assert_true(atomic_load(&ot->finis) > 0);
    /* quiet now: the decay thread may still run, so stop it first */
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    check_subs(ot);
    assert_int_equal(zpt_read(bytes).bytes_outstanding, 0);
    zp_pool_destroy(bytes);
    free(o);
    zpt_objtype_free(ot);
}

static void test_retention_fini(void **state)
{
    (void)state;
    release_path(0, 0, ZPT_ZERO);
}

static void test_decay_thread_fini(void **state)
{
    (void)state;
    release_path(10, ZP_DECAY_THREAD, 0);
}

static void test_decay_slow_path_fini(void **state)
{
    (void)state;
    release_path(10, 0, 0);
}

/* ------------------------------------------------ many getting threads */

enum { THREADS = 4, ROUNDS = 300, HOLD = 40 };

typedef struct mailbox {
    pthread_mutex_t lock;
    void *items[THREADS * HOLD * 2];
    size_t n;
} mailbox;

static mailbox g_box = {.lock = PTHREAD_MUTEX_INITIALIZER};
static atomic_int g_bad_objects;

/* Gets (single, batch, handle), leaves half of what it got for others to
 * put, puts what others left: init may only ever run inside a get. */
static void *worker(void *arg)
{
    zp_pool *pool = arg;
    zp_cache *h = NULL;
    void *mine[HOLD], *theirs[HOLD];
    int r, i, nt;
    if (zp_cache_create(pool, &h) != 0)
        atomic_fetch_add(&g.failures, 1);
    for (r = 0; r < ROUNDS; r++) {
        if (r % 3 == 0) {
            if (getn(pool, mine, HOLD) != 0) {
                atomic_fetch_add(&g.failures, 1);
                continue;
            }
        } else {
            for (i = 0; i < HOLD; i++) {
                mine[i] = r % 3 == 1 ? get1(pool) : hget1(h);
                if (mine[i] == NULL)
                    atomic_fetch_add(&g.failures, 1);
            }
        }
        for (i = 0; i < HOLD; i++) {
            obj *o = mine[i];
            if (o && (o->sub == NULL || !zpt_all_bytes(o->sub, 64, 0x5C)))
                atomic_fetch_add(&g_bad_objects, 1);
        }
        pthread_mutex_lock(&g_box.lock);
        for (i = 0; i < HOLD / 2; i++)
            g_box.items[g_box.n++] = mine[i];
        for (nt = 0; nt < HOLD && g_box.n > 0; nt++)
            theirs[nt] = g_box.items[--g_box.n];
        pthread_mutex_unlock(&g_box.lock);
        for (i = HOLD / 2; i < HOLD; i++)
            zp_put(pool, mine[i]);
        if (r % 2)
            zp_put_batch(pool, theirs, (size_t)nt);
        else
            for (i = 0; i < nt; i++)
                zp_cache_put(h, theirs[i]);
    }
    zp_cache_destroy(h);
    return NULL;
}

static void test_init_on_getting_thread(void **state)
{
    zp_pool *bytes = ZPT_POOL(.max_class = 64 * ZPT_KiB);
    zpt_objtype *ot = setup_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .max_cached_bytes = 512 * ZPT_KiB);
    pthread_t t[THREADS];
    size_t i;
    (void)state;
    setup_ctx(pool, bytes);
    atomic_store(&g_bad_objects, 0);
    zpt_watchdog(120, "threads getting and putting objects");
    zpt_threads_start(t, THREADS, worker, pool, 0);
    /* meanwhile this thread trims: fini on slabs gone idle, never init */
    for (i = 0; i < 50; i++) {
        zp_trim(pool, 0);
        zpt_sleep_ms(2);
    }
    zpt_threads_join(t, THREADS);
    zpt_watchdog_off();
    for (i = 0; i < g_box.n; i++)
        zp_put(pool, g_box.items[i]);
    g_box.n = 0;
    assert_int_equal(atomic_load(&g_bad_objects), 0);
    check_subs(ot);
    assert_true(atomic_load(&ot->resets) > 0);
    g.destroying = 1;
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    check_subs(ot);
    zp_pool_destroy(bytes);
    zpt_objtype_free(ot);
}

/* The thread recorded by init is the one whose get constructed it: a
 * thread's own first get of fresh objects constructs them there. */
static void *get_fresh(void *arg)
{
    zp_pool *pool = arg;
    void *b[8];
    int i;
    if (getn(pool, b, 8) != 0)
        return (void *)(intptr_t)-1;
    for (i = 0; i < 8; i++)
        if (!pthread_equal(((obj *)b[i])->constructor, pthread_self()))
            return (void *)(intptr_t)1;
    zp_put_batch(pool, b, 8);
    return NULL;
}

static void test_init_thread_recorded(void **state)
{
    zp_pool *bytes = ZPT_POOL(.max_class = 64 * ZPT_KiB);
    zpt_objtype *ot = setup_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .cache_depth = ZPT_ZERO);
    pthread_t t;
    void *rc;
    int k;
    (void)state;
    setup_ctx(pool, bytes);
    for (k = 0; k < 3; k++) {
        /* release what the previous thread constructed: the next one
         * gets fresh memory */
        zp_trim(pool, 0);
        assert_int_equal(pthread_create(&t, NULL, get_fresh, pool), 0);
        assert_int_equal(pthread_join(t, &rc), 0);
        if (rc != NULL)
            fail_msg("thread %d: %s", k,
                     rc == (void *)(intptr_t)-1 ? "its batch failed"
                                                 : "an object it got fresh was constructed "
                                                   "on another thread");
    }
    check_subs(ot);
    zp_pool_destroy(pool);
    check_subs(ot);
    zp_pool_destroy(bytes);
    zpt_objtype_free(ot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doors),
        cmocka_unit_test(test_doors_init_uses_handle),
        cmocka_unit_test(test_retention_fini),
        cmocka_unit_test(test_decay_thread_fini),
        cmocka_unit_test(test_decay_slow_path_fini),
        cmocka_unit_test(test_init_on_getting_thread),
        cmocka_unit_test(test_init_thread_recorded),
    };
    return ZPT_RUN(tests);
}
