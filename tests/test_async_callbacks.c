/* Callbacks may call back into zeropool (zp_get_async, zp_cancel of a request ready later in the same dispatch, zp_put, trim, stats); zp_loop_destroy cancels what is pending and passes the turn on. */
#include "zp_test.h"

#define WAIT_MS 10000

typedef struct chain {
    zp_pool *pool;
    zp_loop *loop;
    zpt_async *next;     /* requested from the callback */
    size_t next_size;
    void *next_buf;      /* what that zp_get_async returned */
    int next_errno;
    int put_own;         /* the callback puts its own buffer */
    int calls_after_put; /* next's calls right after that put */
    int cancel_self_rc;
    zpt_async *victim;   /* cancelled from the callback */
    int victim_rc;
} chain;

static void chain_then(zpt_async *a)
{
    chain *c = (chain *)a->ctx;
    zp_stats s = {.struct_size = sizeof s};
    c->cancel_self_rc = zp_cancel(&a->req);
    if (c->victim != NULL)
        c->victim_rc = zp_cancel(&c->victim->req);
    if (c->next != NULL) {
        errno = 0;
        c->next_buf = zpt_get_async(c->pool, c->next_size, c->loop, c->next);
        c->next_errno = errno;
    }
    assert_int_equal(zp_stats_read(c->pool, &s), 0);
    (void)zp_trim(c->pool, SIZE_MAX);
    if (c->put_own && a->buf != NULL) {
        zp_put(c->pool, a->buf);
        a->buf = NULL;
        if (c->next != NULL)
            c->calls_after_put = c->next->calls;
    }
}

/* The callback asks for the next buffer (which must queue: it holds the
 * budget's only MiB), cancels itself (-ENOENT: it is no longer pending),
 * then puts its own buffer: the next request becomes ready, but its
 * callback does not run inside that put; it runs after, from dispatch. */
static void test_callback_requests_again(void **state)
{
    zp_budget *b = zpt_budget_new(ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    zp_loop *loop = zpt_loop_new();
    zpt_async a = {.id = 0, .then = chain_then}, n = {.id = 1};
    chain c = {.pool = pool, .loop = loop, .next = &n, .next_size = ZPT_MiB, .put_own = 1};
    void *held = zp_get(pool, ZPT_MiB);
    (void)state;
    a.ctx = &c;
    assert_non_null(held);
    assert_null(zpt_get_async(pool, ZPT_MiB, loop, &a));
    assert_int_equal(errno, EINPROGRESS);
    zp_put(pool, held);
    assert_int_equal(zpt_dispatch_until(loop, 2, WAIT_MS), 2);
    assert_int_equal(a.calls, 1);
    assert_int_equal(c.cancel_self_rc, -ENOENT);
    assert_null(c.next_buf);
    assert_int_equal(c.next_errno, EINPROGRESS);
    assert_int_equal(c.calls_after_put, 0);
    assert_int_equal(n.calls, 1);
    assert_true(n.seq > a.seq);
    assert_non_null(n.buf);
    assert_true(n.in_dispatch);
    assert_true(pthread_equal(n.thread, pthread_self()));
    zp_put(pool, n.buf);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* With room left, a request from a callback is served at once. */
static void test_callback_gets_at_once(void **state)
{
    zp_budget *b = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    zp_loop *loop = zpt_loop_new();
    zpt_async a = {.id = 0, .then = chain_then}, n = {.id = 1};
    chain c = {.pool = pool, .loop = loop, .next = &n, .next_size = 64 * ZPT_KiB};
    void *held[2];
    (void)state;
    a.ctx = &c;
    zpt_get_mib(pool, held, 2);
    assert_null(zpt_get_async(pool, 512 * ZPT_KiB, loop, &a));
    assert_int_equal(errno, EINPROGRESS);
    zp_put(pool, held[0]); /* 1 MiB: 512 KiB for a, room for 64 KiB more */
    assert_int_equal(zpt_dispatch_until(loop, 1, WAIT_MS), 1);
    assert_non_null(a.buf);
    assert_non_null(c.next_buf);
    assert_int_equal(n.calls, 0);
    assert_int_equal(zp_cancel(&n.req), -ENOENT);
    zp_put(pool, c.next_buf);
    zp_put(pool, a.buf);
    zp_put(pool, held[1]);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* Requests on two budgets are both ready for one dispatch; the first
 * one's callback cancels the second (0) and reuses its storage for a new
 * request on the second budget, which is served at once from the room
 * the cancelled one never took. The cancelled callback never runs. */
static void test_cancel_ready_in_same_dispatch(void **state)
{
    zp_budget *b1 = zpt_budget_new(ZPT_MiB), *b2 = zpt_budget_new(ZPT_MiB);
    zp_pool *p1 = ZPT_POOL(.budget = b1), *p2 = ZPT_POOL(.budget = b2);
    zp_loop *loop = zpt_loop_new();
    zpt_async a = {.id = 0, .then = chain_then}, v = {.id = 1};
    chain c = {.pool = p2, .loop = loop, .victim = &v, .next = &v, .next_size = ZPT_MiB};
    void *h1 = zp_get(p1, ZPT_MiB), *h2 = zp_get(p2, ZPT_MiB);
    (void)state;
    a.ctx = &c;
    assert_null(zpt_get_async(p1, ZPT_MiB, loop, &a));
    assert_int_equal(errno, EINPROGRESS);
    assert_null(zpt_get_async(p2, ZPT_MiB, loop, &v));
    assert_int_equal(errno, EINPROGRESS);
    zp_put(p1, h1);
    zp_put(p2, h2);
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), WAIT_MS), 1);
    assert_int_equal(zpt_dispatch(loop), 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(c.victim_rc, 0);
    assert_int_equal(v.calls, 0);
    assert_non_null(c.next_buf); /* the room the cancelled one left */
    assert_int_equal(zpt_dispatch_until(loop, 1, 100), 0);
    assert_int_equal(v.calls, 0);
    assert_int_equal(zpt_waiters(b1) + zpt_waiters(b2), 0);
    zp_put(p1, a.buf);
    zp_put(p2, c.next_buf);
    assert_int_equal(zpt_read(p1).bytes_outstanding + zpt_read(p2).bytes_outstanding, 0);
    zp_loop_destroy(loop);
    zp_pool_destroy(p1);
    zp_pool_destroy(p2);
    zp_budget_destroy(b1);
    zp_budget_destroy(b2);
}

/* Three requests on one budget, room for two: serving the first makes
 * the second ready; the first's callback cancels it, which passes the
 * turn to the third, served next: no stall, no callback for the second. */
static void test_cancel_next_in_line(void **state)
{
    zp_budget *b = zpt_budget_new(3 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    zp_loop *loop = zpt_loop_new();
    zpt_async a = {.id = 0, .then = chain_then}, v = {.id = 1}, t = {.id = 2};
    chain c = {.pool = pool, .loop = loop, .victim = &v};
    void *held[3];
    int ran;
    (void)state;
    a.ctx = &c;
    zpt_get_mib(pool, held, 3);
    assert_null(zpt_get_async(pool, ZPT_MiB, loop, &a));
    assert_null(zpt_get_async(pool, ZPT_MiB, loop, &v));
    assert_null(zpt_get_async(pool, ZPT_MiB, loop, &t));
    assert_int_equal(zpt_waiters(b), 3);
    zp_put(pool, held[0]);
    zp_put(pool, held[1]);
    ran = zpt_dispatch_until(loop, 2, WAIT_MS);
    assert_int_equal(ran, 2);
    assert_int_equal(a.calls, 1);
    assert_int_equal(c.victim_rc, 0);
    assert_int_equal(v.calls, 0);
    assert_int_equal(t.calls, 1);
    assert_true(t.seq > a.seq);
    assert_int_equal(zpt_waiters(b), 0);
    zp_put(pool, a.buf);
    zp_put(pool, t.buf);
    zp_put(pool, held[2]);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* zp_loop_destroy with three pending requests, the head already ready:
 * no callback runs, the budget has no waiter left, the room goes to the
 * timed waiter and the other loop's request queued behind them, and
 * nothing leaks (the sanitizers and valgrind check the loop's memory). */
static void test_loop_destroy_cancels(void **state)
{
    zp_budget *b = zpt_budget_new(3 * ZPT_MiB);
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.budget = b, .pv = pv);
    zp_loop *loop = zpt_loop_new(), *other = zpt_loop_new();
    zpt_async a[3], o = {.id = 9};
    zpt_waiter w;
    void *held[3];
    int i;
    (void)state;
    zpt_get_mib(pool, held, 3);
    for (i = 0; i < 3; i++) {
        a[i] = (zpt_async){.id = i};
        assert_null(zpt_get_async(pool, ZPT_MiB, loop, &a[i]));
        assert_int_equal(errno, EINPROGRESS);
    }
    zpt_waiter_start(&w, pool, ZPT_MiB, WAIT_MS);
    assert_true(zpt_wait_waiters(b, 4, 5000));
    assert_null(zpt_get_async(pool, ZPT_MiB, other, &o));
    assert_int_equal(errno, EINPROGRESS);
    zp_put(pool, held[0]);
    held[0] = NULL;
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), WAIT_MS), 1);

    zp_loop_destroy(loop);
    for (i = 0; i < 3; i++)
        assert_int_equal(a[i].calls, 0);
    assert_int_equal(pthread_join(w.thread, NULL), 0); /* the turn passed on */
    assert_non_null(w.buf);
    zp_put(pool, held[1]);
    held[1] = NULL;
    assert_int_equal(zpt_dispatch_until(other, 1, WAIT_MS), 1);
    assert_int_equal(o.calls, 1);
    assert_int_equal(zpt_waiters(b), 0);
    zp_put(pool, w.buf);
    zp_put(pool, o.buf);
    zp_put(pool, held[2]);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);
    zp_loop_destroy(other);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
    zp_budget_destroy(b);
}

/* A callback that puts its buffer and asks again, for ever (here: CHAIN
 * times): each dispatch must still return after a bounded number of
 * callbacks, so the loop gets back to its other events. Requests made by
 * callbacks during a dispatch wait for the next one (at most the requests
 * pending when it started, and those the turn passes to, run in one). */
#define CHAIN 3000
#define FAIR 1000 /* callbacks one dispatch may run here: far more than the 1 pending */
#define LINK (256 * ZPT_KiB) /* a buffer of the chain: one slab, unmapped and mapped each time */

typedef struct chainer {
    zp_pool *pool;
    zp_loop *loop;
    zp_request req;
    long ran;
    int bad;
} chainer;

static void chain_again(void *buf, int err, void *arg)
{
    chainer *ch = (chainer *)arg;
    (void)err;
    ch->ran++;
    if (ch->ran < CHAIN) {
        errno = 0;
        if (zp_get_async(ch->pool, LINK, ch->loop, &ch->req, chain_again, ch) != NULL ||
            errno != EINPROGRESS)
            ch->bad++; /* it holds the only MiB: must queue */
    }
    zp_put(ch->pool, buf);
}

static void test_dispatch_bounded(void **state)
{
    zp_budget *b = zpt_budget_new(LINK);
    zp_pool *pool = ZPT_POOL(.budget = b);
    chainer ch = {.pool = pool, .loop = zpt_loop_new()};
    void *held = zp_get(pool, LINK);
    int first, dispatches = 1;
    (void)state;
    assert_non_null(held);
    assert_null(zp_get_async(pool, LINK, ch.loop, &ch.req, chain_again, &ch));
    assert_int_equal(errno, EINPROGRESS);
    zp_put(pool, held);
    first = zpt_dispatch(ch.loop);
    while (ch.ran < CHAIN && dispatches < 2 * CHAIN) {
        zpt_dispatch(ch.loop);
        dispatches++;
    }
    print_message("a callback chain of %d: the first dispatch ran %d callbacks; "
                  "%d dispatches in all\n", CHAIN, first, dispatches);
    assert_int_equal(ch.ran, CHAIN);
    assert_int_equal(ch.bad, 0);
    assert_true(first >= 1);
    assert_true(first <= FAIR);
    assert_int_equal(zp_cancel(&ch.req), -ENOENT);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);
    zp_loop_destroy(ch.loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* Loops come and go without leaking descriptors: each new loop's eventfd
 * takes the number the previous one closed. */
static void test_loops_come_and_go(void **state)
{
    int i, fd0;
    zp_loop *loop = zpt_loop_new();
    (void)state;
    fd0 = zp_loop_fd(loop);
    zp_loop_destroy(loop);
    for (i = 0; i < 2000; i++) {
        loop = zpt_loop_new();
        assert_int_equal(zp_loop_fd(loop), fd0); /* the descriptor was closed */
        zp_loop_destroy(loop);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callback_requests_again),
        cmocka_unit_test(test_callback_gets_at_once),
        cmocka_unit_test(test_cancel_ready_in_same_dispatch),
        cmocka_unit_test(test_cancel_next_in_line),
        cmocka_unit_test(test_loop_destroy_cancels),
        cmocka_unit_test(test_dispatch_bounded),
        cmocka_unit_test(test_loops_come_and_go),
    };
    return ZPT_RUN(tests);
}
