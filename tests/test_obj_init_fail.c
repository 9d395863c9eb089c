/* Object init failing: the get fails with errno exactly init's value, a batch takes nothing, the memory stays pooled for a later init, nothing leaks. */
#include "zp_test.h"

#define SIZE 200

static unsigned long ul(atomic_ulong *v)
{
    return atomic_load(v);
}

/* Destroys the pool, checking that nothing was reported outstanding and
 * that every constructed object was finalised. */
static void destroy_clean(zp_pool *pool, zpt_objtype *ot, zpt_provider *pv)
{
    zpt_capture cap;
    char *err;
    assert_int_equal(zpt_capture_begin(&cap), 0);
    zp_pool_destroy(pool);
    err = zpt_capture_end(&cap);
    assert_non_null(err);
    if (strstr(err, "outstanding"))
        fail_msg("destroy reported objects outstanding: \"%s\"", err);
    free(err);
    if (ul(&ot->finis) != ul(&ot->inits))
        fail_msg("after destroy: %lu inits, %lu finis", ul(&ot->inits), ul(&ot->finis));
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_assert_objtype_clean(ot);
}

/* Every Nth init fails, single gets, no cache: each get is one init call,
 * so exactly every Nth get fails, with errno the value init returned; the
 * memory a failed init left is what the next get constructs. */
static void every_nth_uncached(int e)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(SIZE, 8, ZPT_OBJ_ALL);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .cache_depth = ZPT_ZERO);
    void *o[300];
    size_t n = 0, i, fails = 0;
    zp_stats s;
    atomic_store(&ot->fail_every, 3);
    atomic_store(&ot->fail_errno, e);
    for (i = 1; i <= 300; i++) {
        void *p;
        errno = 0;
        p = zp_get(pool, SIZE);
        if (i % 3 == 0) {
            if (p != NULL)
                fail_msg("init returning %d: get %zu: init call %zu was to fail, the get "
                         "succeeded (init called %lu times so far)", e, i, i,
                         ul(&ot->init_calls));
            if (errno != e)
                fail_msg("get %zu: errno %d, want %d (init's value)", i, errno, e);
            if (!strstr(zp_strerror(-e), "init"))
                fail_msg("zp_strerror does not say init failed: \"%s\"", zp_strerror(-e));
            fails++;
        } else {
            if (p == NULL)
                fail_msg("get %zu failed, errno %d", i, errno);
            assert_true(zpt_obj_constructed(ot, p));
            o[n++] = p;
        }
        if (ul(&ot->init_calls) != i)
            fail_msg("init returning %d: %zu gets called init %lu times", e, i,
                     ul(&ot->init_calls));
    }
    assert_int_equal(fails, 100);
    assert_int_equal(ul(&ot->inits), 200);
    assert_int_equal(ul(&ot->init_fails), 100);
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &ot->type, atomic_load(&pv->bytes_live));
    assert_int_equal(s.gets, 200);
    assert_int_equal(s.bytes_outstanding, 200 * SIZE);
    /* no memory lost to the failures: 300 objects' worth is one slab */
    assert_int_equal(atomic_load(&pv->maps), 1);
    assert_int_equal(zpt_obj_constructed_in(pv, ot), 200);
    for (i = 0; i < n; i++)
        zp_put(pool, o[i]);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.puts, 200);
    assert_int_equal(ul(&ot->resets), 200);
    destroy_clean(pool, ot, pv);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* ENOMEM and ENOBUFS are the library's own errors too: from init they
 * are init's, like any other value. */
static void test_single_every_nth_uncached(void **state)
{
    (void)state;
    every_nth_uncached(EMFILE);
    every_nth_uncached(ENOMEM);
    every_nth_uncached(ENOBUFS);
}

/* The same through the thread's cache (refills construct several objects
 * per call): every failure is exact, every success constructed, the
 * counts add up. */
static void test_single_every_nth_cached(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(SIZE, 8, ZPT_OBJ_ALL);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv);
    void **o = malloc(3000 * sizeof *o);
    size_t n = 0, fails = 0, got = 0, i;
    zp_stats s;
    (void)state;
    assert_non_null(o);
    atomic_store(&ot->fail_every, 5);
    atomic_store(&ot->fail_errno, ENOTCONN);
    while (n < 2000) {
        void *p;
        errno = 0;
        if ((p = zp_get(pool, SIZE)) == NULL) {
            if (errno != ENOTCONN)
                fail_msg("failed get: errno %d, want ENOTCONN (init's value)", errno);
            fails++;
            assert_true(fails <= 2000);
            continue;
        }
        assert_true(zpt_obj_constructed(ot, p));
        o[n++] = p;
        if (++got % 100 == 0) /* some go back and come out again */
            for (i = 0; i < 10; i++)
                zp_put(pool, o[--n]);
    }
    assert_true(fails > 0);
    assert_int_equal(ul(&ot->init_fails), ul(&ot->init_calls) / 5);
    assert_int_equal(ul(&ot->inits) + ul(&ot->init_fails), ul(&ot->init_calls));
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &ot->type, atomic_load(&pv->bytes_live));
    assert_int_equal(s.bytes_outstanding, 2000 * SIZE);
    assert_int_equal(s.gets, s.puts + 2000);
    assert_int_equal(zpt_obj_constructed_in(pv, ot), ul(&ot->inits) - ul(&ot->finis));
    for (i = 0; i < n; i++)
        zp_put(pool, o[i]);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.gets, s.puts);
    assert_int_equal(ul(&ot->resets), s.puts);
    destroy_clean(pool, ot, pv);
    free(o);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* A batch whose 10th init fails: the batch fails whole with init's value
 * (negated), takes nothing, and the 9 objects it constructed stay pooled,
 * constructed: the next batch constructs only the rest. */
static void test_batch_uncached(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(SIZE, 8, ZPT_OBJ_ALL);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .cache_depth = ZPT_ZERO);
    void *b[64];
    zp_stats s;
    size_t i;
    (void)state;
    atomic_store(&ot->fail_every, 10);
    assert_int_equal(zp_get_batch(pool, SIZE, b, 64), -EMFILE);
    assert_int_equal(ul(&ot->init_calls), 10);
    assert_int_equal(ul(&ot->inits), 9);
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &ot->type, atomic_load(&pv->bytes_live));
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(zpt_obj_constructed_in(pv, ot), 9);

    atomic_store(&ot->fail_every, 0);
    assert_int_equal(zp_get_batch(pool, SIZE, b, 64), 0);
    assert_int_equal(ul(&ot->inits), 64);
    assert_int_equal(ul(&ot->init_calls), 10 + 55);
    for (i = 0; i < 64; i++)
        assert_true(zpt_obj_constructed(ot, b[i]));
    s = zpt_read(pool);
    assert_int_equal(s.gets, 64);
    assert_int_equal(s.bytes_outstanding, 64 * SIZE);
    zp_put_batch(pool, b, 64);
    assert_int_equal(ul(&ot->resets), 64);
    destroy_clean(pool, ot, pv);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* Batches within and beyond the cache, every 7th init failing: each batch
 * is all or nothing; at the end nothing is out and nothing leaked. */
static void batches_every_nth(size_t n, int through_handle, int debug)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(SIZE, 8, ZPT_OBJ_ALL);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .debug = debug);
    zp_cache *h = NULL;
    void **held = malloc(40 * n * sizeof *held);
    size_t nheld = 0, i, ok = 0, failed = 0;
    zp_stats s;
    assert_non_null(held);
    if (through_handle)
        assert_int_equal(zp_cache_create(pool, &h), 0);
    atomic_store(&ot->fail_every, 7);
    while (ok < 40) {
        zp_stats before = zpt_read(pool);
        int rc = through_handle ? zp_cache_get_batch(h, SIZE, held + nheld, n)
                                : zp_get_batch(pool, SIZE, held + nheld, n);
        s = zpt_read(pool);
        if (rc != 0) {
            if (rc != -EMFILE)
                fail_msg("batch of %zu: %d, want -EMFILE", n, rc);
            if (s.gets != before.gets || s.bytes_outstanding != before.bytes_outstanding)
                fail_msg("a failed batch of %zu took objects: gets %llu -> %llu", n,
                         (unsigned long long)before.gets, (unsigned long long)s.gets);
            assert_true(++failed < 1000);
            continue;
        }
        for (i = 0; i < n; i++)
            assert_true(zpt_obj_constructed(ot, held[nheld + i]));
        nheld += n;
        ok++;
        assert_int_equal(s.gets, before.gets + n);
    }
    assert_true(failed > 0);
    /* no object handed out twice */
    for (i = 0; i < nheld; i++)
        assert_int_equal(zp_capacity(pool, held[i]), SIZE);
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &ot->type, atomic_load(&pv->bytes_live));
    assert_int_equal(s.bytes_outstanding, nheld * SIZE);
    assert_int_equal(zpt_obj_constructed_in(pv, ot), ul(&ot->inits) - ul(&ot->finis));
    if (through_handle)
        zp_cache_put_batch(h, held, nheld);
    else
        zp_put_batch(pool, held, nheld);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(ul(&ot->resets), nheld);
    if (s.misuse != 0) /* the checked path's state bits followed every failure */
        fail_msg("debug %d: %llu misuse reports after failed batches", debug,
                 (unsigned long long)s.misuse);
    zp_cache_destroy(h);
    destroy_clean(pool, ot, pv);
    free(held);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

static void test_batch_every_nth_cached(void **state)
{
    (void)state;
    int debug;
    for (debug = 0; debug <= 2; debug++) {
        batches_every_nth(16, 0, debug);  /* refilled through the cache */
        batches_every_nth(100, 0, debug); /* straight from the depot */
        batches_every_nth(16, 1, debug);  /* through a handle */
        batches_every_nth(100, 1, debug);
    }
}

/* Whatever init returns is what the caller gets, once: values the library
 * itself uses (ENOMEM, ENOBUFS, EOVERFLOW, EINVAL, ETIMEDOUT) included —
 * no retry, no reinterpretation, through every door. Every departure is
 * listed before the case fails. */
static char problems[4096];

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
    size_t used = strlen(problems);
    va_list ap;
    if (used + 2 >= sizeof problems)
        return;
    va_start(ap, fmt);
    vsnprintf(problems + used, sizeof problems - used - 1, fmt, ap);
    va_end(ap);
    strcat(problems, "\n");
}

static void test_errno_values(void **state)
{
    static const int values[] = {EMFILE, ENOMEM, ENOBUFS, EOVERFLOW, EINVAL, ETIMEDOUT,
                                 EAGAIN, EIO, EPERM};
    size_t v;
    (void)state;
    problems[0] = 0;
    for (v = 0; v < sizeof values / sizeof values[0]; v++) {
        int e = values[v], depth;
        for (depth = 0; depth < 2; depth++) {
            zpt_provider *pv = zpt_provider_new();
            zpt_objtype *ot = zpt_objtype_new(SIZE, 8, ZPT_OBJ_ALL);
            zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv,
                                     .cache_depth = depth ? 0 : ZPT_ZERO);
            const char *cache = depth ? "cached" : "uncached";
            zp_cache *h = NULL;
            void *p, *b[4];
            unsigned long calls;
            int rc;
            assert_int_equal(zp_cache_create(pool, &h), 0);
            atomic_store(&ot->fail_errno, e);
            atomic_store(&ot->fail_every, 1); /* every init fails */

            calls = ul(&ot->init_calls);
            errno = 0;
            p = zp_get(pool, SIZE);
            if (p != NULL || errno != e)
                problem("%s, init returning %d: zp_get gave %p, errno %d", cache, e, p, errno);
            if (ul(&ot->init_calls) != calls + 1)
                problem("%s, init returning %d: one zp_get called init %lu times", cache, e,
                        ul(&ot->init_calls) - calls);
            calls = ul(&ot->init_calls);
            errno = 0;
            p = zp_cache_get(h, SIZE);
            if (p != NULL || errno != e)
                problem("%s, init returning %d: zp_cache_get gave %p, errno %d", cache, e, p,
                        errno);
            if (ul(&ot->init_calls) != calls + 1)
                problem("%s, init returning %d: one zp_cache_get called init %lu times", cache,
                        e, ul(&ot->init_calls) - calls);
            calls = ul(&ot->init_calls);
            errno = 0;
            p = zp_get_timed(pool, SIZE, 0);
            if (p != NULL || errno != e)
                problem("%s, init returning %d: zp_get_timed(0) gave %p, errno %d", cache, e,
                        p, errno);
            errno = 0;
            p = zp_get_timed(pool, SIZE, 100);
            if (p != NULL || errno != e)
                problem("%s, init returning %d: zp_get_timed(100) gave %p, errno %d", cache,
                        e, p, errno);
            if (ul(&ot->init_calls) != calls + 2)
                problem("%s, init returning %d: two zp_get_timed called init %lu times",
                        cache, e, ul(&ot->init_calls) - calls);
            calls = ul(&ot->init_calls);
            if ((rc = zp_get_batch(pool, SIZE, b, 4)) != -e)
                problem("%s, init returning %d: zp_get_batch returned %d", cache, e, rc);
            if ((rc = zp_cache_get_batch(h, SIZE, b, 4)) != -e)
                problem("%s, init returning %d: zp_cache_get_batch returned %d", cache, e, rc);
            if (ul(&ot->init_calls) != calls + 2)
                problem("%s, init returning %d: two batches (each stopping at its first "
                        "failure) called init %lu times", cache, e,
                        ul(&ot->init_calls) - calls);
            if (ul(&ot->inits) != 0 || zpt_read(pool).gets != 0)
                problem("%s, init returning %d: %lu inits, %llu gets", cache, e,
                        ul(&ot->inits), (unsigned long long)zpt_read(pool).gets);

            /* init works again: the very same memory is constructed */
            atomic_store(&ot->fail_every, 0);
            p = zp_get(pool, SIZE);
            assert_non_null(p);
            assert_true(zpt_obj_constructed(ot, p));
            if (atomic_load(&pv->maps) != 1)
                problem("%s, init returning %d: %zu slabs mapped for one object", cache, e,
                        (size_t)atomic_load(&pv->maps));
            zp_put(pool, p);
            zp_cache_destroy(h);
            destroy_clean(pool, ot, pv);
            zpt_objtype_free(ot);
            zpt_provider_free(pv);
        }
    }
    if (problems[0])
        fail_msg("init's error did not reach the caller exactly once:\n%s", problems);
}

/* Init failing all the time for a while, then never: no slab is mapped
 * per failure, and the pool serves as if nothing had happened. */
static void test_failing_for_a_while(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(SIZE, 8, ZPT_OBJ_ALL);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv);
    void *o[500];
    int i;
    (void)state;
    atomic_store(&ot->fail_every, 1);
    for (i = 0; i < 5000; i++) {
        errno = 0;
        assert_null(zp_get(pool, SIZE));
        assert_int_equal(errno, EMFILE);
    }
    assert_int_equal(atomic_load(&pv->maps), 1);
    atomic_store(&ot->fail_every, 0);
    for (i = 0; i < 500; i++) {
        o[i] = zp_get(pool, SIZE);
        assert_non_null(o[i]);
        assert_true(zpt_obj_constructed(ot, o[i]));
    }
    for (i = 0; i < 500; i++)
        zp_put(pool, o[i]);
    assert_int_equal(atomic_load(&pv->maps), 1);
    destroy_clean(pool, ot, pv);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_every_nth_uncached),
        cmocka_unit_test(test_single_every_nth_cached),
        cmocka_unit_test(test_batch_uncached),
        cmocka_unit_test(test_batch_every_nth_cached),
        cmocka_unit_test(test_errno_values),
        cmocka_unit_test(test_failing_for_a_while),
    };
    return ZPT_RUN(tests);
}
