/* Tests pool destruction: the outstanding report, and threads that outlive it. */
#include "zp_test.h"

#include <ctype.h>

/* ------------------------------------------------------ the report */

/* 1 if line contains the decimal number v as a whole token. */
static int has_number(const char *line, size_t len, unsigned long long v)
{
    char num[32];
    size_t n = (size_t)snprintf(num, sizeof(num), "%llu", v), i;
    for (i = 0; i + n <= len; i++) {
        if (memcmp(line + i, num, n) != 0)
            continue;
        if (i > 0 && isdigit((unsigned char)line[i - 1]))
            continue;
        if (i + n < len && isdigit((unsigned char)line[i + n]))
            continue;
        return 1;
    }
    return 0;
}

/* 1 if some line of text names the class size, the count and the bytes. */
static int reports_class(const char *text, size_t cls, unsigned long long count)
{
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (has_number(line, len, cls) && has_number(line, len, count) &&
            has_number(line, len, count * cls))
            return 1;
        line += len + (end != NULL);
    }
    return 0;
}

static void test_report_outstanding(void **state)
{
    zp_pool *pool = NULL;
    void *small[3], *mid[5], *big, *spare;
    zpt_capture c;
    char *out;
    int i;
    (void)state;
    pool = ZPT_POOL(.max_class = ZPT_MiB);
    for (i = 0; i < 3; i++)
        small[i] = zp_get(pool, 8000);
    for (i = 0; i < 5; i++)
        mid[i] = zp_get(pool, 131072);
    big = zp_get(pool, 2 * ZPT_MiB);
    spare = zp_get(pool, 4096); /* put back: not outstanding */
    zp_put(pool, spare);
    for (i = 0; i < 3; i++)
        assert_non_null(small[i]);
    for (i = 0; i < 5; i++)
        assert_non_null(mid[i]);
    assert_non_null(big);

    assert_int_equal(zpt_capture_begin(&c), 0);
    zp_pool_destroy(pool);
    out = zpt_capture_end(&c);
    assert_non_null(out);
    print_message("# report:\n%s", out);
    if (!reports_class(out, 8192, 3))
        fail_msg("report does not say 3 buffers / 24576 bytes of class 8192:"
                 "\n%s", out);
    if (!reports_class(out, 131072, 5))
        fail_msg("report does not say 5 buffers / 655360 bytes of class "
                 "131072:\n%s", out);
    if (reports_class(out, 4096, 1))
        fail_msg("report lists class 4096, whose buffer was put:\n%s", out);
    free(out);
}

/* Debug 2: every outstanding buffer is listed by address. */
static void test_report_lists_buffers_debug2(void **state)
{
    zp_pool *pool = NULL;
    void *held[3], *put;
    zpt_capture c;
    char *out;
    int i;
    (void)state;
    pool = ZPT_POOL(.debug = 2);
    held[0] = zp_get(pool, 4096);
    put = zp_get(pool, 4096);
    held[1] = zp_get(pool, 4096);
    held[2] = zp_get(pool, 65536);
    for (i = 0; i < 3; i++)
        assert_non_null(held[i]);
    assert_non_null(put);
    zp_put(pool, put);
    assert_int_equal(zpt_capture_begin(&c), 0);
    zp_pool_destroy(pool);
    out = zpt_capture_end(&c);
    assert_non_null(out);
    print_message("# debug 2 report:\n%s", out);
    for (i = 0; i < 3; i++)
        if (!zpt_mentions_ptr(out, held[i]))
            fail_msg("debug 2 report does not list leaked buffer %p:\n%s",
                     held[i], out);
    if (zpt_mentions_ptr(out, put))
        fail_msg("debug 2 report lists %p, which was put:\n%s", put, out);
    free(out);
}

static void test_no_report_when_clean(void **state)
{
    zp_pool *pool = NULL;
    zpt_capture c;
    char *out;
    void *b[40];
    int i;
    (void)state;
    pool = ZPT_POOL();
    for (i = 0; i < 40; i++)
        b[i] = zp_get(pool, (size_t)4096 << (i % 5));
    for (i = 0; i < 40; i++)
        zp_put(pool, b[i]);
    assert_int_equal(zpt_capture_begin(&c), 0);
    zp_pool_destroy(pool);
    zp_pool_destroy(NULL);
    out = zpt_capture_end(&c);
    assert_non_null(out);
    if (out[0])
        fail_msg("destroy of a pool with nothing outstanding printed:\n%s",
                 out);
    free(out);
}

/* ----------------------------------------- a thread that outlives the pool */

enum { CMD_NONE, CMD_USE, CMD_EXIT };

typedef struct helper {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int cmd;          /* set by main, cleared by the helper when done */
    zp_pool *pool;    /* pool to use for CMD_USE */
    zpt_provider *pv; /* its provider: every buffer must lie in it */
    /* results of the last CMD_USE (written before cmd is cleared) */
    int null_gets, bad_capacity, not_owned, bad_pattern;
} helper;

enum { USE_N = 24, USE_SIZE = 16384 };

static void helper_use(helper *h)
{
    void *b[USE_N];
    int i;
    h->null_gets = h->bad_capacity = h->not_owned = h->bad_pattern = 0;
    for (i = 0; i < USE_N; i++) {
        b[i] = zp_get(h->pool, USE_SIZE);
        if (!b[i]) {
            h->null_gets++;
            continue;
        }
        if (zp_capacity(h->pool, b[i]) != USE_SIZE)
            h->bad_capacity++;
        if (!zpt_provider_owns(h->pv, b[i])) {
            h->not_owned++;
            b[i] = NULL; /* do not touch it */
            continue;
        }
        zpt_fill(b[i], USE_SIZE, (uint64_t)i + 100);
    }
    for (i = 0; i < USE_N; i++)
        if (b[i] && zpt_check(b[i], USE_SIZE, (uint64_t)i + 100) != SIZE_MAX)
            h->bad_pattern++;
    /* put back: they stay in this thread's cache */
    for (i = 0; i < USE_N; i++)
        if (b[i])
            zp_put(h->pool, b[i]);
}

static void *helper_main(void *arg)
{
    helper *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->cmd == CMD_NONE)
            pthread_cond_wait(&h->cond, &h->lock);
        if (h->cmd == CMD_EXIT)
            break;
        pthread_mutex_unlock(&h->lock);
        helper_use(h); /* main waits for cmd to clear: no race on h */
        pthread_mutex_lock(&h->lock);
        h->cmd = CMD_NONE;
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* Runs cmd on the helper and waits until it is done. */
static void helper_run(helper *h, int cmd, zp_pool *pool, zpt_provider *pv)
{
    pthread_mutex_lock(&h->lock);
    h->pool = pool;
    h->pv = pv;
    h->cmd = cmd;
    pthread_cond_broadcast(&h->cond);
    if (cmd == CMD_USE)
        while (h->cmd != CMD_NONE)
            pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
}

static void expect_clean_use(helper *h, const char *what)
{
    if (h->null_gets || h->bad_capacity || h->not_owned || h->bad_pattern)
        fail_msg("%s: helper saw %d NULL gets, %d wrong capacities, %d "
                 "buffers outside the pool's memory, %d bad patterns",
                 what, h->null_gets, h->bad_capacity, h->not_owned,
                 h->bad_pattern);
}

/* The helper lives on the heap and is freed only by helper_stop: if an
 * assertion fails while it runs, it stays parked on its own memory. */
static helper *helper_start(pthread_t *t)
{
    helper *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    assert_int_equal(pthread_create(t, NULL, helper_main, h), 0);
    return h;
}

static void helper_stop(helper *h, pthread_t t)
{
    helper_run(h, CMD_EXIT, NULL, NULL);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Destroy reclaims the cache of a live thread; the thread exits later
 * without touching the dead pool. */
static void test_destroy_then_thread_exits(void **state)
{
    helper *h;
    pthread_t t;
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.pv = pv);
    zpt_capture c;
    char *out;
    (void)state;
    h = helper_start(&t);
    helper_run(h, CMD_USE, pool, pv);
    expect_clean_use(h, "first use");

    assert_int_equal(zpt_capture_begin(&c), 0);
    zp_pool_destroy(pool); /* helper alive, its cache holds USE_N buffers */
    out = zpt_capture_end(&c);
    assert_non_null(out);
    if (out[0])
        fail_msg("nothing was outstanding, yet destroy printed:\n%s", out);
    free(out);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    assert_int_equal(atomic_load(&pv->bytes_live), 0);

    helper_stop(h, t); /* thread exit must not touch the destroyed pool */
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    zpt_provider_free(pv);
}

/* A new pool created after the destroy (perhaps at the same address, in
 * the same registry slot) is used by the thread that still has a stale
 * cache of the old one: it must start from a clean slate. */
static void test_new_pool_after_destroy(void **state)
{
    helper *h;
    pthread_t t;
    zpt_provider *pv1 = zpt_provider_new(), *pv2 = zpt_provider_new();
    zp_pool *p1 = ZPT_POOL(.pv = pv1), *p2;
    zp_stats s;
    int round;
    (void)state;
    h = helper_start(&t);
    helper_run(h, CMD_USE, p1, pv1);
    expect_clean_use(h, "use of the first pool");
    zp_pool_destroy(p1);
    assert_int_equal(atomic_load(&pv1->maps), atomic_load(&pv1->unmaps));

    /* try for a new pool at the old address: create pools until one lands
       there (or give up after a few), then keep only that one */
    {
        zp_pool *tries[16];
        int n = 0, k;
        do
            tries[n] = ZPT_POOL(.pv = pv2);
        while (tries[n++] != p1 && n < 16);
        p2 = tries[n - 1];
        for (k = 0; k < n - 1; k++)
            zp_pool_destroy(tries[k]);
    }
    print_message("# old pool %p, new pool %p%s\n", (void *)p1, (void *)p2,
                  p1 == p2 ? " (same address)" : "");
    assert_int_equal(zpt_stats(p2, &s), 0);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.puts, 0);
    assert_int_equal(s.cache_hits, 0);
    assert_int_equal(s.bytes_cached, 0);
    assert_int_equal(s.bytes_outstanding, 0);

    for (round = 0; round < 3; round++) {
        helper_run(h, CMD_USE, p2, pv2);
        expect_clean_use(h, "use of the new pool");
    }
    assert_int_equal(zpt_stats(p2, &s), 0);
    zpt_stats_print("new pool", &s);
    assert_int_equal(s.gets, 3 * USE_N);
    assert_int_equal(s.puts, 3 * USE_N);
    assert_true(s.allocations >= 1); /* its first get found nothing cached */
    assert_true(zpt_stats_sum_ok(&s));
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.misuse, 0);

    helper_stop(h, t);
    zp_pool_destroy(p2);
    assert_int_equal(atomic_load(&pv2->maps), atomic_load(&pv2->unmaps));
    assert_int_equal(atomic_load(&pv1->bad_unmaps), 0);
    assert_int_equal(atomic_load(&pv2->bad_unmaps), 0);
    zpt_provider_free(pv1);
    zpt_provider_free(pv2);
}

/* Many create/destroy cycles with a live thread using each pool in turn:
 * slots and addresses get reused, caches never leak across pools. */
static void test_cycles_with_live_thread(void **state)
{
    helper *h;
    pthread_t t;
    int cycle;
    (void)state;
    h = helper_start(&t);
    for (cycle = 0; cycle < 50; cycle++) {
        zpt_provider *pv = zpt_provider_new();
        zp_pool *pool = ZPT_POOL(.pv = pv);
        zp_stats s;
        helper_run(h, CMD_USE, pool, pv);
        expect_clean_use(h, "cycle");
        assert_int_equal(zpt_stats(pool, &s), 0);
        assert_int_equal(s.gets, USE_N);
        assert_int_equal(s.puts, USE_N);
        zp_pool_destroy(pool);
        assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
        assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
        zpt_provider_free(pv);
    }
    helper_stop(h, t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_outstanding),
        cmocka_unit_test(test_report_lists_buffers_debug2),
        cmocka_unit_test(test_no_report_when_clean),
        cmocka_unit_test(test_destroy_then_thread_exits),
        cmocka_unit_test(test_new_pool_after_destroy),
        cmocka_unit_test(test_cycles_with_live_thread),
    };
    /* the debug 2 report test sets its level itself */
    unsetenv("ZEROPOOL_DEBUG");
    return ZPT_RUN(tests);
}
