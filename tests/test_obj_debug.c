/* Debug level 2 on object pools: constructed state is never poisoned; objects without callbacks are poisoned and checked like buffers; leaks listed by call site. */
#include "zp_test.h"

#define expect_no_reports(what)                                                    \
    do {                                                                           \
        if (zpt_misuse_count(&zpt_g_misuse) != 0)                                  \
            fail_msg("%s: %d misuse reports, the first: \"%s\"", (what),           \
                     zpt_misuse_count(&zpt_g_misuse),                              \
                     zpt_misuse_nth(&zpt_g_misuse, 0).msg);                        \
    } while (0)

/* ------------------------------------------------- constructed state */

/* A type with any callback keeps its state across put and get at level
 * 2: no poison byte written, nothing reported, and (ASan) nothing
 * poisoned, so reset and fini can read the object while it is idle. */
static void state_survives(unsigned which, size_t depth)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(200, 8, which);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .pv = pv, .debug = 2,
                             .cache_depth = ZPT_EXACT(depth));
    unsigned char *o[16];
    size_t skip = ZPT_OBJ_STAMP, i, bad;
    int round;
    char what[64];
    snprintf(what, sizeof what, "callbacks 0x%x, cache depth %zu", which, depth);
    for (i = 0; i < 16; i++) {
        assert_non_null(o[i] = zp_get(pool, 200));
        zpt_fill(o[i] + skip, 200 - skip, i + 1);
    }
    for (round = 0; round < 3; round++) {
        for (i = 0; i < 16; i++)
            zp_put(pool, o[i]);
        for (i = 0; i < 16; i++) {
            if (zpt_asan_poisoned(o[i], 1) || zpt_asan_poisoned(o[i] + 199, 1))
                fail_msg("%s: an idle object with state is ASan-poisoned", what);
            if (zpt_all_bytes(o[i] + skip, 200 - skip, ZP_POISON_BYTE))
                fail_msg("%s: an idle object with state was poisoned", what);
        }
        /* all 16 come back (a cache and the depot are LIFO, not a promise:
         * match them by address) */
        {
            unsigned char *again[16];
            size_t k;
            for (i = 0; i < 16; i++)
                assert_non_null(again[i] = zp_get(pool, 200));
            for (i = 0; i < 16; i++) {
                for (k = 0; k < 16 && o[k] != again[i]; k++)
                    ;
                if (k == 16)
                    fail_msg("%s: round %d: a different object came back", what, round);
                if ((bad = zpt_check(again[i] + skip, 200 - skip, k + 1)) != SIZE_MAX)
                    fail_msg("%s: round %d: object %p lost its state at byte %zu", what,
                             round, (void *)again[i], skip + bad);
                if (ot->type.init && !zpt_obj_constructed(ot, again[i]))
                    fail_msg("%s: round %d: the constructed stamp is gone", what, round);
            }
        }
        expect_no_reports(what);
    }
    for (i = 0; i < 16; i++)
        zp_put(pool, o[i]);
    zp_trim(pool, 0); /* fini reads idle objects */
    expect_no_reports(what);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    if (ot->type.init && ot->type.fini)
        assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    zp_pool_destroy(pool);
    zpt_assert_objtype_clean(ot);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

static void test_state_survives(void **state)
{
    static const unsigned kinds[] = {ZPT_OBJ_ALL, ZPT_OBJ_INIT, ZPT_OBJ_RESET, ZPT_OBJ_FINI};
    size_t k;
    (void)state;
    for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        state_survives(kinds[k], 32);       /* through the thread's cache */
        state_survives(kinds[k], ZPT_ZERO); /* through the depot */
    }
}

/* Objects a refill constructed but nobody got yet are not poisoned
 * either: their first get finds them as init left them. */
static int init_marks(void *obj, zpt_objtype *ot)
{
    (void)ot;
    memset((unsigned char *)obj + ZPT_OBJ_STAMP, 0x3C, 64);
    return 0;
}

static void test_constructed_in_cache(void **state)
{
    zpt_objtype *ot = zpt_objtype_new(200, 8, ZPT_OBJ_ALL);
    zp_pool *pool;
    unsigned char *o[40];
    size_t i;
    (void)state;
    ot->on_init = init_marks;
    pool = ZPT_POOL(.type = &ot->type, .debug = 2);
    for (i = 0; i < 40; i++) {
        assert_non_null(o[i] = zp_get(pool, 200));
        if (!zpt_all_bytes(o[i] + ZPT_OBJ_STAMP, 64, 0x3C))
            fail_msg("object %zu: init's state is not what the get handed out", i);
        memset(o[i] + ZPT_OBJ_STAMP, 0x77, 64);
    }
    expect_no_reports("gets of constructed objects");
    for (i = 0; i < 40; i++)
        zp_put(pool, o[i]);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    zpt_assert_objtype_clean(ot);
    zpt_objtype_free(ot);
}

/* ------------------------------------------------- stateless objects */

/* Writes one byte into an idle object as a device or uninstrumented code
 * would (invisible to ASan). */
static void raw_write(unsigned char *p, size_t off, unsigned char v)
{
    zpt_asan_unpoison(p + off, 1);
    ((volatile unsigned char *)p)[off] = v;
}

/* Without callbacks, level 2 poisons idle objects as it does buffers: a
 * write after put is reported on the next get with its offset. */
static void stateless(size_t size, size_t align, size_t off)
{
    zp_obj_type t;
    zp_pool *pool;
    unsigned char *o, *again;
    zpt_misuse_report r;
    char want[48];
    int before = zpt_misuse_count(&zpt_g_misuse);
    size_t i;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    t.size = size;
    t.align = align;
    pool = ZPT_POOL(.type = &t, .debug = 2);
    o = zp_get(pool, size);
    assert_non_null(o);
    memset(o, 0x11, size);
    zp_put(pool, o);
#if defined(ZPT_ASAN)
    /* ASan poisons in 8-byte granules: only objects that fill theirs
     * can be poisoned without their neighbours */
    if (size % 8 == 0 && !zpt_asan_poisoned(o, size))
        fail_msg("size %zu: an idle stateless object is not ASan-poisoned", size);
    zpt_asan_unpoison(o, size);
#endif
    for (i = 0; i < size; i++)
        if (o[i] != ZP_POISON_BYTE)
            fail_msg("size %zu: byte %zu of a put object is 0x%02x, not the poison", size, i,
                     o[i]);
#if defined(ZPT_ASAN)
    zpt_asan_poison(o, size);
#endif
    raw_write(o, off, 0x42);
    again = zp_get(pool, size); /* LIFO: the same object */
    assert_ptr_equal(again, o);
    if (zpt_misuse_count(&zpt_g_misuse) != before + 1)
        fail_msg("size %zu: a write after put at byte %zu was not reported", size, off);
    r = zpt_misuse_nth(&zpt_g_misuse, before);
    assert_int_equal(r.kind, ZP_MISUSE_CORRUPTED);
    assert_ptr_equal(r.ptr, o);
    assert_ptr_equal(r.pool, pool);
    snprintf(want, sizeof want, "byte %zu ", off);
    if (!strstr(r.msg, want))
        fail_msg("size %zu: the report does not say \"%s\": \"%s\"", size, want, r.msg);
    /* usable, and clean on the next round trip */
    memset(again, 0x22, size);
    zp_put(pool, again);
    assert_ptr_equal(zp_get(pool, size), o);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), before + 1);
    zp_put(pool, o);
    zp_pool_destroy(pool);
}

static void test_stateless_poisoned(void **state)
{
    (void)state;
    stateless(24, 8, 0);
    stateless(24, 8, 23);
    stateless(200, 8, 117);
    stateless(3000, 4096, 2999);
    stateless(1, 1, 0);
}

/* ------------------------------------------------------- leak report */

static __attribute__((noinline)) void *leak_site(zp_pool *pool)
{
    void *o = zp_get(pool, 200);
    __asm__ volatile("" ::: "memory"); /* keep the call a real call */
    return o;
}

/* Objects outstanding at destroy are listed with the code that got them,
 * and are not finalised. */
static void test_leak_report(void **state)
{
    zpt_objtype *ot = zpt_objtype_new(200, 8, ZPT_OBJ_ALL);
    zp_pool *pool = ZPT_POOL(.type = &ot->type, .debug = 2);
    void *leaked[2], *fine;
    zpt_capture cap;
    char *out;
    int i;
    (void)state;
    for (i = 0; i < 2; i++)
        assert_non_null(leaked[i] = leak_site(pool));
    assert_non_null(fine = zp_get(pool, 200));
    zp_put(pool, fine);
    assert_int_equal(zpt_capture_begin(&cap), 0);
    zp_pool_destroy(pool);
    out = zpt_capture_end(&cap);
    assert_non_null(out);
    for (i = 0; i < 2; i++)
        if (!zpt_mentions_ptr(out, leaked[i]))
            fail_msg("the leak report does not list %p:\n%s", leaked[i], out);
    if (zpt_mentions_ptr(out, fine))
        fail_msg("the leak report lists %p, which was put:\n%s", fine, out);
    if (!strstr(out, "got at"))
        fail_msg("the leak report gives no call site:\n%s", out);
    if (!strstr(out, "objects of 200 bytes: 2 buffers"))
        fail_msg("destroy does not count 2 outstanding objects:\n%s", out);
    free(out);
    assert_int_equal(atomic_load(&ot->finis) + 2, atomic_load(&ot->inits));
    zpt_assert_objtype_clean(ot);
    zpt_objtype_free(ot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        zpt_misuse_unit_test(test_state_survives),
        zpt_misuse_unit_test(test_constructed_in_cache),
        zpt_misuse_unit_test(test_stateless_poisoned),
        zpt_misuse_unit_test(test_leak_report),
    };
    return ZPT_RUN(tests);
}
