/* Object pools' API: creation and its precise errors, sizes a pool serves, capacity, stats and export of one class, the typed wrappers. */
#include "zp_test.h"

#include <stdalign.h>

static zp_obj_type plain_type(size_t size, size_t align)
{
    zp_obj_type t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    t.size = size;
    t.align = align;
    return t;
}

static int dummy_init(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    return 0;
}

static void dummy_reset(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
}

/* Creating fails with -EINVAL and zp_strerror names the reason. */
static void expect_einval(const zp_config *cfg, const zp_obj_type *type, zp_pool **out,
                          const char *want1, const char *want2, const char *what)
{
    zp_pool *before = out ? *out : NULL;
    int rc = zp_objpool_create(cfg, type, out);
    const char *msg;
    if (rc != -EINVAL)
        fail_msg("%s: zp_objpool_create returned %d, want -EINVAL", what, rc);
    msg = zp_strerror(rc);
    if (msg == NULL || !strstr(msg, "zp_objpool_create") || !strstr(msg, want1) ||
        (want2 && !strstr(msg, want2)))
        fail_msg("%s: zp_strerror says \"%s\", want \"%s\"%s%s%s", what, msg ? msg : "(null)",
                 want1, want2 ? " and \"" : "", want2 ? want2 : "", want2 ? "\"" : "");
    if (out && *out != NULL && *out != before)
        fail_msg("%s: a failed create set *out to %p", what, (void *)*out);
}

static void test_invalid_types(void **state)
{
    zp_pool *pool = NULL;
    zp_obj_type t;
    zp_config cfg;
    char want[64];
    size_t page = zpt_page_size();
    (void)state;

    expect_einval(NULL, NULL, &pool, "type is NULL", NULL, "NULL type");
    t = plain_type(200, 8);
    expect_einval(NULL, &t, NULL, "out is NULL", NULL, "NULL out");

    t = plain_type(200, 8);
    t.struct_size = 0;
    expect_einval(NULL, &t, &pool, "struct_size 0", NULL, "struct_size 0");
    t.struct_size = sizeof(zp_obj_type) - 1;
    snprintf(want, sizeof want, "struct_size %zu", sizeof(zp_obj_type) - 1);
    expect_einval(NULL, &t, &pool, want, NULL, "struct_size ending inside arg");
    t.struct_size = offsetof(zp_obj_type, init);
    snprintf(want, sizeof want, "struct_size %zu", offsetof(zp_obj_type, init));
    expect_einval(NULL, &t, &pool, want, NULL, "struct_size without the callbacks");

    t = plain_type(0, 8);
    expect_einval(NULL, &t, &pool, "size 0 ", NULL, "size 0");
    t = plain_type(ZPT_GiB + 1, 8);
    snprintf(want, sizeof want, "size %zu ", ZPT_GiB + 1);
    expect_einval(NULL, &t, &pool, want, NULL, "size above 1 GiB");
    t = plain_type(SIZE_MAX, 8);
    snprintf(want, sizeof want, "size %zu ", (size_t)SIZE_MAX);
    expect_einval(NULL, &t, &pool, want, NULL, "size SIZE_MAX");

    t = plain_type(200, 3);
    expect_einval(NULL, &t, &pool, "align 3 ", NULL, "align 3");
    t = plain_type(200, 24);
    expect_einval(NULL, &t, &pool, "align 24 ", NULL, "align 24");
    t = plain_type(200, 2 * page);
    snprintf(want, sizeof want, "align %zu ", 2 * page);
    expect_einval(NULL, &t, &pool, want, NULL, "align above the page size");
    t = plain_type(200, (size_t)1 << 40);
    snprintf(want, sizeof want, "align %zu ", (size_t)1 << 40);
    expect_einval(NULL, &t, &pool, want, NULL, "align 2^40");

    /* the flags that would destroy constructed state */
    zp_config_init(&cfg);
    cfg.flags = ZP_ZERO_ON_GET;
    t = plain_type(200, 8);
    t.init = dummy_init;
    expect_einval(&cfg, &t, &pool, "ZP_ZERO_ON_GET", NULL, "ZP_ZERO_ON_GET with init");
    t = plain_type(200, 8);
    t.reset = dummy_reset;
    expect_einval(&cfg, &t, &pool, "ZP_ZERO_ON_GET", NULL, "ZP_ZERO_ON_GET with reset");
    cfg.flags = ZP_WIPE_ON_PUT;
    t = plain_type(200, 8);
    t.fini = dummy_reset;
    expect_einval(&cfg, &t, &pool, "ZP_WIPE_ON_PUT", NULL, "ZP_WIPE_ON_PUT with fini");
    t = plain_type(200, 8);
    t.init = dummy_init;
    expect_einval(&cfg, &t, &pool, "ZP_WIPE_ON_PUT", NULL, "ZP_WIPE_ON_PUT with init");

    /* the rest of the configuration is checked as for zp_pool_create */
    t = plain_type(200, 8);
    zp_config_init(&cfg);
    cfg.cache_depth = 65537;
    expect_einval(&cfg, &t, &pool, "cache_depth 65537", NULL, "cache_depth too large");
    zp_config_init(&cfg);
    cfg.max_bytes = ZPT_MiB;
    cfg.budget = zpt_budget_new(ZPT_MiB);
    expect_einval(&cfg, &t, &pool, "budget", "max_bytes", "budget and max_bytes");
    zp_budget_destroy(cfg.budget);
    zp_config_init(&cfg);
    cfg.flags = 0x100;
    expect_einval(&cfg, &t, &pool, "flags", NULL, "unknown flag");
    zp_config_init(&cfg);
    cfg.name = "no spaces";
    expect_einval(&cfg, &t, &pool, "name", NULL, "bad name");
    zp_config_init(&cfg);
    cfg.struct_size = 3;
    expect_einval(&cfg, &t, &pool, "struct_size 3", NULL, "config struct_size 3");
    assert_null(pool);
}

/* The limits themselves are valid: 1 GiB objects, page alignment, align 0
 * (alignof(max_align_t)); flags without callbacks are allowed. */
static void test_valid_limits(void **state)
{
    static const size_t aligns[] = {0, 1, 2, 16, 128};
    zp_pool *pool = NULL;
    zp_obj_type t;
    zp_config cfg;
    size_t i;
    void *obj;
    (void)state;
    t = plain_type(ZPT_GiB, 8);
    assert_int_equal(zp_objpool_create(NULL, &t, &pool), 0);
    assert_non_null(pool);
    zp_pool_destroy(pool);
    t = plain_type(1, zpt_page_size());
    assert_int_equal(zp_objpool_create(NULL, &t, &pool), 0);
    obj = zp_get(pool, 1);
    assert_non_null(obj);
    assert_int_equal((uintptr_t)obj % zpt_page_size(), 0);
    zp_put(pool, obj);
    zp_pool_destroy(pool);
    for (i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        size_t want = aligns[i] ? aligns[i] : alignof(max_align_t);
        t = plain_type(40, aligns[i]);
        assert_int_equal(zp_objpool_create(NULL, &t, &pool), 0);
        obj = zp_get(pool, 40);
        assert_non_null(obj);
        if ((uintptr_t)obj % want)
            fail_msg("align %zu: object %p is not aligned to %zu", aligns[i], obj, want);
        zp_put(pool, obj);
        zp_pool_destroy(pool);
    }
    /* flags without callbacks are allowed */
    zp_config_init(&cfg);
    cfg.flags = ZP_ZERO_ON_GET | ZP_WIPE_ON_PUT;
    t = plain_type(200, 8);
    assert_int_equal(zp_objpool_create(&cfg, &t, &pool), 0);
    zp_pool_destroy(pool);
}

/* min_class and max_class mean nothing to an object pool: garbage there
 * (which zp_pool_create rejects) still creates it. */
static void test_classes_ignored(void **state)
{
    static const size_t garbage[][2] = {
        {3, 5}, {0, 0}, {3000, 100}, {ZPT_GiB * 4, 64}, {SIZE_MAX, SIZE_MAX}};
    zp_obj_type t = plain_type(200, 8);
    size_t i;
    (void)state;
    for (i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        zp_config cfg;
        zp_pool *pool = NULL, *buffers = NULL;
        zp_stats s;
        void *obj;
        zp_config_init(&cfg);
        cfg.min_class = garbage[i][0];
        cfg.max_class = garbage[i][1];
        assert_int_equal(zp_pool_create(&cfg, &buffers), -EINVAL);
        if (zp_objpool_create(&cfg, &t, &pool) != 0)
            fail_msg("min_class %zu max_class %zu: zp_objpool_create failed: %s",
                     garbage[i][0], garbage[i][1], zp_strerror(-EINVAL));
        obj = zp_get(pool, 200);
        assert_non_null(obj);
        assert_int_equal(zp_capacity(pool, obj), 200);
        s = zpt_read(pool);
        zpt_assert_obj_stats(&s, &t, SIZE_MAX);
        zp_put(pool, obj);
        zp_pool_destroy(pool);
    }
}

/* Any size up to the object's is one object; larger sizes fail with
 * EOVERFLOW on every get, leaving nothing taken. */
static void test_sizes_served(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_obj_type t = plain_type(200, 8);
    zp_pool *pool = ZPT_POOL(.type = &t, .pv = pv);
    zp_cache *h = NULL;
    void *obj, *bufs[4] = {NULL, NULL, NULL, NULL};
    static const size_t ok[] = {1, 7, 64, 100, 199, 200};
    static const size_t too_big[] = {201, 256, 4096, ZPT_MiB, ZPT_GiB, SIZE_MAX};
    zp_stats s;
    size_t i;
    (void)state;
    assert_int_equal(zp_cache_create(pool, &h), 0);
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        obj = zp_get(pool, ok[i]);
        assert_non_null(obj);
        assert_int_equal(zp_capacity(pool, obj), 200);
        zp_put(pool, obj);
        obj = zp_cache_get(h, ok[i]);
        assert_non_null(obj);
        assert_int_equal(zp_capacity(pool, obj), 200);
        zp_cache_put(h, obj);
        assert_int_equal(zp_get_batch(pool, ok[i], bufs, 4), 0);
        zp_put_batch(pool, bufs, 4);
    }
    for (i = 0; i < sizeof too_big / sizeof too_big[0]; i++) {
        size_t size = too_big[i];
        errno = 0;
        assert_null(zp_get(pool, size));
        if (errno != EOVERFLOW)
            fail_msg("zp_get(%zu): errno %d, want EOVERFLOW", size, errno);
        errno = 0;
        assert_null(zp_cache_get(h, size));
        assert_int_equal(errno, EOVERFLOW);
        errno = 0;
        assert_null(zp_get_timed(pool, size, 0));
        assert_int_equal(errno, EOVERFLOW);
        errno = 0;
        assert_null(zp_get_timed(pool, size, 10));
        assert_int_equal(errno, EOVERFLOW);
        assert_int_equal(zp_get_batch(pool, size, bufs, 4), -EOVERFLOW);
        assert_int_equal(zp_cache_get_batch(h, size, bufs, 4), -EOVERFLOW);
    }
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &t, atomic_load(&pv->bytes_live));
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.gets, 6 * (1 + 1 + 4));
    assert_int_equal(s.puts, s.gets);
    assert_int_equal(s.oversize, 0);
    zp_cache_destroy(h);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

/* zp_capacity is the object's size for the object itself, 0 for anything
 * else: an interior pointer, another pool's object, a stranger. */
static void test_capacity(void **state)
{
    zp_obj_type t = plain_type(24, 8), u = plain_type(24, 8);
    zp_pool *pool = ZPT_POOL(.type = &t), *other = ZPT_POOL(.type = &u);
    unsigned char *obj = zp_get(pool, 24), *theirs = zp_get(other, 24);
    int local = 0;
    (void)state;
    assert_non_null(obj);
    assert_non_null(theirs);
    assert_int_equal(zp_capacity(pool, obj), 24);
    assert_int_equal(zp_capacity(pool, obj + 1), 0);
    assert_int_equal(zp_capacity(pool, obj + 8), 0);
    assert_int_equal(zp_capacity(pool, obj + 23), 0);
    assert_int_equal(zp_capacity(pool, theirs), 0);
    assert_int_equal(zp_capacity(other, theirs), 24);
    assert_int_equal(zp_capacity(pool, &local), 0);
    assert_int_equal(zp_capacity(pool, NULL), 0);
    assert_int_equal(zp_capacity(NULL, obj), 0);
    zp_put(pool, obj);
    zp_put(other, theirs);
    zp_pool_destroy(pool);
    zp_pool_destroy(other);
}

/* Stats show one class whose size is the object's, its byte gauges in
 * strides; every export format says so. */
static void test_stats_and_export(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_obj_type t = plain_type(24, 64); /* stride 64 */
    zp_pool *pool = ZPT_POOL(.type = &t, .pv = pv, .name = "objs");
    void *objs[10];
    char *text = NULL;
    size_t len = 0, i;
    FILE *f;
    zp_stats s;
    const char *p;
    int sizes = 0;
    (void)state;
    for (i = 0; i < 10; i++)
        assert_non_null(objs[i] = zp_get(pool, 24));
    for (i = 0; i < 4; i++)
        zp_put(pool, objs[i]);
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &t, atomic_load(&pv->bytes_live));
    assert_int_equal(s.nclasses, 1);
    assert_int_equal(s.classes[0].size, 24);
    assert_int_equal(s.gets, 10);
    assert_int_equal(s.classes[0].gets, 10);
    assert_int_equal(s.puts, 4);
    assert_int_equal(s.classes[0].puts, 4);
    assert_int_equal(s.bytes_outstanding, 6 * 64);
    assert_int_equal(s.classes[0].bytes_outstanding, 6 * 64);
    assert_true(s.bytes_cached >= 4 * 64);
    assert_int_equal(s.classes[0].bytes_reserved, s.bytes_reserved);
    assert_int_equal(s.oversize, 0);

    f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(zp_stats_write(pool, f, ZP_FORMAT_JSON), 0);
    fclose(f);
    if (!strstr(text, "\"pool\":\"objs\"") || !strstr(text, "\"classes\":[{\"size\":24,"))
        fail_msg("JSON export does not show one class of 24 bytes: %s", text);
    for (p = text; (p = strstr(p, "\"size\":")) != NULL; p++)
        sizes++;
    if (sizes != 1)
        fail_msg("JSON export shows %d classes: %s", sizes, text);
    free(text);

    text = NULL;
    f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(zp_stats_write(pool, f, ZP_FORMAT_PROMETHEUS), 0);
    fclose(f);
    if (!strstr(text, "zeropool_gets_total{pool=\"objs\",class=\"24\"} 10"))
        fail_msg("Prometheus export does not count 10 gets of class 24:\n%s", text);
    free(text);

    text = NULL;
    f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(zp_stats_write(pool, f, ZP_FORMAT_TEXT), 0);
    fclose(f);
    if (!strstr(text, "objs"))
        fail_msg("text export does not name the pool:\n%s", text);
    free(text);

    for (i = 4; i < 10; i++)
        zp_put(pool, objs[i]);
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &t, atomic_load(&pv->bytes_live));
    assert_int_equal(s.bytes_outstanding, 0);
    zp_stats_reset(pool);
    s = zpt_read(pool);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.nclasses, 1);
    assert_int_equal(s.classes[0].size, 24);
    zp_pool_destroy(pool);
    zpt_provider_free(pv);
}

/* ZP_OBJPOOL_DEFINE: typed get and put of a real struct. */
struct conn {
    int fd;
    unsigned short port;
    char peer[46];
    double opened;
    struct conn *next;
};

ZP_OBJPOOL_DEFINE(conn, struct conn)

static void test_typed_wrappers(void **state)
{
    zp_obj_type t = plain_type(sizeof(struct conn), alignof(struct conn));
    zp_pool *pool = NULL;
    struct conn *c[8], *again;
    zp_stats s;
    int i;
    (void)state;
    assert_int_equal(zp_objpool_create(NULL, &t, &pool), 0);
    for (i = 0; i < 8; i++) {
        c[i] = conn_get(pool);
        assert_non_null(c[i]);
        assert_int_equal((uintptr_t)c[i] % alignof(struct conn), 0);
        assert_int_equal(zp_capacity(pool, c[i]), sizeof(struct conn));
        c[i]->fd = 100 + i;
        c[i]->port = (unsigned short)(8000 + i);
        snprintf(c[i]->peer, sizeof c[i]->peer, "192.0.2.%d", i);
        c[i]->opened = i * 1.5;
        c[i]->next = i ? c[i - 1] : NULL;
    }
    for (i = 0; i < 8; i++) {
        char want[46];
        snprintf(want, sizeof want, "192.0.2.%d", i);
        assert_int_equal(c[i]->fd, 100 + i);
        assert_int_equal(c[i]->port, 8000 + i);
        assert_string_equal(c[i]->peer, want);
        assert_true(c[i]->opened == i * 1.5);
        assert_ptr_equal(c[i]->next, i ? c[i - 1] : NULL);
    }
    for (i = 0; i < 8; i++)
        conn_put(pool, c[i]);
    again = conn_get(pool); /* the thread's cache is LIFO */
    assert_ptr_equal(again, c[7]);
    assert_int_equal(again->fd, 107); /* no init, no reset: untouched */
    conn_put(pool, again);
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &t, SIZE_MAX);
    assert_int_equal(s.gets, 9);
    assert_int_equal(s.puts, 9);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_pool_destroy(pool);
}

/* The type is copied: changing the caller's struct afterwards changes
 * nothing. */
static int count_init(void *obj, void *arg)
{
    (void)obj;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static int never_init(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    return EPERM;
}

static void test_type_copied(void **state)
{
    atomic_int inits = 0;
    zp_obj_type t = plain_type(48, 16);
    zp_pool *pool;
    void *obj;
    (void)state;
    t.init = count_init;
    t.arg = &inits;
    pool = ZPT_POOL(.type = &t, .cache_depth = ZPT_ZERO);
    t.size = 8;
    t.align = 4096;
    t.init = never_init;
    t.arg = NULL;
    obj = zp_get(pool, 48);
    assert_non_null(obj);
    assert_int_equal(zp_capacity(pool, obj), 48);
    assert_int_equal(atomic_load(&inits), 1);
    zp_put(pool, obj);
    zp_pool_destroy(pool);
}

/* The NULL-pool rule holds for object pools' callers too. */
static void test_null_pool(void **state)
{
    struct conn c;
    (void)state;
    errno = 0;
    assert_null(conn_get(NULL));
    assert_int_equal(errno, EINVAL);
    conn_put(NULL, &c); /* a no-op */
}

/* ZP_ZERO_ON_GET on a type without callbacks: every object is handed out
 * zeroed, whatever it held when it was put. */
static void test_zero_on_get(void **state)
{
    zp_obj_type t = plain_type(3000, 8);
    zp_pool *pool = ZPT_POOL(.type = &t, .flags = ZP_ZERO_ON_GET);
    unsigned char *a, *b;
    int round;
    (void)state;
    for (round = 0; round < 3; round++) {
        a = zp_get(pool, 3000);
        assert_non_null(a);
        if (!zpt_all_zero(a, 3000))
            fail_msg("round %d: an object is not zeroed on get", round);
        memset(a, 0xA5, 3000);
        zp_put(pool, a);
        b = zp_get(pool, 3000);
        assert_ptr_equal(a, b);
        if (!zpt_all_zero(b, 3000))
            fail_msg("round %d: a reused object is not zeroed on get", round);
        memset(b, 0x5A, 3000);
        zp_put(pool, b);
    }
    zp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_types),
        cmocka_unit_test(test_valid_limits),
        cmocka_unit_test(test_classes_ignored),
        cmocka_unit_test(test_sizes_served),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_stats_and_export),
        cmocka_unit_test(test_typed_wrappers),
        cmocka_unit_test(test_type_copied),
        cmocka_unit_test(test_null_pool),
        cmocka_unit_test(test_zero_on_get),
    };
    return ZPT_RUN(tests);
}
