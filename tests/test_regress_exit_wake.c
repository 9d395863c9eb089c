/* Regression (defect 1): a zp_get_timed waiter is woken when another thread exits and its thread-cached buffers go back to the depot. */
#include "handles_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define CLS ((size_t)256 * 1024) /* slab = max(class, 256 KiB): one buffer */
#define WAKE_BOUND_MS 1500.0

/* Thread A: gets the budget's only buffer, puts it (it stays in A's
 * cache), reports, then waits for the word to exit. */
typedef struct holder {
    zp_pool *pool;
    hu_mailbox ready, go;
    void *buf;
} holder;

static void *holder_main(void *arg)
{
    holder *h = arg;
    h->buf = zp_get(h->pool, CLS);
    if (h->buf != NULL)
        zp_put(h->pool, h->buf);
    hu_mail_send(&h->ready, h);
    (void)hu_mail_recv(&h->go);
    return NULL; /* exit: the cache goes back to the depot */
}

/* Thread B: zp_get_timed(CLS, timeout). */
typedef struct waiter {
    zp_pool *pool;
    int timeout_ms;
    atomic_int started, done;
    void *buf;
    int err;
    uint64_t returned_ns;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    atomic_store(&w->started, 1);
    errno = 0;
    w->buf = zp_get_timed(w->pool, CLS, w->timeout_ms);
    w->err = errno;
    w->returned_ns = hu_now_ns();
    atomic_store(&w->done, 1);
    return NULL;
}

static void run(int timeout_ms, int shared)
{
    zp_config cfg;
    zp_pool *pool = NULL;
    zp_budget *budget = NULL;
    static holder h;
    static waiter w;
    pthread_t ta, tb;
    uint64_t exited;
    double ms;
    zp_stats s;

    zp_config_init(&cfg);
    cfg.max_class = ZPT_MiB;
    if (shared) {
        assert_int_equal(zp_budget_create(CLS, &budget), 0);
        cfg.budget = budget;
    } else {
        cfg.max_bytes = CLS; /* exactly one slab of the class */
    }
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    memset(&h, 0, sizeof(h));
    memset(&w, 0, sizeof(w));
    h.pool = w.pool = pool;
    w.timeout_ms = timeout_ms;
    hu_mail_init(&h.ready);
    hu_mail_init(&h.go);

    hu_watchdog_arm(20, "zp_get_timed was not woken by a thread exit that "
                        "returned the budget's only buffer (defect 1)");
    assert_int_equal(pthread_create(&ta, NULL, holder_main, &h), 0);
    (void)hu_mail_recv(&h.ready);
    assert_non_null(h.buf);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_reserved, CLS);
    assert_int_equal(s.bytes_outstanding, 0);

    assert_int_equal(pthread_create(&tb, NULL, waiter_main, &w), 0);
    if (shared) {
        zp_budget_stats bs;
        uint64_t t0 = hu_now_ns();
        do {
            memset(&bs, 0, sizeof(bs));
            bs.struct_size = sizeof(bs);
            assert_int_equal(zp_budget_read(budget, &bs), 0);
            if (bs.waiters >= 1 || atomic_load(&w.done))
                break;
            hu_sleep_ms(1);
        } while (hu_ms_since(t0) < 2000);
        assert_int_equal(bs.waiters, 1);
    } else {
        while (!atomic_load(&w.started))
            hu_sleep_ms(1);
        hu_sleep_ms(100); /* let B reach its wait (not a pass criterion) */
    }
    if (atomic_load(&w.done))
        fail_msg("zp_get_timed returned (%p, errno %d) while the budget's "
                 "only buffer sat in thread A's cache", w.buf, w.err);

    exited = hu_now_ns();
    hu_mail_send(&h.go, NULL);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    hu_watchdog_disarm();
    ms = (double)(w.returned_ns - exited) / 1e6;
    print_message("# %s budget, timeout %d: B returned %s %.2f ms after A "
                  "was told to exit\n", shared ? "shared" : "private",
                  timeout_ms, w.buf ? "a buffer" : "NULL", ms);
    if (w.buf == NULL)
        fail_msg("zp_get_timed(%d) failed with errno %d (%s) although thread "
                 "A's exit returned the buffer", timeout_ms, w.err,
                 strerror(w.err));
    if (ms > WAKE_BOUND_MS)
        fail_msg("zp_get_timed(%d) returned %.0f ms after thread A exited: "
                 "the exit did not wake it", timeout_ms, ms);
    assert_int_equal(zp_capacity(pool, w.buf), CLS);
    zpt_fill(w.buf, CLS, 1);
    assert_int_equal(zpt_check(w.buf, CLS, 1), SIZE_MAX);
    zp_put(pool, w.buf);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_reserved, CLS);
    assert_int_equal(s.gets, 2);
    assert_int_equal(s.puts, 2);
    assert_true(zpt_stats_sum_ok(&s));
    zp_pool_destroy(pool);
    zp_budget_destroy(budget);
    hu_mail_fini(&h.ready);
    hu_mail_fini(&h.go);
}

static void test_forever_private_budget(void **state)
{
    (void)state;
    run(-1, 0);
}

static void test_3000ms_private_budget(void **state)
{
    (void)state;
    run(3000, 0);
}

static void test_forever_shared_budget(void **state)
{
    (void)state;
    run(-1, 1);
}

static void test_3000ms_shared_budget(void **state)
{
    (void)state;
    run(3000, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forever_private_budget),
        cmocka_unit_test(test_3000ms_private_budget),
        cmocka_unit_test(test_forever_shared_budget),
        cmocka_unit_test(test_3000ms_shared_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
