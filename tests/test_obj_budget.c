/* Object pools under a budget: gets fail with ENOBUFS when it is full, zp_get_timed waits and is woken by a put (same pool or another on the budget), init runs on the waiter's thread. */
#include "zp_test.h"

#define SIZE 200
#define SLAB (256 * ZPT_KiB) /* the slab of 200-byte objects */
#define LONG_WAIT_MS 30000

typedef struct obj {
    unsigned char stamp[ZPT_OBJ_STAMP];
    pthread_t constructor;
    uint64_t user;
} obj;

static int hook_init(void *p, zpt_objtype *ot)
{
    (void)ot;
    ((obj *)p)->constructor = pthread_self();
    ((obj *)p)->user = 0;
    return 0;
}

static zpt_objtype *new_type(void)
{
    zpt_objtype *ot = zpt_objtype_new(SIZE, 8, ZPT_OBJ_ALL);
    ot->on_init = hook_init;
    return ot;
}

static int region_size(void *ptr, size_t size, void *arg)
{
    (void)ptr;
    *(size_t *)arg = size;
    return 1;
}

/* Gets objects until the budget refuses: ENOBUFS, every one constructed,
 * a whole slab's worth. Returns how many (held in o). */
static size_t fill(zp_pool *pool, zpt_objtype *ot, zpt_provider *pv, void **o, size_t max)
{
    size_t n = 0, slab = 0;
    for (;;) {
        void *p;
        errno = 0;
        if ((p = zp_get(pool, SIZE)) == NULL)
            break;
        assert_true(n < max);
        assert_true(zpt_obj_constructed(ot, p));
        ((obj *)p)->user = 1000 + n;
        o[n++] = p;
    }
    if (errno != ENOBUFS)
        fail_msg("the full budget's get failed with errno %d, not ENOBUFS", errno);
    zpt_provider_each(pv, region_size, &slab);
    if (n != slab / SIZE)
        fail_msg("a %zu-byte slab served %zu objects of %d bytes", slab, n, SIZE);
    return n;
}

/* Takes four 64 KiB buffers from the byte pool into buf: one 256 KiB
 * slab of the budget. */
static void hold_slab(zp_pool *bytes, void **buf)
{
    int i;
    for (i = 0; i < 4; i++)
        assert_non_null(buf[i] = zp_get(bytes, 64 * ZPT_KiB));
}

/* Puts back what hold_slab took. */
static void release_slab(zp_pool *bytes, void **buf)
{
    int i;
    for (i = 0; i < 4; i++)
        zp_put(bytes, buf[i]);
}

/* Puts o[0] .. o[n - 1] back, destroys pool and checks that every object
 * constructed was finalised. */
static void put_all_destroy(zp_pool *pool, zpt_objtype *ot, void **o, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        zp_put(pool, o[i]);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
}

/* Destroys b (if any), frees o, ot and pv. */
static void free_all(zp_budget *b, void **o, zpt_objtype *ot, zpt_provider *pv)
{
    if (b)
        zp_budget_destroy(b);
    free(o);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* A put into the same pool wakes the waiter, who gets that very object,
 * constructed and not constructed again. */
static void test_woken_by_put(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_budget *b = zpt_budget_new(SLAB);
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .budget = b);
    void **o = malloc(2 * SLAB / SIZE * sizeof *o);
    size_t n;
    unsigned long inits;
    zp_budget_stats bs;
    zpt_waiter w;
    obj *x;
    (void)state;
    assert_non_null(o);
    n = fill(pool, ot, pv, o, 2 * SLAB / SIZE);
    inits = atomic_load(&ot->inits);
    zpt_waiter_start(&w, pool, SIZE, LONG_WAIT_MS);
    assert_true(zpt_wait_waiters(b, 1, 10000));
    assert_int_equal(atomic_load(&w.done), 0);
    x = o[--n];
    x->user = 0xABCDEF;
    zp_put(pool, x);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    if (w.buf == NULL)
        fail_msg("the waiter was not woken by the put: errno %d", w.err);
    assert_ptr_equal(w.buf, x);
    assert_int_equal(x->user, 0xABCDEF); /* state survives, no init */
    assert_true(zpt_obj_constructed(ot, x));
    assert_int_equal(atomic_load(&ot->inits), inits);
    assert_int_equal(atomic_load(&ot->resets), 1);
    assert_int_equal(zpt_budget_stats(b, &bs), 0);
    assert_int_equal(bs.waiters, 0);
    assert_true(bs.waited_gets >= 1);
    assert_true(bs.bytes_reserved <= SLAB);

    zp_put(pool, x); /* got on the waiter's thread, put here */
    put_all_destroy(pool, ot, o, n);
    zpt_assert_objtype_clean(ot);
    assert_int_equal(zpt_budget_stats(b, &bs), 0);
    assert_int_equal(bs.bytes_reserved, 0);
    free_all(b, o, ot, pv);
}

/* The budget is shared with a byte pool: buffers put there make room, the
 * object pool's waiter maps a fresh slab and constructs its object on its
 * own thread. */
static void test_woken_by_other_pool(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_budget *b = zpt_budget_new(2 * SLAB);
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .budget = b);
    zp_pool *bytes = ZPT_POOL(.budget = b, .max_class = ZPT_MiB);
    void **o = malloc(2 * SLAB / SIZE * sizeof *o), *buf[4];
    size_t n;
    unsigned long inits;
    zpt_waiter w;
    obj *x;
    (void)state;
    assert_non_null(o);
    hold_slab(bytes, buf);
    n = fill(pool, ot, pv, o, 2 * SLAB / SIZE);
    inits = atomic_load(&ot->inits);
    zpt_waiter_start(&w, pool, SIZE, LONG_WAIT_MS);
    assert_true(zpt_wait_waiters(b, 1, 10000));
    assert_int_equal(atomic_load(&w.done), 0);
    release_slab(bytes, buf);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    if (w.buf == NULL)
        fail_msg("the waiter was not woken by the other pool's puts: errno %d", w.err);
    x = w.buf;
    assert_true(zpt_obj_constructed(ot, x));
    assert_true(atomic_load(&ot->inits) > inits);
    if (!pthread_equal(x->constructor, w.thread))
        fail_msg("the waiter's object was constructed on another thread");
    zp_put(pool, x);
    put_all_destroy(pool, ot, o, n);
    zp_pool_destroy(bytes);
    zpt_assert_objtype_clean(ot);
    free_all(b, o, ot, pv);
}

/* The woken waiter's init fails: the waiter returns at once with init's
 * error (not a timeout, not ENOBUFS), having run init on its own thread. */
static atomic_int g_init_elsewhere;
static pthread_t g_waiter_thread;

static int init_where(void *p, zpt_objtype *ot)
{
    (void)p;
    (void)ot;
    if (!pthread_equal(pthread_self(), g_waiter_thread))
        atomic_fetch_add(&g_init_elsewhere, 1);
    return 0;
}

static void test_woken_waiter_init_fails(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_budget *b = zpt_budget_new(2 * SLAB);
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .budget = b);
    zp_pool *bytes = ZPT_POOL(.budget = b, .max_class = ZPT_MiB);
    void **o = malloc(2 * SLAB / SIZE * sizeof *o), *buf[4];
    size_t n;
    unsigned long calls;
    zpt_waiter w;
    (void)state;
    assert_non_null(o);
    hold_slab(bytes, buf);
    n = fill(pool, ot, pv, o, 2 * SLAB / SIZE);
    zpt_waiter_start(&w, pool, SIZE, LONG_WAIT_MS);
    assert_true(zpt_wait_waiters(b, 1, 10000));
    /* read by the waiter's init only after the puts below wake it */
    g_waiter_thread = w.thread;
    calls = atomic_load(&ot->init_calls);
    atomic_store(&g_init_elsewhere, 0);
    ot->on_init = init_where;
    atomic_store(&ot->fail_errno, EMFILE);
    atomic_store(&ot->fail_every, 1);
    release_slab(bytes, buf);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    if (w.buf != NULL || w.err != EMFILE)
        fail_msg("the woken waiter whose init failed got %p, errno %d (want EMFILE)", w.buf,
                 w.err);
    assert_true(atomic_load(&ot->init_calls) > calls);
    assert_int_equal(atomic_load(&g_init_elsewhere), 0);
    atomic_store(&ot->fail_every, 0);
    put_all_destroy(pool, ot, o, n);
    zp_pool_destroy(bytes);
    zpt_assert_objtype_clean(ot);
    free_all(b, o, ot, pv);
}

/* With nothing put, a timed get times out (ETIMEDOUT) and a get that may
 * not wait fails at once (ENOBUFS); neither takes anything. */
static void test_timeouts(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_budget *b = zpt_budget_new(SLAB);
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .budget = b);
    void **o = malloc(2 * SLAB / SIZE * sizeof *o);
    size_t n;
    zp_budget_stats bs;
    zp_stats s;
    (void)state;
    assert_non_null(o);
    n = fill(pool, ot, pv, o, 2 * SLAB / SIZE);
    errno = 0;
    assert_null(zp_get_timed(pool, SIZE, 50));
    assert_int_equal(errno, ETIMEDOUT);
    errno = 0;
    assert_null(zp_get_timed(pool, SIZE, 0));
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(zpt_budget_stats(b, &bs), 0);
    assert_true(bs.failed_gets >= 3);
    assert_int_equal(bs.waiters, 0);
    s = zpt_read(pool);
    assert_int_equal(s.gets, n);
    assert_int_equal(s.bytes_outstanding, n * SIZE);
    put_all_destroy(pool, ot, o, n);
    free_all(b, o, ot, pv);
}

/* An init failing with ENOBUFS on a pool whose budget has room: that is
 * init's error, not the budget's — the get fails with it at once, init is
 * called once, nobody waits. The timed get runs in a child process, so a
 * call that never returns is reported and the other cases still run. */
static int timed_get_child(void *arg)
{
    zp_budget *b = NULL;
    zpt_objtype *ot = new_type();
    zp_pool *pool = NULL;
    zp_config cfg;
    zp_budget_stats bs;
    unsigned long calls;
    void *p;
    int err;
    (void)arg;
    if (zp_budget_create(4 * SLAB, &b) != 0)
        return 3;
    ZPT_CONFIG(&cfg, .budget = b);
    if (zp_objpool_create(&cfg, &ot->type, &pool) != 0)
        return 3;
    atomic_store(&ot->fail_errno, ENOBUFS);
    atomic_store(&ot->fail_every, 1);
    errno = 0;
    p = zp_get_timed(pool, SIZE, 1000);
    err = errno;
    calls = atomic_load(&ot->init_calls);
    zpt_budget_stats(b, &bs);
    printf("zp_get_timed: %p, errno %d, init called %lu times, %llu waited gets\n", p, err,
           calls, (unsigned long long)bs.waited_gets);
    return p == NULL && err == ENOBUFS && calls == 1 && bs.waited_gets == 0 ? 0 : 1;
}

static void test_init_enobufs_is_not_the_budget(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_budget *b = zpt_budget_new(4 * SLAB);
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .budget = b);
    unsigned long calls;
    char problems[1024] = "";
    size_t used = 0;
    int limit_s = 10; /* ten times the call's own timeout */
    zpt_child c;
    void *p;
    int err;
    (void)state;
    atomic_store(&ot->fail_errno, ENOBUFS);
    atomic_store(&ot->fail_every, 1);
    errno = 0;
    p = zp_get(pool, SIZE);
    err = errno;
    calls = atomic_load(&ot->init_calls);
    if (p != NULL || err != ENOBUFS || calls != 1)
        used += (size_t)snprintf(problems + used, sizeof problems - used,
                                 "zp_get: %p, errno %d, init called %lu times (want NULL, "
                                 "ENOBUFS, once)\n", p, err, calls);
#if defined(ZPT_SANITIZED)
    limit_s *= 3;
#endif
    if (zpt_under_valgrind())
        limit_s *= 3;
    assert_int_equal(zpt_run_child(timed_get_child, NULL, limit_s, &c), 0);
    if (c.timed_out)
        used += (size_t)snprintf(problems + used, sizeof problems - used,
                                 "zp_get_timed(pool, %d, 1000 ms) had not returned after %d s "
                                 "(killed)\n", SIZE, limit_s);
    else if (!zpt_child_exited(&c, 0))
        used += (size_t)snprintf(problems + used, sizeof problems - used,
                                 "status 0x%x: %s", c.status, c.out);
    if (problems[0])
        fail_msg("init's ENOBUFS was taken for the budget's:\n%s", problems);
    atomic_store(&ot->fail_every, 0);
    p = zp_get(pool, SIZE);
    assert_non_null(p);
    zp_put(pool, p);
    put_all_destroy(pool, ot, NULL, 0);
    free_all(b, NULL, ot, pv);
}

/* max_bytes (a private budget) caps an object pool the same way. */
static void test_max_bytes(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = new_type();
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .max_bytes = SLAB);
    void **o = malloc(2 * SLAB / SIZE * sizeof *o);
    size_t n;
    zp_stats s;
    (void)state;
    assert_non_null(o);
    n = fill(pool, ot, pv, o, 2 * SLAB / SIZE);
    s = zpt_read(pool);
    assert_true(s.bytes_reserved <= SLAB);
    assert_int_equal(atomic_load(&pv->bytes_live), s.bytes_reserved);
    /* a put makes an object available again, without init */
    zp_put(pool, o[--n]);
    assert_non_null(o[n] = zp_get(pool, SIZE));
    n++;
    put_all_destroy(pool, ot, o, n);
    free_all(NULL, o, ot, pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_woken_by_put),
        cmocka_unit_test(test_woken_by_other_pool),
        cmocka_unit_test(test_woken_waiter_init_fails),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_init_enobufs_is_not_the_budget),
        cmocka_unit_test(test_max_bytes),
    };
    return ZPT_RUN(tests);
}
