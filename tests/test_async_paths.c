/* Every path that gives memory back serves a waiting async request: put, batch put, handle flush and destroy, thread exit, trim, decay on a slow path and by its thread, destroying another pool of the budget. */
#include "zp_test.h"

/* Each case fills a budget: pool P (the requester) holds 1 MiB, and 1 MiB
 * more sits where the path under test will return it from (outstanding,
 * in a handle, in a thread's cache, idle in pool Q's depot). A 1 MiB
 * request on P then queues (its own reclaim finds nothing of P's to give
 * back); the descriptor stays quiet until the path runs, on the loop's
 * thread or another one; then one dispatch runs the callback, and the
 * buffer is the callback's. 1 MiB buffers are slabs of their own, so the
 * bytes of one returned while someone waits go back to the budget. */
#define WAIT_MS 10000
#define QUIET_MS 50

typedef struct ctx {
    zp_budget *budget;
    zp_pool *p, *q;
    zp_cache *h;
    void *p_held;   /* P's 1 MiB */
    void *x;        /* the 1 MiB the path returns, when outstanding */
    void *small[64]; /* decay: small gets on Q that drive its slow path */
    int nsmall;
    struct cacher *cacher; /* thread exit: a thread caching 1 MiB */
} ctx;

typedef struct path {
    const char *name;
    size_t extra_budget;                 /* beyond 2 MiB */
    void (*setup)(ctx *c);               /* fills the second MiB */
    int (*action)(ctx *c, zp_loop *loop); /* returns it; 1 if it already
                                            waited for readiness */
} path;

/* ---------------------------------------------------------- the paths */

static void *put_x(void *arg)
{
    ctx *c = (ctx *)arg;
    zp_put(c->p, c->x);
    return NULL;
}

static void *put_batch_x(void *arg)
{
    ctx *c = (ctx *)arg;
    void *bufs[3] = {NULL, c->x, NULL};
    zp_put_batch(c->p, bufs, 3);
    return NULL;
}

static void setup_outstanding(ctx *c)
{
    c->x = zp_get(c->p, ZPT_MiB);
    assert_non_null(c->x);
}

static int on_thread(ctx *c, void *(*fn)(void *))
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, c), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    c->x = NULL;
    return 0;
}

static int act_put(ctx *c, zp_loop *loop)
{
    (void)loop;
    return on_thread(c, put_x);
}

static int act_put_batch(ctx *c, zp_loop *loop)
{
    (void)loop;
    return on_thread(c, put_batch_x);
}

/* a handle of Q caching 1 MiB */
static void setup_handle(ctx *c)
{
    void *b;
    assert_int_equal(zp_cache_create(c->q, &c->h), 0);
    b = zp_cache_get(c->h, ZPT_MiB);
    assert_non_null(b);
    zp_cache_put(c->h, b);
}

static int act_flush(ctx *c, zp_loop *loop)
{
    (void)loop;
    zp_cache_flush(c->h);
    return 0;
}

static int act_handle_destroy(ctx *c, zp_loop *loop)
{
    (void)loop;
    zp_cache_destroy(c->h);
    c->h = NULL;
    return 0;
}

/* A thread that caches 1 MiB of a pool, then waits for phase 2 to exit.
 * On the heap: a failed case leaves it running, and it must not outlive
 * what it reads. */
typedef struct cacher {
    zp_pool *pool;
    atomic_int phase; /* 1 cached, 2 may exit */
    pthread_t t;
} cacher;

static void *cache_and_exit(void *arg)
{
    cacher *k = (cacher *)arg;
    void *b = zp_get(k->pool, ZPT_MiB);
    zp_put(k->pool, b); /* into this thread's cache: nobody waits yet */
    atomic_store(&k->phase, b != NULL ? 1 : -1);
    while (atomic_load(&k->phase) != 2)
        zpt_sleep_ms(1);
    return NULL;
}

static void start_caching_thread(ctx *c, zp_pool *pool)
{
    cacher *k = calloc(1, sizeof *k);
    assert_non_null(k);
    k->pool = pool;
    c->cacher = k;
    assert_int_equal(pthread_create(&k->t, NULL, cache_and_exit, k), 0);
    while (atomic_load(&k->phase) == 0)
        zpt_sleep_ms(1);
    assert_int_equal(atomic_load(&k->phase), 1);
}

static void setup_thread_p(ctx *c)
{
    start_caching_thread(c, c->p);
}

static void setup_thread_q(ctx *c)
{
    start_caching_thread(c, c->q);
}

static int act_thread_exit(ctx *c, zp_loop *loop)
{
    (void)loop;
    atomic_store(&c->cacher->phase, 2);
    assert_int_equal(pthread_join(c->cacher->t, NULL), 0);
    free(c->cacher);
    c->cacher = NULL;
    return 0;
}

/* 1 MiB idle in Q's depot (a handle flushed it there, nobody waiting) */
static void setup_idle_in_q(ctx *c)
{
    setup_handle(c);
    zp_cache_destroy(c->h);
    c->h = NULL;
    assert_int_equal(zpt_read(c->q).bytes_reserved, ZPT_MiB);
    assert_int_equal(zpt_read(c->q).bytes_outstanding, 0);
}

static int act_trim(ctx *c, zp_loop *loop)
{
    (void)loop;
    assert_int_equal(zp_trim(c->q, 0), ZPT_MiB);
    return 0;
}

/* Q (decay_ms 50, no thread caches) also has a small slab, which its
 * slow-path gets draw on without new budget bytes */
static void setup_decay(ctx *c)
{
    setup_idle_in_q(c);
    c->small[c->nsmall] = zp_get(c->q, 4096);
    assert_non_null(c->small[c->nsmall++]);
}

/* Gets on Q's slow path (which need no budget bytes and return nothing)
 * until decay gives the idle MiB back and the request becomes ready. */
static int act_decay_slow_path(ctx *c, zp_loop *loop)
{
    /* the small slab's 64 buffers: 64 x 75 ms = 4.8 s at least (decay_ms
     * is 50: a few periods are enough, but a loaded machine under TSan
     * once took more than 1.6 s) */
    while (c->nsmall < 64) {
        if (zpt_fd_readable(zp_loop_fd(loop), 75) == 1)
            return 1;
        c->small[c->nsmall] = zp_get(c->q, 4096);
        assert_non_null(c->small[c->nsmall++]);
    }
    return 0;
}

static int act_decay_thread(ctx *c, zp_loop *loop)
{
    (void)c;
    (void)loop;
    return 0; /* Q's decay thread does it on its own */
}

/* 1 MiB of Q cached by this (the loop's) thread */
static void setup_thread_cache_q(ctx *c)
{
    void *b = zp_get(c->q, ZPT_MiB);
    assert_non_null(b);
    zp_put(c->q, b);
}

static int act_destroy_q(ctx *c, zp_loop *loop)
{
    (void)loop;
    zp_pool_destroy(c->q);
    c->q = NULL;
    return 0;
}

static const path g_paths[] = {
    {"zp_put on another thread", 0, setup_outstanding, act_put},
    {"zp_put_batch on another thread", 0, setup_outstanding, act_put_batch},
    {"zp_cache_flush of another pool's handle", 0, setup_handle, act_flush},
    {"zp_cache_destroy of another pool's handle", 0, setup_handle, act_handle_destroy},
    {"exit of a thread caching the pool's MiB", 0, setup_thread_p, act_thread_exit},
    {"exit of a thread caching another pool's MiB", 0, setup_thread_q, act_thread_exit},
    {"zp_trim of another pool", 0, setup_idle_in_q, act_trim},
    {"decay on another pool's slow path", 256 * 1024, setup_decay, act_decay_slow_path},
    {"decay by another pool's decay thread", 0, setup_idle_in_q, act_decay_thread},
    {"zp_pool_destroy of another pool", 0, setup_thread_cache_q, act_destroy_q},
    /* Not a path: room idle in another live thread's cache is out of reach
     * until that thread returns it (documented in zeropool.h, budgets). */
};

static zp_loop *volatile g_loop; /* reachable if a failed case skips its cleanup */

static void run_path(const path *pt, const zpt_pool_opts *qo)
{
    ctx c;
    zp_loop *loop = g_loop = zpt_loop_new();
    zpt_async a = {.id = 1};
    zp_budget_stats bs;
    uint64_t t0;
    int i;
    memset(&c, 0, sizeof c);
    c.budget = zpt_budget_new(2 * ZPT_MiB + pt->extra_budget);
    c.p = ZPT_POOL(.name = "P", .budget = c.budget);
    {
        zpt_pool_opts o = *qo;
        o.budget = c.budget;
        c.q = zpt_pool_at(__FILE__, __LINE__, &o);
    }
    c.p_held = zp_get(c.p, ZPT_MiB);
    assert_non_null(c.p_held);
    pt->setup(&c);
    assert_int_equal(zpt_budget_stats(c.budget, &bs), 0);
    assert_int_equal(bs.bytes_reserved, bs.max_bytes);

    errno = 0;
    assert_null(zpt_get_async(c.p, ZPT_MiB, loop, &a));
    assert_int_equal(errno, EINPROGRESS);
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), QUIET_MS), 0);
    assert_int_equal(zpt_dispatch(loop), 0);

    t0 = zpt_now_ns();
    if (!pt->action(&c, loop))
        assert_int_equal(a.calls, 0); /* never inside the path itself */
    if (zpt_fd_readable(zp_loop_fd(loop), WAIT_MS) != 1)
        fail_msg("%s: the request was not made ready within %d ms", pt->name, WAIT_MS);
    if (zpt_dispatch_until(loop, 1, WAIT_MS) != 1)
        fail_msg("%s: the descriptor turned readable but no dispatch within %d ms "
                 "served the request (the memory came back where it cannot reach)",
                 pt->name, WAIT_MS);
    print_message("%-45s served after %.3f ms\n", pt->name, zpt_ms_since(t0));
    assert_int_equal(a.calls, 1);
    assert_non_null(a.buf);
    assert_int_equal(a.err, 0);
    assert_true(a.in_dispatch);
    assert_true(pthread_equal(a.thread, pthread_self()));
    memset(a.buf, 0x3c, ZPT_MiB);
    assert_int_equal(zpt_waiters(c.budget), 0);

    if (c.cacher != NULL) { /* a caching thread still alive */
        atomic_store(&c.cacher->phase, 2);
        assert_int_equal(pthread_join(c.cacher->t, NULL), 0);
        free(c.cacher);
    }
    zp_put(c.p, a.buf);
    zp_put(c.p, c.p_held);
    if (c.x != NULL)
        zp_put(c.p, c.x);
    for (i = 0; i < c.nsmall; i++)
        zp_put(c.q, c.small[i]);
    if (c.h != NULL)
        zp_cache_destroy(c.h);
    assert_int_equal(zpt_read(c.p).bytes_outstanding, 0);
    assert_int_equal(zpt_budget_stats(c.budget, &bs), 0);
    assert_true(bs.peak_reserved <= bs.max_bytes);
    zp_loop_destroy(loop);
    zp_pool_destroy(c.p);
    zp_pool_destroy(c.q);
    zp_budget_destroy(c.budget);
}

static void test_put(void **state)
{
    (void)state;
    run_path(&g_paths[0], &(zpt_pool_opts){.name = "Q"});
}

static void test_put_batch(void **state)
{
    (void)state;
    run_path(&g_paths[1], &(zpt_pool_opts){.name = "Q"});
}

static void test_handle_flush(void **state)
{
    (void)state;
    run_path(&g_paths[2], &(zpt_pool_opts){.name = "Q"});
}

static void test_handle_destroy(void **state)
{
    (void)state;
    run_path(&g_paths[3], &(zpt_pool_opts){.name = "Q"});
}

static void test_thread_exit(void **state)
{
    (void)state;
    run_path(&g_paths[4], &(zpt_pool_opts){.name = "Q"});
}

static void test_thread_exit_other_pool(void **state)
{
    (void)state;
    run_path(&g_paths[5], &(zpt_pool_opts){.name = "Q"});
}

static void test_trim(void **state)
{
    (void)state;
    run_path(&g_paths[6], &(zpt_pool_opts){.name = "Q"});
}

static void test_decay_slow_path(void **state)
{
    (void)state;
    run_path(&g_paths[7],
             &(zpt_pool_opts){.name = "Q", .decay_ms = 50, .cache_depth = ZPT_ZERO});
}

static void test_decay_thread(void **state)
{
    (void)state;
    run_path(&g_paths[8],
             &(zpt_pool_opts){.name = "Q", .decay_ms = 50, .flags = ZP_DECAY_THREAD});
}

static void test_destroy_other_pool(void **state)
{
    (void)state;
    run_path(&g_paths[9], &(zpt_pool_opts){.name = "Q"});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_put_batch),
        cmocka_unit_test(test_handle_flush),
        cmocka_unit_test(test_handle_destroy),
        cmocka_unit_test(test_thread_exit),
        cmocka_unit_test(test_thread_exit_other_pool),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_decay_slow_path),
        cmocka_unit_test(test_decay_thread),
        cmocka_unit_test(test_destroy_other_pool),
    };
    return ZPT_RUN(tests);
}
