/* Object pool misuse: interior pointers and slab tails are FOREIGN, double puts DOUBLE_PUT and other pools' objects WRONG_POOL at debug 1; a rejected put runs no reset. */
#include "zp_test.h"

/* Expects exactly n reports since the last reset, the last of `kind`
 * naming ptr and pool. */
#define expect_reports(n, kind, pool, ptr, what)                                   \
    expect_reports_at(__FILE__, __LINE__, (n), (kind), (pool), (ptr), (what))
static void expect_reports_at(const char *file, int line, int n, int kind, zp_pool *pool,
                              const void *ptr, const char *what)
{
    zpt_misuse_report r;
    int count = zpt_misuse_count(&zpt_g_misuse);
    if (count != n)
        zpt_fail_at(file, line, "%s: %d misuse reports, want %d", what, count, n);
    if (n == 0)
        return;
    r = zpt_misuse_nth(&zpt_g_misuse, n - 1);
    if (r.kind != kind)
        zpt_fail_at(file, line, "%s: kind %d, want %d (\"%s\")", what, r.kind, kind, r.msg);
    if (r.pool != pool)
        zpt_fail_at(file, line, "%s: handler got pool %p, want %p", what, (void *)r.pool,
                    (void *)pool);
    if (r.ptr != ptr)
        zpt_fail_at(file, line, "%s: handler got %p, want %p", what, r.ptr, ptr);
    if (!zpt_mentions_ptr(r.msg, ptr))
        zpt_fail_at(file, line, "%s: message does not name %p: \"%s\"", what, ptr, r.msg);
}

/* ---------------------------------------------------- interior pointers */

/* Every put door given a pointer inside an object (not its start) reports
 * FOREIGN and ignores it: no reset, no count, the object stays the
 * caller's and goes back properly afterwards. */
static void interior(size_t size, size_t align, unsigned which, int debug)
{
    zpt_objtype *ot = zpt_objtype_new(size, align, which);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .debug = debug);
    size_t stride = zpt_obj_stride(&ot->type);
    size_t offs[4] = {1, size / 2, size - 1, stride - 1};
    unsigned char *o = zp_get(pool, size);
    zp_cache *h = NULL;
    zp_stats s0, s1;
    int n = 0;
    size_t k;
    char what[96];
    assert_non_null(o);
    assert_int_equal(zp_cache_create(pool, &h), 0);
    zpt_misuse_reset(&zpt_g_misuse);
    s0 = zpt_read(pool);
    for (k = 0; k < 4; k++) {
        unsigned char *in = o + offs[k];
        if (offs[k] == 0 || offs[k] >= stride)
            continue;
        snprintf(what, sizeof what, "size %zu align %zu debug %d: zp_put(obj + %zu)", size,
                 align, debug, offs[k]);
        zp_put(pool, in);
        expect_reports(++n, ZP_MISUSE_FOREIGN, pool, in, what);
        snprintf(what, sizeof what, "size %zu align %zu debug %d: zp_put_batch(obj + %zu)",
                 size, align, debug, offs[k]);
        zp_put_batch(pool, (void *const *)&in, 1);
        expect_reports(++n, ZP_MISUSE_FOREIGN, pool, in, what);
        snprintf(what, sizeof what, "size %zu align %zu debug %d: zp_cache_put(obj + %zu)",
                 size, align, debug, offs[k]);
        zp_cache_put(h, in);
        expect_reports(++n, ZP_MISUSE_FOREIGN, pool, in, what);
    }
    s1 = zpt_read(pool);
    assert_int_equal(s1.puts, s0.puts);
    assert_int_equal(s1.misuse, s0.misuse + (uint64_t)n);
    assert_int_equal(s1.bytes_outstanding, s0.bytes_outstanding);
    assert_int_equal(atomic_load(&ot->resets), 0);
    zp_put(pool, o);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), n); /* the object itself is fine */
    if (ot->type.reset)
        assert_int_equal(atomic_load(&ot->resets), 1);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);
    zp_cache_destroy(h);
    zp_pool_destroy(pool);
    zpt_assert_objtype_clean(ot);
    zpt_objtype_free(ot);
}

static void test_interior_pointers(void **state)
{
    int debug;
    (void)state;
    for (debug = 0; debug <= 1; debug++) {
        interior(24, 8, 0, debug);            /* stride 24: not a power of two */
        interior(64, 64, 0, debug);           /* stride 64, no reset: the bare put */
        interior(200, 8, ZPT_OBJ_ALL, debug); /* with callbacks */
        interior(24, 64, ZPT_OBJ_RESET, debug); /* the padding after the object */
        interior(3000, 4096, ZPT_OBJ_ALL, debug);
        interior(70000, 8, 0, debug);
    }
}

/* The tail of a slab after its last whole object, and slots never carved,
 * are no objects. */
static void test_slab_tail(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(200, 8, ZPT_OBJ_ALL);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .debug = 1,
                             .cache_depth = ZPT_ZERO);
    unsigned char *o = zp_get(pool, 200), *base, *tail, *last;
    size_t region, nobj, stride = 200;
    int n = 0;
    (void)state;
    assert_non_null(o);
    assert_true(zpt_provider_region(pv, o, &base, &region));
    nobj = region / stride;
    tail = base + nobj * stride;
    last = base + (nobj - 1) * stride;
    if (tail + 1 <= base + region) { /* the slab has a tail */
        zp_put(pool, tail);
        n++;
        expect_reports(n, ZP_MISUSE_FOREIGN, pool, tail, "the slab's tail");
        assert_int_equal(zp_capacity(pool, tail), 0);
    }
    if (last != o) { /* never handed out: FOREIGN (uncarved) or DOUBLE_PUT */
        zpt_misuse_report r;
        zp_put(pool, last);
        n++;
        assert_int_equal(zpt_misuse_count(&zpt_g_misuse), n);
        r = zpt_misuse_nth(&zpt_g_misuse, n - 1);
        if (r.kind != ZP_MISUSE_FOREIGN && r.kind != ZP_MISUSE_DOUBLE_PUT)
            fail_msg("the slab's last slot, never got: kind %d (\"%s\")", r.kind, r.msg);
    }
    assert_int_equal(atomic_load(&ot->resets), 0);
    zp_put(pool, o);
    assert_int_equal(atomic_load(&ot->resets), 1);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), n);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    zpt_assert_objtype_clean(ot);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

/* ------------------------------------------------------------ double put */

static void test_double_put(void **state)
{
    zpt_objtype *ot = zpt_objtype_new(200, 8, ZPT_OBJ_ALL);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .debug = 1);
    zp_cache *h = NULL;
    void *a, *b, *c, *two[2], *got[64];
    unsigned long r;
    zp_stats s;
    size_t i, j;
    (void)state;
    assert_int_equal(zp_cache_create(pool, &h), 0);
    a = zp_get(pool, 200);
    b = zp_get(pool, 200);
    c = zp_cache_get(h, 200);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);

    zp_put(pool, a);
    r = atomic_load(&ot->resets);
    zp_put(pool, a);
    expect_reports(1, ZP_MISUSE_DOUBLE_PUT, pool, a, "zp_put twice");
    assert_int_equal(atomic_load(&ot->resets), r); /* no second reset */

    two[0] = b;
    two[1] = b;
    zp_put_batch(pool, two, 2);
    expect_reports(2, ZP_MISUSE_DOUBLE_PUT, pool, b, "one object twice in a batch");
    assert_int_equal(atomic_load(&ot->resets), r + 1);

    zp_cache_put(h, c);
    zp_cache_put(h, c);
    expect_reports(3, ZP_MISUSE_DOUBLE_PUT, pool, c, "zp_cache_put twice");
    zp_put(pool, c);
    expect_reports(4, ZP_MISUSE_DOUBLE_PUT, pool, c, "zp_put after zp_cache_put");
    assert_int_equal(atomic_load(&ot->resets), r + 2);

    s = zpt_read(pool);
    assert_int_equal(s.puts, 3);
    assert_int_equal(s.misuse, 4);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_cache_destroy(h);

    /* none of them is handed out twice */
    assert_int_equal(zp_get_batch(pool, 200, got, 64), 0);
    for (i = 0; i < 64; i++)
        for (j = 0; j < i; j++)
            if (got[i] == got[j])
                fail_msg("%p handed out twice", got[i]);
    zp_put_batch(pool, got, 64);
    expect_reports(4, ZP_MISUSE_DOUBLE_PUT, pool, c, "clean batch");
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    zpt_assert_objtype_clean(ot);
    zpt_objtype_free(ot);
}

/* ------------------------------------------------------------ wrong pool */

static void test_wrong_pool(void **state)
{
    zpt_objtype *ta = zpt_objtype_new(200, 8, ZPT_OBJ_ALL);
    zpt_objtype *tb = zpt_objtype_new(200, 8, ZPT_OBJ_ALL);
    zp_pool *a = ZPT_POOL(.type = &ta->type, .debug = 1, .name = "objects-a");
    zp_pool *b = ZPT_POOL(.type = &tb->type, .debug = 1, .name = "objects-b");
    zp_pool *bytes = ZPT_POOL(.debug = 1, .name = "bytes");
    void *oa = zp_get(a, 200), *ob = zp_get(b, 200), *buf = zp_get(bytes, 4096);
    void *batch[3];
    zpt_misuse_report first;
    zp_stats s;
    (void)state;
    assert_non_null(oa);
    assert_non_null(ob);
    assert_non_null(buf);

    zp_put(a, ob);
    expect_reports(1, ZP_MISUSE_WRONG_POOL, a, ob, "b's object put on a");
    first = zpt_misuse_nth(&zpt_g_misuse, 0);
    if (!strstr(first.msg, "objects-a") || !strstr(first.msg, "objects-b"))
        fail_msg("message does not name both pools: \"%s\"", first.msg);
    zp_put(a, buf);
    expect_reports(2, ZP_MISUSE_WRONG_POOL, a, buf, "a byte pool's buffer put on a");
    zp_put(bytes, oa);
    expect_reports(3, ZP_MISUSE_WRONG_POOL, bytes, oa, "a's object put on a byte pool");
    batch[0] = oa;
    batch[1] = ob;
    batch[2] = NULL;
    zp_put_batch(a, batch, 3); /* oa goes back, ob is reported */
    expect_reports(4, ZP_MISUSE_WRONG_POOL, a, ob, "b's object in a batch on a");

    assert_int_equal(atomic_load(&ta->resets), 1);
    assert_int_equal(atomic_load(&tb->resets), 0);
    s = zpt_read(a);
    assert_int_equal(s.puts, 1);
    assert_int_equal(s.misuse, 3);
    assert_int_equal(s.bytes_outstanding, 0);
    s = zpt_read(b);
    assert_int_equal(s.misuse, 0);
    assert_int_equal(s.bytes_outstanding, 200);
    assert_true(zpt_obj_constructed(tb, ob));

    zp_put(b, ob);
    zp_put(bytes, buf);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 4);
    zp_pool_destroy(a);
    zp_pool_destroy(b);
    zp_pool_destroy(bytes);
    assert_int_equal(atomic_load(&ta->finis), atomic_load(&ta->inits));
    assert_int_equal(atomic_load(&tb->finis), atomic_load(&tb->inits));
    zpt_assert_objtype_clean(ta);
    zpt_assert_objtype_clean(tb);
    zpt_objtype_free(ta);
    zpt_objtype_free(tb);
}

/* At debug 0 another pool's object is FOREIGN, and is still ignored. */
static void test_wrong_pool_debug0(void **state)
{
    zpt_objtype *ta = zpt_objtype_new(64, 64, 0);
    zpt_objtype *tb = zpt_objtype_new(64, 64, ZPT_OBJ_ALL);
    zp_pool *a = ZPT_POOL(.type = &ta->type), *b = ZPT_POOL(.type = &tb->type);
    void *ob = zp_get(b, 64);
    int local;
    (void)state;
    assert_non_null(ob);
    zp_put(a, ob);
    expect_reports(1, ZP_MISUSE_FOREIGN, a, ob, "b's object on a, debug 0");
    zp_put(a, &local);
    expect_reports(2, ZP_MISUSE_FOREIGN, a, &local, "a stack address");
    assert_int_equal(atomic_load(&tb->resets), 0);
    assert_int_equal(zpt_read(a).puts, 0);
    zp_put(b, ob);
    assert_int_equal(atomic_load(&tb->resets), 1);
    zp_pool_destroy(a);
    zp_pool_destroy(b);
    zpt_objtype_free(ta);
    zpt_objtype_free(tb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        zpt_misuse_unit_test(test_interior_pointers),
        zpt_misuse_unit_test(test_slab_tail),
        zpt_misuse_unit_test(test_double_put),
        zpt_misuse_unit_test(test_wrong_pool),
        zpt_misuse_unit_test(test_wrong_pool_debug0),
    };
    return ZPT_RUN(tests);
}
