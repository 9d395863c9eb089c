/* Tests detection of foreign pointers and double puts, and the misuse handler. */
#include "zp_test.h"

#include <signal.h>
#include <sys/wait.h>

/* Puts ptr into pool, expects exactly one report of `kind` (0: either
 * kind) naming ptr and pool, and no other effect on the pool's stats. */
static void expect_misuse(zp_pool *pool, void *ptr, int kind, const char *what)
{
    zp_stats before, after;
    zpt_misuse_report got;
    int count;
    assert_int_equal(zpt_stats(pool, &before), 0);
    zpt_misuse_reset(&zpt_g_misuse);
    zp_put(pool, ptr);
    count = zpt_misuse_last(&zpt_g_misuse, &got);
    if (count != 1)
        fail_msg("%s: handler called %d times, want 1", what, count);
    if (kind && got.kind != kind)
        fail_msg("%s: kind %d, want %d (message: \"%s\")", what, got.kind,
                 kind, got.msg);
    if (!kind && got.kind != ZP_MISUSE_FOREIGN &&
        got.kind != ZP_MISUSE_DOUBLE_PUT)
        fail_msg("%s: unknown kind %d", what, got.kind);
    if (got.ptr != ptr)
        fail_msg("%s: handler got ptr %p, want %p", what, got.ptr, ptr);
    if (got.pool != pool)
        fail_msg("%s: handler got pool %p, want %p", what, (void *)got.pool,
                 (void *)pool);
    assert_false(got.msg_was_null);
    if (!zpt_mentions_ptr(got.msg, ptr))
        fail_msg("%s: message \"%s\" does not name the pointer %p", what,
                 got.msg, ptr);
    if (!zpt_mentions_ptr(got.msg, pool))
        fail_msg("%s: message \"%s\" does not name the pool %p", what,
                 got.msg, (void *)pool);
    assert_int_equal(zpt_stats(pool, &after), 0);
    assert_int_equal(after.puts, before.puts);
    assert_int_equal(after.gets, before.gets);
    assert_int_equal(after.discards, before.discards);
    assert_int_equal(after.misuse, before.misuse + 1);
    assert_int_equal(after.bytes_outstanding, before.bytes_outstanding);
    assert_int_equal(after.bytes_reserved, before.bytes_reserved);
}

/* Gets n buffers of size from pool and checks none is in bad[0..nbad). */
static void expect_never_handed_out(zp_pool *pool, size_t size, void **bad,
                                    size_t nbad)
{
    void *got[128];
    size_t i, j, n = 128;
    for (i = 0; i < n; i++) {
        got[i] = zp_get(pool, size);
        assert_non_null(got[i]);
        for (j = 0; j < nbad; j++)
            if ((char *)got[i] <= (char *)bad[j] &&
                (char *)bad[j] < (char *)got[i] + zp_capacity(pool, got[i]) &&
                got[i] != bad[j])
                fail_msg("buffer %p handed out, overlaps ignored ptr %p",
                         got[i], bad[j]);
            else if (got[i] == bad[j])
                fail_msg("ignored pointer %p was handed out", bad[j]);
        for (j = 0; j < i; j++)
            assert_ptr_not_equal(got[i], got[j]);
    }
    for (i = 0; i < n; i++)
        zp_put(pool, got[i]);
}

static void test_stack_pointer(void **state)
{
    zp_pool *pool = ZPT_POOL();
    char stackbuf[8192];
    void *bad[1];
    (void)state;
    /* warm the pool so the slab map is populated */
    zp_put(pool, zp_get(pool, 4096));
    expect_misuse(pool, stackbuf, ZP_MISUSE_FOREIGN, "stack pointer");
    assert_int_equal(zp_capacity(pool, stackbuf), 0);
    bad[0] = stackbuf;
    expect_never_handed_out(pool, 4096, bad, 1);
    zp_pool_destroy(pool);
}

static void test_heap_pointers(void **state)
{
    zp_pool *pool = ZPT_POOL();
    void *m = malloc(4096);
    void *a = aligned_alloc(65536, 65536);
    void *bad[2];
    (void)state;
    assert_non_null(m);
    assert_non_null(a);
    zp_put(pool, zp_get(pool, 4096));
    expect_misuse(pool, m, ZP_MISUSE_FOREIGN, "malloc pointer");
    expect_misuse(pool, a, ZP_MISUSE_FOREIGN, "aligned_alloc(64 KiB) pointer");
    assert_int_equal(zp_capacity(pool, m), 0);
    assert_int_equal(zp_capacity(pool, a), 0);
    bad[0] = m;
    bad[1] = a;
    expect_never_handed_out(pool, 4096, bad, 2);
    free(m);
    free(a);
    zp_pool_destroy(pool);
}

/* A 64 KiB-aligned address of an anonymous mapping the pool never saw. */
static void test_mmap_pointer(void **state)
{
    zp_pool *pool = ZPT_POOL();
    unsigned char *raw = zpt_raw_map(256 * ZPT_KiB, 256 * ZPT_KiB);
    (void)state;
    assert_non_null(raw);
    zp_put(pool, zp_get(pool, 4096));
    expect_misuse(pool, raw, ZP_MISUSE_FOREIGN, "foreign mapping");
    expect_misuse(pool, raw + 65536, ZP_MISUSE_FOREIGN, "foreign mapping+64K");
    assert_int_equal(zp_capacity(pool, raw), 0);
    munmap(raw, 256 * ZPT_KiB);
    zp_pool_destroy(pool);
}

/* Another pool's buffer: FOREIGN at debug 0, WRONG_POOL from debug 1. */
static void run_other_pool(int debug)
{
    zp_pool *a = ZPT_POOL(.debug = debug), *b = ZPT_POOL(.debug = debug);
    zp_stats sb0, sb1;
    void *fromb, *big, *bad[2];
    int kind = debug >= 1 ? ZP_MISUSE_WRONG_POOL : ZP_MISUSE_FOREIGN;
    zp_put(a, zp_get(a, 4096));
    fromb = zp_get(b, 4096);
    big = zp_get(b, 128 * ZPT_MiB); /* oversize in b */
    assert_non_null(fromb);
    assert_non_null(big);
    zpt_fill(fromb, 4096, 5);
    assert_int_equal(zpt_stats(b, &sb0), 0);

    expect_misuse(a, fromb, kind, "other pool's buffer");
    expect_misuse(a, big, kind, "other pool's oversize buffer");
    assert_int_equal(zp_capacity(a, fromb), 0);
    assert_int_equal(zp_capacity(a, big), 0);

    /* b saw nothing and still owns the buffers */
    assert_int_equal(zpt_stats(b, &sb1), 0);
    assert_int_equal(sb1.misuse, sb0.misuse);
    assert_int_equal(sb1.puts, sb0.puts);
    assert_int_equal(sb1.bytes_outstanding, sb0.bytes_outstanding);
    assert_int_equal(zpt_check(fromb, 4096, 5), SIZE_MAX);
    assert_int_equal(zp_capacity(b, fromb), 4096);
    bad[0] = fromb;
    bad[1] = big;
    expect_never_handed_out(a, 4096, bad, 2);

    zpt_misuse_reset(&zpt_g_misuse);
    zp_put(b, fromb);
    zp_put(b, big);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 0);
    assert_int_equal(zpt_stats(b, &sb1), 0);
    assert_int_equal(sb1.puts, sb0.puts + 2);
    assert_int_equal(sb1.bytes_outstanding, 0);
    assert_int_equal(sb1.misuse, 0);
    zp_pool_destroy(a);
    zp_pool_destroy(b);
}

static void test_other_pool(void **state)
{
    (void)state;
    run_other_pool(0);
}

static void test_other_pool_debug(void **state)
{
    (void)state;
    run_other_pool(1);
}

static void test_other_pool_debug2(void **state)
{
    (void)state;
    run_other_pool(2);
}

static void run_interior(int debug)
{
    zp_pool *pool = ZPT_POOL(.debug = debug);
    unsigned char *buf = zp_get(pool, 4096);
    unsigned char *big = zp_get(pool, 65 * ZPT_MiB); /* oversize */
    void *bad[5];
    zp_stats s;
    assert_non_null(buf);
    assert_non_null(big);
    zpt_fill(buf, 4096, 9);
    expect_misuse(pool, buf + 1, ZP_MISUSE_FOREIGN, "interior buf+1");
    expect_misuse(pool, buf + 64, ZP_MISUSE_FOREIGN, "interior buf+64");
    expect_misuse(pool, buf + 2048, ZP_MISUSE_FOREIGN, "interior buf+2048");
    expect_misuse(pool, big + 4096, ZP_MISUSE_FOREIGN, "oversize interior");
    expect_misuse(pool, big + 64, ZP_MISUSE_FOREIGN, "oversize interior+64");
    assert_int_equal(zp_capacity(pool, buf + 64), 0);
    assert_int_equal(zp_capacity(pool, big + 4096), 0);
    /* the live buffers are untouched and still live */
    assert_int_equal(zpt_check(buf, 4096, 9), SIZE_MAX);
    bad[0] = buf;
    bad[1] = buf + 1;
    bad[2] = buf + 64;
    bad[3] = buf + 2048;
    bad[4] = big;
    expect_never_handed_out(pool, 4096, bad, 5);
    zpt_misuse_reset(&zpt_g_misuse);
    zp_put(pool, buf);
    zp_put(pool, big);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 0);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.puts, s.gets);
    assert_int_equal(s.misuse, 5);
    zp_pool_destroy(pool);
}

static void test_interior_pointer(void **state)
{
    (void)state;
    run_interior(0);
}

static void test_interior_pointer_debug(void **state)
{
    (void)state;
    run_interior(1);
    run_interior(2);
}

/* The last slot of the slab holding a freshly got buffer: the pool's own
 * memory, at a buffer boundary, but never carved (a fresh pool's first
 * refill carves a single buffer, and never more than a magazine). Caught
 * at every debug level by the O(1) check. */
static void run_never_carved(int debug)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.debug = debug, .pv = pv);
    unsigned char *buf, *base = NULL, *last;
    size_t size = 0;
    buf = zp_get(pool, 4096);
    assert_non_null(buf);
    assert_true(zpt_provider_region(pv, buf, &base, &size));
    assert_true(size >= 16 * 4096);
    last = base + size - 4096;
    assert_ptr_not_equal(last, buf);
    expect_misuse(pool, last, ZP_MISUSE_FOREIGN, "never carved (last slot)");
    assert_int_equal(zp_capacity(pool, last), 0);
    zpt_misuse_reset(&zpt_g_misuse);
    zp_put(pool, buf);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 0);
    /* whatever the pool hands out now is distinct (checked inside) */
    expect_never_handed_out(pool, 4096, NULL, 0);
    zp_pool_destroy(pool);
    zpt_provider_free(pv);
}

static void test_never_carved(void **state)
{
    (void)state;
    run_never_carved(0);
}

static void test_never_carved_debug(void **state)
{
    (void)state;
    run_never_carved(1);
}

/* At debug 1: a slot carved into the thread cache (idle there) but never
 * got is reported as ZP_MISUSE_DOUBLE_PUT ("not handed out: already put,
 * or never got"); a slot never carved at all is ZP_MISUSE_FOREIGN. At
 * debug 0 a carved-but-never-got slot cannot be told apart from an idle
 * buffer, like a double put, so it is not tested there.
 *
 * Refills start small and double (1, 2, 4 ...): the first get of a fresh
 * pool carves only the slab's base, the second carves the next two slots
 * and hands out the lower one, leaving the third carved but never got. A
 * batch get of one refills a whole magazine (batch = 16 for the default
 * cache_depth 32) and hands out one, leaving fifteen carved, never got. */
static void test_never_handed_out_debug(void **state)
{
    zp_pool *pool = ZPT_POOL(.debug = 1);
    unsigned char *buf = zp_get(pool, 4096), *buf2, *big;
    void *one[1];
    (void)state;
    assert_non_null(buf);
    /* first refill carved one: the next slot was never carved */
    expect_misuse(pool, buf + 4096, ZP_MISUSE_FOREIGN,
                  "never carved (next slot after a refill of 1)");
    buf2 = zp_get(pool, 4096);
    assert_ptr_equal(buf2, buf + 4096);
    /* second refill carved two and handed out the lower one */
    expect_misuse(pool, buf + 2 * 4096, ZP_MISUSE_DOUBLE_PUT,
                  "carved, never got (refill of 2, debug 1)");
    expect_misuse(pool, buf + 3 * 4096, ZP_MISUSE_FOREIGN,
                  "never carved (past a refill of 2)");
    zpt_misuse_reset(&zpt_g_misuse);
    zp_put(pool, buf);
    zp_put(pool, buf2);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 0);

    /* a batch get of one into an empty bin carves a whole magazine */
    assert_int_equal(zp_get_batch(pool, 8192, one, 1), 0);
    big = one[0];
    assert_non_null(big);
    expect_misuse(pool, big + 8192, ZP_MISUSE_DOUBLE_PUT,
                  "carved, never got (next slot after a batch get, debug 1)");
    expect_misuse(pool, big + 15 * 8192, ZP_MISUSE_DOUBLE_PUT,
                  "carved, never got (last of the magazine, debug 1)");
    expect_misuse(pool, big + 16 * 8192, ZP_MISUSE_FOREIGN,
                  "never carved (past the magazine)");
    zpt_misuse_reset(&zpt_g_misuse);
    zp_put(pool, big);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 0);
    expect_never_handed_out(pool, 4096, NULL, 0);
    expect_never_handed_out(pool, 8192, NULL, 0);
    zp_pool_destroy(pool);
}

/* Double put at debug 1: reported, ignored, never handed out twice. */
static void check_double_put(zp_pool *pool)
{
    void *p = zp_get(pool, 4096), *q, *r, *held[80];
    zp_stats s;
    size_t i, j;
    assert_non_null(p);
    zp_put(pool, p);
    expect_misuse(pool, p, ZP_MISUSE_DOUBLE_PUT, "double put (in cache)");
    q = zp_get(pool, 4096);
    r = zp_get(pool, 4096);
    assert_non_null(q);
    assert_non_null(r);
    assert_ptr_not_equal(q, r);
    zp_put(pool, q);
    zp_put(pool, r);

    /* double put after the buffer travelled on to the depot: get one,
       put it, then push enough others through to flush the cache */
    p = zp_get(pool, 65536);
    for (i = 0; i < 80; i++) {
        held[i] = zp_get(pool, 65536);
        assert_non_null(held[i]);
    }
    zp_put(pool, p);
    for (i = 0; i < 80; i++)
        zp_put(pool, held[i]);
    expect_misuse(pool, p, ZP_MISUSE_DOUBLE_PUT, "double put (flushed)");
    for (i = 0; i < 80; i++) {
        held[i] = zp_get(pool, 65536);
        assert_non_null(held[i]);
        for (j = 0; j < i; j++)
            if (held[i] == held[j])
                fail_msg("buffer %p handed out twice", held[i]);
    }
    for (i = 0; i < 80; i++)
        zp_put(pool, held[i]);

    /* oversize: the second put finds nothing mapped there any more */
    p = zp_get(pool, 65 * ZPT_MiB);
    assert_non_null(p);
    zp_put(pool, p);
    expect_misuse(pool, p, 0, "double put (oversize)");

    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.puts, s.gets);
    assert_int_equal(s.misuse, 3);
}

static void test_double_put_debug(void **state)
{
    zp_pool *pool = ZPT_POOL(.debug = 1);
    (void)state;
    check_double_put(pool);
    zp_pool_destroy(pool);
    pool = ZPT_POOL(.debug = 2);
    check_double_put(pool);
    zp_pool_destroy(pool);
}

#if !defined(ZPT_ASAN)
/* Debug 2: a byte written into a buffer after its put is reported when the
 * buffer is got again, with the offset of the byte. */
static void test_use_after_put(void **state)
{
    zp_pool *pool = ZPT_POOL(.debug = 2);
    unsigned char *p, *q;
    volatile unsigned char *stale;
    zpt_misuse_report got;
    zp_stats s;
    (void)state;
    p = zp_get(pool, 4096);
    assert_non_null(p);
    zp_put(pool, p);
    stale = p;
    stale[100] = 0x11; /* deliberate use after put: the slab is still mapped */
    zpt_misuse_reset(&zpt_g_misuse);
    q = zp_get(pool, 4096); /* LIFO: the same buffer comes back */
    assert_int_equal(zpt_misuse_last(&zpt_g_misuse, &got), 1);
    assert_ptr_equal(q, p);
    assert_int_equal(got.kind, ZP_MISUSE_CORRUPTED);
    assert_ptr_equal(got.ptr, p);
    assert_ptr_equal(got.pool, pool);
    if (!strstr(got.msg, " 100 "))
        fail_msg("message \"%s\" does not give the offset 100", got.msg);
    if (!zpt_mentions_ptr(got.msg, p))
        fail_msg("message \"%s\" does not name %p", got.msg, (void *)p);
    if (q)
        zp_put(pool, q);

    /* an untouched buffer comes back without a report */
    zpt_misuse_reset(&zpt_g_misuse);
    q = zp_get(pool, 4096);
    assert_non_null(q);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 0);
    zp_put(pool, q);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.misuse, 1);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_pool_destroy(pool);
}
#else
/* Debug 2 under ASan: an idle buffer is poisoned, so a write after put
 * faults at once. Runs in a child, which must die with an ASan report. */
static int write_after_put_child(void *arg)
{
    zp_pool *pool = NULL;
    zp_config cfg;
    volatile unsigned char *stale;
    (void)arg;
    ZPT_CONFIG(&cfg, .debug = 2);
    if (zp_pool_create(&cfg, &pool) != 0)
        return 3;
    stale = zp_get(pool, 4096);
    zp_put(pool, (void *)stale);
    stale[100] = 0x11;
    return 0; /* the write went through: wrong */
}

static void test_use_after_put(void **state)
{
    zpt_child c;
    (void)state;
    assert_int_equal(zpt_run_child(write_after_put_child, NULL, 60, &c), 0);
    if (zpt_child_exited(&c, 0))
        fail_msg("write after put at debug 2 went unnoticed under ASan");
    if (!strstr(c.out, "use-after-poison"))
        fail_msg("child did not die of an ASan use-after-poison:\n%s", c.out);
}
#endif

static void test_double_put_env(void **state)
{
    zp_pool *pool;
    (void)state;
    setenv("ZEROPOOL_DEBUG", "1", 1);
    pool = ZPT_POOL();
    unsetenv("ZEROPOOL_DEBUG");
    check_double_put(pool);
    zp_pool_destroy(pool);
}

/* Unmapped oversize pointer put again at debug 0: still caught, since the
 * O(1) foreign check finds nothing there. */
static void test_oversize_double_put_release(void **state)
{
    zp_pool *pool = ZPT_POOL();
    void *p = zp_get(pool, 65 * ZPT_MiB);
    (void)state;
    assert_non_null(p);
    zp_put(pool, p);
    expect_misuse(pool, p, 0, "oversize put twice (debug 0)");
    zp_pool_destroy(pool);
}

static void test_put_null(void **state)
{
    zp_pool *pool = ZPT_POOL(.debug = 1);
    zp_stats a, b;
    (void)state;
    zp_put(pool, zp_get(pool, 1));
    assert_int_equal(zpt_stats(pool, &a), 0);
    zpt_misuse_reset(&zpt_g_misuse);
    zp_put(pool, NULL);
    assert_int_equal(zpt_misuse_count(&zpt_g_misuse), 0);
    assert_int_equal(zpt_stats(pool, &b), 0);
    assert_int_equal(b.puts, a.puts);
    assert_int_equal(b.misuse, a.misuse);
    assert_int_equal(zp_capacity(pool, NULL), 0);
    zp_pool_destroy(pool);
}

/* The default handler prints the pointer and aborts. Runs in a child, to
 * which the parent's stack buffer is the foreign pointer. */
static int default_handler_child(void *stackbuf)
{
    zp_pool *pool = NULL;
    zp_set_misuse_handler(NULL, NULL);
    if (zp_pool_create(NULL, &pool) != 0)
        return 3;
    zp_put(pool, stackbuf);
    return 0; /* the put returned: wrong */
}

static void test_default_handler_aborts(void **state)
{
    char stackbuf[64];
    zpt_child c;
    (void)state;
    assert_int_equal(zpt_run_child(default_handler_child, stackbuf, 60, &c), 0);
    if (c.timed_out || !WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGABRT)
        fail_msg("child did not abort: status 0x%x, stderr \"%s\"", c.status, c.out);
    if (!zpt_mentions_ptr(c.out, stackbuf))
        fail_msg("abort message \"%s\" does not name %p", c.out, (void *)stackbuf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        zpt_misuse_unit_test(test_stack_pointer),
        zpt_misuse_unit_test(test_heap_pointers),
        zpt_misuse_unit_test(test_mmap_pointer),
        zpt_misuse_unit_test(test_other_pool),
        zpt_misuse_unit_test(test_other_pool_debug),
        zpt_misuse_unit_test(test_other_pool_debug2),
        zpt_misuse_unit_test(test_interior_pointer),
        zpt_misuse_unit_test(test_interior_pointer_debug),
        zpt_misuse_unit_test(test_never_carved),
        zpt_misuse_unit_test(test_never_carved_debug),
        zpt_misuse_unit_test(test_never_handed_out_debug),
        zpt_misuse_unit_test(test_double_put_debug),
        zpt_misuse_unit_test(test_double_put_env),
        zpt_misuse_unit_test(test_oversize_double_put_release),
        zpt_misuse_unit_test(test_use_after_put),
        zpt_misuse_unit_test(test_put_null),
        cmocka_unit_test(test_default_handler_aborts),
    };
    /* this test chooses debug levels itself */
    unsetenv("ZEROPOOL_DEBUG");
    return ZPT_RUN(tests);
}
