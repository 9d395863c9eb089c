/* Debug levels 1 and 2: wrong pool, double puts, poison and use after put, the leak report, ZEROPOOL_DEBUG. */
/*
 * Wrong pool, double put (batch, racing threads), poison and use-after-put
 * (ZP_MISUSE_CORRUPTED, or ASan at the faulting instruction), the leak
 * report by call site, ZEROPOOL_DEBUG. (Foreign pointers and the basic
 * double put are in test_misuse.c.)
 */
#include "zp_test.h"

/* Expects exactly `n` reports since the last reset, the last of `kind`
 * naming ptr and pool. */
static void expect_reports(int n, int kind, zp_pool *pool, const void *ptr,
                           const char *what)
{
    zpt_misuse_report r;
    int count = zpt_misuse_count(&zpt_g_misuse);
    if (count != n)
        fail_msg("%s: %d misuse reports, want %d", what, count, n);
    if (n == 0)
        return;
    r = zpt_misuse_nth(&zpt_g_misuse, n - 1);
    if (r.kind != kind)
        fail_msg("%s: kind %d, want %d (\"%s\")", what, r.kind, kind, r.msg);
    if (r.pool != pool)
        fail_msg("%s: handler got pool %p, want %p", what, (void *)r.pool,
                 (void *)pool);
    if (r.ptr != ptr)
        fail_msg("%s: handler got %p, want %p", what, r.ptr, ptr);
    if (!zpt_mentions_ptr(r.msg, ptr) || !zpt_mentions_ptr(r.msg, pool))
        fail_msg("%s: message does not name %p and pool %p: \"%s\"", what,
                 ptr, (void *)pool, r.msg);
}

/* ------------------------------------------------------------ level 1 */

/* Another pool's buffers (class and oversize, single and batch put) are
 * WRONG_POOL at level 1; the message names both pools; nothing moves. */
static void test_wrong_pool(void **state)
{
    zp_pool *a = ZPT_POOL(.debug = 1, .name = "alpha");
    zp_pool *b = ZPT_POOL(.debug = 1, .name = "beta");
    void *mine[2], *theirs, *big, *batch[4];
    zp_stats sa0, sa1, sb0, sb1;
    zpt_misuse_report first;
    (void)state;
    mine[0] = zp_get(a, 4096);
    mine[1] = zp_get(a, 4096);
    theirs = zp_get(b, 4096);
    big = zp_get(b, 65 * ZPT_MiB);
    assert_non_null(mine[0]);
    assert_non_null(mine[1]);
    assert_non_null(theirs);
    assert_non_null(big);
    zpt_fill(theirs, 4096, 77);
    assert_int_equal(zpt_stats(a, &sa0), 0);
    assert_int_equal(zpt_stats(b, &sb0), 0);

    zp_put(a, theirs);
    expect_reports(1, ZP_MISUSE_WRONG_POOL, a, theirs, "class buffer of b");
    first = zpt_misuse_nth(&zpt_g_misuse, 0);
    if (!strstr(first.msg, "alpha") || !strstr(first.msg, "beta"))
        fail_msg("message does not name both pools: \"%s\"", first.msg);
    if (!zpt_mentions_ptr(first.msg, b))
        fail_msg("message does not name the owning pool %p: \"%s\"", (void *)b,
                 first.msg);
    zp_put(a, big);
    expect_reports(2, ZP_MISUSE_WRONG_POOL, a, big, "oversize buffer of b");

    /* a batch: the stranger is reported, the rest still go back */
    batch[0] = mine[0];
    batch[1] = theirs;
    batch[2] = NULL;
    batch[3] = mine[1];
    zp_put_batch(a, batch, 4);
    expect_reports(3, ZP_MISUSE_WRONG_POOL, a, theirs, "batch with b's buffer");

    assert_int_equal(zpt_stats(a, &sa1), 0);
    assert_int_equal(sa1.puts, sa0.puts + 2);
    assert_int_equal(sa1.misuse, sa0.misuse + 3);
    assert_int_equal(sa1.bytes_outstanding, 0);
    assert_int_equal(zpt_stats(b, &sb1), 0);
    assert_int_equal(sb1.misuse, sb0.misuse);
    assert_int_equal(sb1.puts, sb0.puts);
    assert_int_equal(sb1.bytes_outstanding, sb0.bytes_outstanding);
    assert_int_equal(zpt_check(theirs, 4096, 77), SIZE_MAX);
    assert_int_equal(zp_capacity(b, theirs), 4096);
    zp_put(b, theirs);
    zp_put(b, big);
    expect_reports(3, ZP_MISUSE_WRONG_POOL, a, theirs, "own puts are clean");
    assert_int_equal(zpt_stats(b, &sb1), 0);
    assert_int_equal(sb1.bytes_outstanding, 0);
    zp_pool_destroy(a);
    zp_pool_destroy(b);
}

/* A buffer twice in one batch, and a batch put after a single put. */
static void test_double_put_batch(void **state)
{
    zp_pool *pool = ZPT_POOL(.debug = 1);
    void *x = zp_get(pool, 8192), *y = zp_get(pool, 8192), *two[2], *got[64];
    zp_stats s;
    size_t i, j;
    (void)state;
    assert_non_null(x);
    assert_non_null(y);
    two[0] = x;
    two[1] = x;
    zp_put_batch(pool, two, 2);
    expect_reports(1, ZP_MISUSE_DOUBLE_PUT, pool, x, "x twice in a batch");
    zp_put(pool, y);
    zp_put_batch(pool, &y, 1);
    expect_reports(2, ZP_MISUSE_DOUBLE_PUT, pool, y, "batch after put");
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.puts, 2);
    assert_int_equal(s.misuse, 2);
    assert_int_equal(s.bytes_outstanding, 0);
    /* neither is handed out twice */
    assert_int_equal(zp_get_batch(pool, 8192, got, 64), 0);
    for (i = 0; i < 64; i++)
        for (j = 0; j < i; j++)
            if (got[i] == got[j])
                fail_msg("%p handed out twice", got[i]);
    zp_put_batch(pool, got, 64);
    expect_reports(2, ZP_MISUSE_DOUBLE_PUT, pool, y, "clean batch");
    zp_pool_destroy(pool);
}

/* Two threads put the same buffer at the same moment: exactly one put
 * wins, the other is reported, and the buffer is never handed out twice. */
typedef struct race {
    zp_pool *pool;
    pthread_barrier_t start, done;
    void *volatile buf;
    int rounds;
} race;

static void *racer(void *arg)
{
    race *r = arg;
    int i;
    for (i = 0; i < r->rounds; i++) {
        pthread_barrier_wait(&r->start);
        zp_put(r->pool, r->buf);
        pthread_barrier_wait(&r->done);
    }
    return NULL;
}

static void test_double_put_race(void **state)
{
    static race r; /* static: the threads outlive a failed assertion */
    pthread_t t[2];
    zp_stats s;
    void *seen[2];
    int i, k;
    (void)state;
    memset(&r, 0, sizeof(r));
    r.pool = ZPT_POOL(.debug = 1);
    r.rounds = 2000;
    pthread_barrier_init(&r.start, NULL, 3);
    pthread_barrier_init(&r.done, NULL, 3);
    for (k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&t[k], NULL, racer, &r), 0);
    for (i = 0; i < r.rounds; i++) {
        /* alternate classes so both cache and depot paths race */
        size_t size = (i & 1) ? 4096 : 65536;
        r.buf = zp_get(r.pool, size);
        assert_non_null(r.buf);
        pthread_barrier_wait(&r.start);
        pthread_barrier_wait(&r.done);
        if (zpt_misuse_count(&zpt_g_misuse) != i + 1)
            fail_msg("round %d: %d reports, want %d", i,
                     zpt_misuse_count(&zpt_g_misuse), i + 1);
    }
    for (k = 0; k < 2; k++)
        assert_int_equal(pthread_join(t[k], NULL), 0);
    for (i = 0; i < ZPT_MISUSE_KEEP; i++)
        assert_int_equal(zpt_misuse_nth(&zpt_g_misuse, i).kind, ZP_MISUSE_DOUBLE_PUT);
    assert_int_equal(zpt_stats(r.pool, &s), 0);
    assert_int_equal(s.gets, (uint64_t)r.rounds);
    assert_int_equal(s.puts, (uint64_t)r.rounds);
    assert_int_equal(s.misuse, (uint64_t)r.rounds);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(zpt_stats_sum_ok(&s));
    /* each class hands out distinct buffers */
    seen[0] = zp_get(r.pool, 4096);
    seen[1] = zp_get(r.pool, 4096);
    assert_ptr_not_equal(seen[0], seen[1]);
    zp_put(r.pool, seen[0]);
    zp_put(r.pool, seen[1]);
    pthread_barrier_destroy(&r.start);
    pthread_barrier_destroy(&r.done);
    zp_pool_destroy(r.pool);
}

/* Got on one thread, put on another: the state bit follows the buffer. */
static void *put_all(void *arg)
{
    void **a = arg;
    zp_pool *pool = a[0];
    int i;
    for (i = 1; i <= 40; i++)
        zp_put(pool, a[i]);
    return NULL;
}

static void test_cross_thread_state(void **state)
{
    zp_pool *pool = ZPT_POOL(.debug = 1);
    void *a[41];
    pthread_t t;
    zp_stats s;
    int i, round;
    (void)state;
    for (round = 0; round < 4; round++) {
        a[0] = pool;
        for (i = 1; i <= 40; i++) {
            a[i] = zp_get(pool, (size_t)4096 << (i % 3));
            assert_non_null(a[i]);
        }
        assert_int_equal(pthread_create(&t, NULL, put_all, a), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
    }
    expect_reports(0, 0, pool, NULL, "cross-thread puts");
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.puts, 160);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_pool_destroy(pool);
}

/* ------------------------------------------------------------ level 2 */

/* Idle buffers (put, and carved but never got) hold the poison pattern; in
 * ASan builds they are also poisoned for ASan. */
static void test_poison_after_put(void **state)
{
    zp_pool *pool = ZPT_POOL(.debug = 2);
    unsigned char *b = zp_get(pool, 16384), *next = NULL, *held[16];
    size_t i, k, nheld = 0;
    (void)state;
    assert_non_null(b);
    memset(b, 0x11, 16384);
    /* a buffer carved into this thread's cache but never handed out:
     * zp_capacity knows it (0 for uncarved slots); refills grow as the
     * thread keeps getting, so get until one shows up in b's slab */
    while (next == NULL && nheld < 16) {
        for (k = 1; k < 16 && next == NULL; k++) {
            unsigned char *c = b + k * 16384;
            int mine = 0;
            for (i = 0; i < nheld; i++)
                mine |= held[i] == c;
            if (!mine && zp_capacity(pool, c) == 16384)
                next = c;
        }
        if (next == NULL)
            assert_non_null(held[nheld++] = zp_get(pool, 16384));
    }
    assert_non_null(next);
#if defined(ZPT_ASAN)
    assert_true(zpt_asan_poisoned(next, 16384));
    assert_false(zpt_asan_poisoned(b, 16384));
    zp_put(pool, b);
    assert_true(zpt_asan_poisoned(b, 16384));
    /* look at the patterns through an unpoisoned window, then poison back */
    zpt_asan_unpoison(next, 16384);
    zpt_asan_unpoison(b, 16384);
    for (i = 0; i < 16384; i++)
        if (next[i] != ZP_POISON_BYTE)
            fail_msg("byte %zu of a carved, idle buffer is 0x%02x", i, next[i]);
    for (i = 0; i < 16384; i++)
        if (b[i] != ZP_POISON_BYTE)
            fail_msg("byte %zu of a put buffer is 0x%02x", i, b[i]);
    zpt_asan_poison(next, 16384);
    zpt_asan_poison(b, 16384);
#else
    for (i = 0; i < 16384; i++)
        if (next[i] != ZP_POISON_BYTE)
            fail_msg("byte %zu of a carved, idle buffer is 0x%02x", i, next[i]);
    zp_put(pool, b);
    for (i = 0; i < 16384; i++)
        if (b[i] != ZP_POISON_BYTE)
            fail_msg("byte %zu of a put buffer is 0x%02x", i, b[i]);
#endif
    for (i = 0; i < nheld; i++)
        zp_put(pool, held[i]);
    zp_trim(pool, SIZE_MAX); /* flush: b is the depot's, LIFO order aside */
    /* got again: intact patterns, no report, fully usable */
    for (i = 0; i < 16; i++) {
        assert_non_null(held[i] = zp_get(pool, 16384));
        memset(held[i], 0x22, 16384);
    }
    expect_reports(0, 0, pool, NULL, "clean reuse");
    for (i = 0; i < 16; i++)
        zp_put(pool, held[i]);
    zp_pool_destroy(pool);
}

/* Writes one byte into an idle buffer as a device or uninstrumented code
 * would (invisible to ASan). */
static void raw_write(unsigned char *buf, size_t off, unsigned char v)
{
    zpt_asan_unpoison(buf + off, 1);
    ((volatile unsigned char *)buf)[off] = v;
}

static void check_corrupted_at(zp_pool *pool, size_t size, size_t off1,
                               size_t off2)
{
    char want[64];
    unsigned char *b = zp_get(pool, size), *again;
    int before = zpt_misuse_count(&zpt_g_misuse);
    zpt_misuse_report r;
    zp_stats s0, s1;
    assert_non_null(b);
    zp_put(pool, b);
    raw_write(b, off1, 0x00);
    if (off2 != off1)
        raw_write(b, off2, 0x42);
    assert_int_equal(zpt_stats(pool, &s0), 0);
    again = zp_get(pool, size); /* LIFO: the same buffer */
    assert_ptr_equal(again, b);
    expect_reports(before + 1, ZP_MISUSE_CORRUPTED, pool, b, "use after put");
    /* names the first modified offset */
    snprintf(want, sizeof(want), "byte %zu ", off1 < off2 ? off1 : off2);
    r = zpt_misuse_nth(&zpt_g_misuse, before);
    if (!strstr(r.msg, want))
        fail_msg("message does not say \"%s\": \"%s\"", want, r.msg);
    /* the handler returned: the get still counts and the buffer is usable */
    assert_int_equal(zpt_stats(pool, &s1), 0);
    assert_int_equal(s1.gets, s0.gets + 1);
    assert_int_equal(s1.misuse, s0.misuse + 1);
    assert_true(zpt_stats_sum_ok(&s1));
    memset(b, 0x33, size);
    zp_put(pool, b);
    /* re-poisoned on put: the next round trip is clean */
    assert_ptr_equal(zp_get(pool, size), b);
    expect_reports(before + 1, ZP_MISUSE_CORRUPTED, pool, b, "clean again");
    zp_put(pool, b);
}

static void test_corrupted(void **state)
{
    zp_pool *pool = ZPT_POOL(.debug = 2);
    (void)state;
    check_corrupted_at(pool, 4096, 0, 0);
    check_corrupted_at(pool, 4096, 4095, 4095);
    check_corrupted_at(pool, 65536, 40000, 12345); /* first is reported */
    check_corrupted_at(pool, 1 << 20, 777777, 777777);
    zp_pool_destroy(pool);
}

/* The batch get verifies the pattern too. */
static void test_corrupted_batch(void **state)
{
    zp_pool *pool = ZPT_POOL(.debug = 2);
    unsigned char *b[8];
    void *got[8];
    zpt_misuse_report report;
    size_t i;
    int found = 0;
    (void)state;
    assert_int_equal(zp_get_batch(pool, 4096, (void **)b, 8), 0);
    zp_put_batch(pool, (void *const *)b, 8);
    raw_write(b[3], 100, 7);
    assert_int_equal(zp_get_batch(pool, 4096, got, 8), 0);
    expect_reports(1, ZP_MISUSE_CORRUPTED, pool, b[3], "batch get");
    report = zpt_misuse_nth(&zpt_g_misuse, 0);
    assert_non_null(strstr(report.msg, "byte 100 "));
    for (i = 0; i < 8; i++)
        found += got[i] == b[3];
    assert_int_equal(found, 1);
    zp_put_batch(pool, got, 8);
    zp_pool_destroy(pool);
}

/* Trimming and the retention cap never release pages of idle buffers at
 * level 2 (zero pages would read as corruption). */
static void test_trim_keeps_pattern(void **state)
{
    zp_pool *pool = ZPT_POOL(.debug = 2,
                             .max_cached_bytes = ZPT_ZERO); /* retention cap: nothing idle kept */
    void *b[4], *more[8];
    int i;
    (void)state;
    for (i = 0; i < 4; i++)
        assert_non_null(b[i] = zp_get(pool, 65536));
    /* b[0] stays out: its slab is never wholly idle */
    for (i = 1; i < 4; i++)
        zp_put(pool, b[i]);
    zp_trim(pool, 0);
    for (i = 0; i < 8; i++)
        assert_non_null(more[i] = zp_get(pool, 65536));
    expect_reports(0, 0, pool, NULL, "gets after trim");
    for (i = 0; i < 8; i++)
        zp_put(pool, more[i]);
    zp_trim(pool, 0);
    for (i = 0; i < 8; i++)
        assert_non_null(more[i] = zp_get(pool, 65536));
    expect_reports(0, 0, pool, NULL, "gets after second trim");
    for (i = 0; i < 8; i++)
        zp_put(pool, more[i]);
    zp_put(pool, b[0]);
    zp_pool_destroy(pool);
}

/* In an ASan build a write after put dies at the faulting instruction. */
static int write_after_put_child(void *arg)
{
    zp_pool *pool = NULL;
    zp_config cfg;
    volatile unsigned char *b;
    (void)arg;
    zp_set_misuse_handler(NULL, NULL);
    ZPT_CONFIG(&cfg, .debug = 2);
    if (zp_pool_create(&cfg, &pool) != 0)
        return 3;
    b = zp_get(pool, 8192);
    if (b == NULL)
        return 4;
    zp_put(pool, (void *)b);
    b[100] = 1; /* use after put */
    return 0;   /* not caught */
}

static void test_asan_write_after_put(void **state)
{
    zpt_child c;
    (void)state;
#if !defined(ZPT_ASAN)
    zpt_skip("not an ASan build: test_corrupted covers the CORRUPTED path");
#endif
    assert_int_equal(zpt_run_child(write_after_put_child, NULL, 60, &c), 0);
    if (zpt_child_exited(&c, 0) || zpt_child_exited(&c, 3) || zpt_child_exited(&c, 4))
        fail_msg("the write after put was not caught: status 0x%x\n%s", c.status,
                 c.out);
    if (!strstr(c.out, "use-after-poison"))
        fail_msg("ASan did not report use-after-poison:\n%s", c.out);
    if (!strstr(c.out, "WRITE of size 1"))
        fail_msg("ASan did not report the faulting write:\n%s", c.out);
    if (!strstr(c.out, "write_after_put_child"))
        fail_msg("ASan's stack does not name the faulting function:\n%s", c.out);
}

/* ------------------------------------------------------ leak report */

static __attribute__((noinline)) void *leak_site_single(zp_pool *pool)
{
    void *b = zp_get(pool, 4096);
    __asm__ volatile("" ::: "memory"); /* keep the call a real call */
    return b;
}

static __attribute__((noinline)) int leak_site_batch(zp_pool *pool, void **out)
{
    int rc = zp_get_batch(pool, 65536, out, 2);
    __asm__ volatile("" ::: "memory");
    return rc;
}

/* Runs addr2line -f -e file off; returns the function name line. */
static int addr2line_function(const char *file, const char *off, char *fn,
                              size_t n)
{
    char cmd[1024];
    FILE *p;
    snprintf(cmd, sizeof(cmd), "addr2line -f -e '%s' %s 2>/dev/null", file, off);
    p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    if (fgets(fn, (int)n, p) == NULL) {
        pclose(p);
        return -1;
    }
    fn[strcspn(fn, "\n")] = 0;
    return pclose(p) == 0 ? 0 : -1;
}

/* Gets n buffers at the call site under test (batch or single), destroys
 * the pool and checks that the report lists each one with an address that
 * addr2line resolves to that site. */
static void check_leak_report(int batch)
{
    zp_pool *pool = ZPT_POOL(.debug = 2);
    void *got[3], *clean;
    const char *site = batch ? "leak_site_batch" : "leak_site_single";
    zpt_capture c;
    char *out, *line;
    int listed = 0, resolved = 0, i, have_addr2line;
    if (batch) {
        assert_int_equal(leak_site_batch(pool, got), 0);
        got[2] = NULL;
    } else {
        for (i = 0; i < 3; i++)
            assert_non_null(got[i] = leak_site_single(pool));
    }
    clean = zp_get(pool, 4096); /* put back: not listed */
    zp_put(pool, clean);
    assert_int_equal(zpt_capture_begin(&c), 0);
    zp_pool_destroy(pool);
    out = zpt_capture_end(&c);
    assert_non_null(out);
    print_message("# destroy said:\n%s", out);
    for (i = 0; i < 3; i++)
        if (got[i] && !zpt_mentions_ptr(out, got[i]))
            fail_msg("leak report does not list %p", got[i]);
    have_addr2line = system("addr2line --version >/dev/null 2>&1") == 0;
    for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char file[512], off[64], fn[256];
        const char *eq = strstr(line, "got at ");
        if (eq == NULL)
            continue;
        listed++;
        /* "got at 0x... = <file>+0x<offset>" */
        eq = strstr(eq, " = ");
        if (eq == NULL)
            fail_msg("leak line without file+offset: \"%s\"", line);
        if (sscanf(eq, " = %511[^+]+%63s", file, off) != 2)
            fail_msg("cannot parse \"%s\"", line);
        if (!have_addr2line)
            continue;
        assert_int_equal(addr2line_function(file, off, fn, sizeof(fn)), 0);
        if (strcmp(fn, site) != 0)
            fail_msg("addr2line -e %s %s says %s, want %s (the code that called "
                     "zeropool)", file, off, fn, site);
        resolved++;
    }
    assert_int_equal(listed, batch ? 2 : 3);
    if (have_addr2line)
        assert_int_equal(resolved, listed);
    else
        print_message("# addr2line not installed: call sites not resolved\n");
    free(out);
}

static void test_leak_report(void **state)
{
    (void)state;
    check_leak_report(0);
}

/* zp_get_batch records its caller too, not a place inside zeropool. */
static void test_leak_report_batch(void **state)
{
    (void)state;
    check_leak_report(1);
}

/* ------------------------------------------------ ZEROPOOL_DEBUG */

static void test_env_overrides(void **state)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    zpt_capture c;
    char *out;
    void *b;
    const char *bad[] = {"3", "-1", "x", "1x", "2 "};
    size_t i;
    (void)state;
    zp_config_init(&cfg);

    /* level 2 from the environment over cfg.debug 0: corruption caught */
    cfg.debug = 0;
    setenv("ZEROPOOL_DEBUG", "2", 1);
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    b = zp_get(pool, 4096);
    zp_put(pool, b);
    raw_write(b, 9, 0);
    assert_ptr_equal(zp_get(pool, 4096), b);
    expect_reports(1, ZP_MISUSE_CORRUPTED, pool, b, "env 2 over cfg 0");
    zp_put(pool, b);
    zp_pool_destroy(pool);

    /* level 0 from the environment over cfg.debug 2: no leak listing */
    cfg.debug = 2;
    setenv("ZEROPOOL_DEBUG", "0", 1);
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    b = zp_get(pool, 4096);
    assert_non_null(b);
    assert_int_equal(zpt_capture_begin(&c), 0);
    zp_pool_destroy(pool);
    out = zpt_capture_end(&c);
    assert_non_null(out);
    if (strstr(out, "got at"))
        fail_msg("env 0 over cfg 2 still lists call sites:\n%s", out);
    if (!strstr(out, "outstanding"))
        fail_msg("the outstanding buffer was not reported:\n%s", out);
    free(out);

    /* an empty variable is ignored */
    cfg.debug = 1;
    setenv("ZEROPOOL_DEBUG", "", 1);
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    b = zp_get(pool, 4096);
    zp_put(pool, b);
    zp_put(pool, b);
    expect_reports(2, ZP_MISUSE_DOUBLE_PUT, pool, b, "empty env keeps cfg 1");
    zp_pool_destroy(pool);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("ZEROPOOL_DEBUG", bad[i], 1);
        pool = NULL;
        assert_int_equal(zp_pool_create(&cfg, &pool), -EINVAL);
        assert_null(pool);
        if (!strstr(zp_strerror(-EINVAL), "ZEROPOOL_DEBUG"))
            fail_msg("ZEROPOOL_DEBUG=\"%s\": reason \"%s\" does not name it", bad[i],
                     zp_strerror(-EINVAL));
    }
    unsetenv("ZEROPOOL_DEBUG");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        zpt_misuse_unit_test(test_wrong_pool),
        zpt_misuse_unit_test(test_double_put_batch),
        zpt_misuse_unit_test(test_double_put_race),
        zpt_misuse_unit_test(test_cross_thread_state),
        zpt_misuse_unit_test(test_poison_after_put),
        zpt_misuse_unit_test(test_corrupted),
        zpt_misuse_unit_test(test_corrupted_batch),
        zpt_misuse_unit_test(test_trim_keeps_pattern),
        cmocka_unit_test(test_asan_write_after_put),
        zpt_misuse_unit_test(test_leak_report),
        zpt_misuse_unit_test(test_leak_report_batch),
        zpt_misuse_unit_test(test_env_overrides),
    };
    /* this test chooses debug levels itself */
    unsetenv("ZEROPOOL_DEBUG");
    return ZPT_RUN(tests);
}
