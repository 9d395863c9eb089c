/* Regression (defect 1): a zp_get_timed waiter is woken when another thread exits and its thread-cached buffers go back to the depot. */
#include "zp_test.h"

#define CLS ((size_t)256 * 1024) /* slab = max(class, 256 KiB): one buffer */
#define WAKE_BOUND_MS 1500.0

/* Thread A: gets the budget's only buffer, puts it (it stays in A's
 * cache), reports, then waits for the word to exit. */
typedef struct holder {
    zp_pool *pool;
    zpt_mailbox ready, go;
    void *buf;
} holder;

static void *holder_main(void *arg)
{
    holder *h = arg;
    h->buf = zp_get(h->pool, CLS);
    if (h->buf != NULL)
        zp_put(h->pool, h->buf);
    zpt_mail_send(&h->ready, h);
    (void)zpt_mail_recv(&h->go);
    return NULL; /* exit: the cache goes back to the depot */
}

static void run(int timeout_ms, int shared)
{
    zp_budget *budget = shared ? zpt_budget_new(CLS) : NULL;
    /* private: max_bytes is exactly one slab of the class */
    zp_pool *pool = ZPT_POOL(.max_class = ZPT_MiB, .budget = budget,
                             .max_bytes = shared ? 0 : CLS);
    static holder h;
    static zpt_waiter w; /* thread B: zp_get_timed(CLS, timeout) */
    pthread_t ta;
    uint64_t exited;
    double ms;
    zp_stats s;

    memset(&h, 0, sizeof(h));
    h.pool = pool;
    zpt_mail_init(&h.ready);
    zpt_mail_init(&h.go);

    zpt_watchdog(20, "zp_get_timed was not woken by a thread exit that "
                     "returned the budget's only buffer (defect 1)");
    zpt_threads_start(&ta, 1, holder_main, &h, 0);
    (void)zpt_mail_recv(&h.ready);
    assert_non_null(h.buf);
    assert_int_equal(zpt_stats(pool, &s), 0);
    assert_int_equal(s.bytes_reserved, CLS);
    assert_int_equal(s.bytes_outstanding, 0);

    zpt_waiter_start(&w, pool, CLS, timeout_ms);
    zpt_waiter_settle(&w, budget); /* shared: budget; private: NULL */
    if (atomic_load(&w.done))
        fail_msg("zp_get_timed returned (%p, errno %d) while the budget's "
                 "only buffer sat in thread A's cache", w.buf, w.err);

    exited = zpt_now_ns();
    zpt_mail_send(&h.go, NULL);
    zpt_threads_join(&ta, 1);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    zpt_watchdog_off();
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
    zpt_mail_fini(&h.ready);
    zpt_mail_fini(&h.go);
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
    return ZPT_RUN(tests);
}
