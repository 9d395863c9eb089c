/* Async requests and zp_get_timed waiters of one budget form one FIFO: arrival order kept across both kinds, no plain or later get overtakes, a cancelled or timed-out head passes the turn at once; a buffer put while they wait is handed to the first in line. */
#include "zp_test.h"

/* Classes >= 256 KiB: each buffer is its own slab, so a put while someone
 * waits unmaps it and gives its bytes back to the budget at once. */
#define WAIT_MS 10000
#define QUIET_MS 100

static atomic_int g_done;   /* requests served so far, of both kinds */
static int g_order[8];      /* ids in the order they were served */

static void record(int id)
{
    g_order[atomic_load(&g_done)] = id;
    atomic_fetch_add(&g_done, 1);
}

/* on_return of a timed waiter / then of an async request */
static void timed_served(zpt_waiter *w)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    if (w->buf != NULL)
        record(w->id);
    pthread_mutex_unlock(&lock);
}

static void async_served(zpt_async *a)
{
    if (a->buf != NULL)
        record(a->id);
}

static void reset(void)
{
    int i;
    atomic_store(&g_done, 0);
    for (i = 0; i < 8; i++)
        g_order[i] = -1;
}

static void queue_async(zp_budget *b, zp_pool *pool, size_t size, zp_loop *loop,
                        zpt_async *a, int id)
{
    uint64_t before = zpt_waiters(b);
    *a = (zpt_async){.id = id, .then = async_served};
    errno = 0;
    assert_null(zpt_get_async(pool, size, loop, a));
    assert_int_equal(errno, EINPROGRESS);
    assert_int_equal(zpt_waiters(b), before + 1);
}

static void queue_timed(zp_budget *b, zp_pool *pool, size_t size, zpt_waiter *w, int id)
{
    uint64_t before = zpt_waiters(b);
    zpt_waiter_start_then(w, pool, size, WAIT_MS, timed_served, id);
    if (!zpt_wait_waiters(b, before + 1, 5000))
        fail_msg("timed waiter %d did not queue within 5 s", id);
}

/* Requests alternate between async (two loops) and timed, and between two
 * pools of the budget; each put of 1 MiB serves exactly the next one in
 * arrival order, whichever kind it is, and nobody else. */
static void test_mixed_order(void **state)
{
    zp_budget *b = zpt_budget_new(6 * ZPT_MiB);
    zp_pool *pa = ZPT_POOL(.budget = b), *pb = ZPT_POOL(.budget = b);
    zp_loop *loop[2] = {zpt_loop_new(), zpt_loop_new()};
    void *held[6];
    zpt_async a[6];
    zpt_waiter w[6];
    int is_async[6] = {1, 0, 1, 1, 0, 1}; /* async, timed, async, async (2nd loop), ... */
    int i, k;
    (void)state;
    reset();
    zpt_get_mib(pa, held, 6);
    for (i = 0; i < 6; i++) {
        zp_pool *pool = i % 2 ? pb : pa;
        if (is_async[i])
            queue_async(b, pool, ZPT_MiB, loop[i == 3], &a[i], i);
        else
            queue_timed(b, pool, ZPT_MiB, &w[i], i);
    }
    for (i = 0; i < 6; i++) {
        zp_put(pa, held[i]);
        if (is_async[i]) {
            zp_loop *mine = loop[i == 3], *other = loop[i != 3];
            assert_int_equal(zpt_fd_readable(zp_loop_fd(mine), WAIT_MS), 1);
            assert_int_equal(zpt_fd_readable(zp_loop_fd(other), 0), 0);
            assert_int_equal(zpt_dispatch(mine), 1);
            assert_int_equal(zpt_dispatch(other), 0);
        } else {
            assert_true(zpt_wait_count(&g_done, i + 1, WAIT_MS));
        }
        zpt_sleep_ms(QUIET_MS / 2); /* nobody else may move */
        for (k = 0; k < 2; k++)
            assert_int_equal(zpt_dispatch(loop[k]), 0);
        assert_int_equal(atomic_load(&g_done), i + 1);
        assert_int_equal(g_order[i], i);
    }
    for (i = 0; i < 6; i++) {
        if (is_async[i]) {
            assert_int_equal(a[i].calls, 1);
            assert_true(pthread_equal(a[i].thread, pthread_self()));
            zp_put(i % 2 ? pb : pa, a[i].buf);
        } else {
            assert_int_equal(pthread_join(w[i].thread, NULL), 0);
            assert_non_null(w[i].buf);
            zp_put(w[i].pool, w[i].buf);
        }
    }
    assert_true(zpt_read(pa).bytes_outstanding + zpt_read(pb).bytes_outstanding == 0);
    zp_loop_destroy(loop[0]);
    zp_loop_destroy(loop[1]);
    zp_pool_destroy(pa);
    zp_pool_destroy(pb);
    zp_budget_destroy(b);
}

typedef struct getter {
    zp_pool *pool;
    size_t size;
    void *buf;
    int err;
} getter;

static void *plain_get(void *arg)
{
    getter *g = (getter *)arg;
    errno = 0;
    g->buf = zp_get(g->pool, g->size);
    g->err = errno;
    return NULL;
}

/* While a request waits (the buffer put was handed to it but it is not yet
 * dispatched: the budget stays full), a plain get needing new budget bytes
 * fails with ENOBUFS on any thread and any pool of the budget, a
 * zero-timeout timed get too, and a later async request queues behind
 * instead of being served at once. */
static void test_no_overtaking(void **state)
{
    zp_budget *b = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b), *other = ZPT_POOL(.budget = b);
    zp_loop *loop = zpt_loop_new(), *later = zpt_loop_new();
    void *held[2];
    zpt_async a, c;
    getter g = {.pool = other, .size = ZPT_MiB};
    pthread_t t;
    zp_budget_stats s;
    (void)state;
    reset();
    zpt_get_mib(pool, held, 2);
    queue_async(b, pool, ZPT_MiB, loop, &a, 0);
    zp_put(pool, held[0]); /* 1 MiB free, for the request */
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), WAIT_MS), 1);

    errno = 0;
    assert_null(zp_get(pool, ZPT_MiB));
    assert_int_equal(errno, ENOBUFS);
    errno = 0;
    assert_null(zp_get(other, 256 * ZPT_KiB));
    assert_int_equal(errno, ENOBUFS);
    errno = 0;
    assert_null(zp_get_timed(other, ZPT_MiB, 0));
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(pthread_create(&t, NULL, plain_get, &g), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_null(g.buf);
    assert_int_equal(g.err, ENOBUFS);
    queue_async(b, other, ZPT_MiB, later, &c, 1);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_int_equal(s.bytes_reserved, 2 * ZPT_MiB); /* handed over, not unmapped */

    assert_int_equal(zpt_dispatch(later), 0);
    assert_int_equal(zpt_dispatch(loop), 1);
    assert_int_equal(a.calls, 1);
    assert_non_null(a.buf);
    assert_int_equal(c.calls, 0);
    zp_put(pool, held[1]); /* now the later one */
    assert_int_equal(zpt_dispatch_until(later, 1, WAIT_MS), 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(g_order[0], 0);
    assert_int_equal(g_order[1], 1);
    assert_int_equal(zpt_budget_stats(b, &s), 0);
    assert_true(s.peak_reserved <= 2 * ZPT_MiB);
    zp_put(pool, a.buf);
    zp_put(other, c.buf);
    zp_loop_destroy(loop);
    zp_loop_destroy(later);
    zp_pool_destroy(pool);
    zp_pool_destroy(other);
    zp_budget_destroy(b);
}

/* The head wants 2 MiB, the next 1 MiB. With 1 MiB free the head's
 * dispatch gets nothing and the next is not served; with 2 MiB free the
 * head is served, then the next when 1 MiB more comes back. */
static void test_big_head_not_overtaken(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    zp_loop *loop = zpt_loop_new();
    void *held[4];
    zpt_async big, small;
    (void)state;
    reset();
    zpt_get_mib(pool, held, 4);
    queue_async(b, pool, 2 * ZPT_MiB, loop, &big, 0);
    queue_async(b, pool, ZPT_MiB, loop, &small, 1);

    zp_put(pool, held[0]);
    if (zpt_fd_readable(zp_loop_fd(loop), QUIET_MS) == 1)
        assert_int_equal(zpt_dispatch(loop), 0); /* the head tried: not enough */
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), QUIET_MS), 0);
    assert_int_equal(big.calls + small.calls, 0);

    zp_put(pool, held[1]);
    assert_int_equal(zpt_dispatch_until(loop, 1, WAIT_MS), 1);
    assert_int_equal(big.calls, 1);
    assert_int_equal(zp_capacity(pool, big.buf), 2 * ZPT_MiB);
    assert_int_equal(zpt_dispatch_until(loop, 1, QUIET_MS), 0); /* budget full again */
    assert_int_equal(small.calls, 0);

    zp_put(pool, held[2]);
    assert_int_equal(zpt_dispatch_until(loop, 1, WAIT_MS), 1);
    assert_int_equal(small.calls, 1);
    assert_int_equal(g_order[0], 0);
    assert_int_equal(g_order[1], 1);
    zp_put(pool, big.buf);
    zp_put(pool, small.buf);
    zp_put(pool, held[3]);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* Cancelling the head hands the turn on at once, with no further put:
 * (1) a 2 MiB head with 1 MiB free: the 1 MiB request behind is served;
 * (2) a ready head: the timed waiter behind gets its room;
 * (3) a head that was never told: the one behind is served by the next
 *     put. */
static void test_cancel_head_passes_turn(void **state)
{
    zp_budget *b = zpt_budget_new(3 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    zp_loop *loop = zpt_loop_new();
    void *held[3];
    zpt_async big, small, head, tail;
    zpt_waiter w;
    (void)state;
    reset();
    zpt_get_mib(pool, held, 3);

    /* (1) */
    queue_async(b, pool, 2 * ZPT_MiB, loop, &big, 0);
    queue_async(b, pool, ZPT_MiB, loop, &small, 1);
    zp_put(pool, held[0]);
    held[0] = NULL;
    zpt_sleep_ms(20);
    assert_int_equal(zp_cancel(&big.req), 0);
    assert_int_equal(zpt_dispatch_until(loop, 1, WAIT_MS), 1);
    assert_int_equal(small.calls, 1);
    assert_int_equal(big.calls, 0);
    assert_int_equal(zp_cancel(&big.req), -ENOENT);

    /* (2) */
    queue_async(b, pool, ZPT_MiB, loop, &head, 2);
    queue_timed(b, pool, ZPT_MiB, &w, 3);
    zp_put(pool, held[1]);
    held[1] = NULL;
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), WAIT_MS), 1);
    assert_int_equal(zp_cancel(&head.req), 0);
    assert_true(zpt_wait_count(&g_done, 2, WAIT_MS));
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    assert_non_null(w.buf);
    assert_int_equal(zpt_dispatch(loop), 0);
    assert_int_equal(head.calls, 0);

    /* (3) */
    queue_async(b, pool, ZPT_MiB, loop, &head, 4);
    queue_async(b, pool, ZPT_MiB, loop, &tail, 5);
    assert_int_equal(zp_cancel(&head.req), 0);
    assert_int_equal(zpt_waiters(b), 1);
    assert_int_equal(zpt_dispatch_until(loop, 1, QUIET_MS), 0); /* no room yet */
    zp_put(pool, w.buf);
    assert_int_equal(zpt_dispatch_until(loop, 1, WAIT_MS), 1);
    assert_int_equal(tail.calls, 1);
    assert_int_equal(head.calls, 0);

    assert_int_equal(g_order[0], 1);
    assert_int_equal(g_order[1], 3);
    assert_int_equal(g_order[2], 5);
    assert_int_equal(zpt_waiters(b), 0);
    zp_put(pool, small.buf);
    zp_put(pool, tail.buf);
    zp_put(pool, held[2]);
    assert_int_equal(zpt_read(pool).bytes_outstanding, 0);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* A timed waiter at the head wants 2 MiB and gives up while 1 MiB is
 * free: the async request behind it, which fits, is made ready at once. */
static void test_timed_head_timeout_passes_turn(void **state)
{
    zp_budget *b = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    zp_loop *loop = zpt_loop_new();
    void *held[2];
    zpt_waiter w;
    zpt_async a;
    (void)state;
    reset();
    zpt_get_mib(pool, held, 2);
    zpt_waiter_start(&w, pool, 2 * ZPT_MiB, 300);
    assert_true(zpt_wait_waiters(b, 1, 5000));
    queue_async(b, pool, ZPT_MiB, loop, &a, 0);
    zp_put(pool, held[0]);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    assert_null(w.buf);
    assert_int_equal(w.err, ETIMEDOUT);
    assert_int_equal(zpt_dispatch_until(loop, 1, WAIT_MS), 1);
    assert_int_equal(a.calls, 1);
    assert_non_null(a.buf);
    zp_put(pool, a.buf);
    zp_put(pool, held[1]);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* A buffer put while requests wait goes to the first in line, not to
 * whoever gets next. With 64 KiB buffers (many to a slab, so a put unmaps
 * nothing and gives no budget bytes back) and the budget full, a plain get
 * right after the put finds nothing, and the request gets the very buffer
 * put: first an async request, then a timed waiter on another thread. */
#define FIRST_SIZE (64 * ZPT_KiB)
static void test_handed_to_first_in_line(void **state)
{
    static void *held[1024];
    zp_pool *probe = ZPT_POOL();
    zp_budget *b;
    zp_pool *pool;
    zp_loop *loop = zpt_loop_new();
    zp_stats st;
    zpt_async a;
    zpt_waiter w;
    void *x;
    size_t slab, n, i;
    (void)state;
    reset();
    x = zp_get(probe, FIRST_SIZE);
    assert_non_null(x);
    st = zpt_read(probe);
    slab = st.bytes_reserved;
    zp_put(probe, x);
    zp_pool_destroy(probe);
    n = slab / FIRST_SIZE;
    assert_true(n >= 2 && n <= 1024);

    b = zpt_budget_new(slab);
    pool = ZPT_POOL(.budget = b);
    for (i = 0; i < n; i++) {
        held[i] = zp_get(pool, FIRST_SIZE);
        assert_non_null(held[i]);
    }
    errno = 0;
    assert_null(zp_get(pool, FIRST_SIZE));
    assert_int_equal(errno, ENOBUFS);

    queue_async(b, pool, FIRST_SIZE, loop, &a, 0);
    zp_put(pool, held[0]);
    errno = 0;
    assert_null(zp_get(pool, FIRST_SIZE)); /* it is the request's */
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(zpt_dispatch_until(loop, 1, WAIT_MS), 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, 0);
    assert_ptr_equal(a.buf, held[0]);
    assert_int_equal(zpt_waiters(b), 0);

    zpt_waiter_start(&w, pool, FIRST_SIZE, WAIT_MS);
    assert_true(zpt_wait_waiters(b, 1, 5000));
    zp_put(pool, held[1]);
    errno = 0;
    assert_null(zp_get(pool, FIRST_SIZE)); /* the waiter's */
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    assert_ptr_equal(w.buf, held[1]);
    assert_int_equal(zpt_waiters(b), 0);

    held[0] = a.buf;
    held[1] = w.buf;
    for (i = 0; i < n; i++)
        zp_put(pool, held[i]);
    st = zpt_read(pool);
    assert_int_equal(st.bytes_outstanding, 0);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_order),
        cmocka_unit_test(test_no_overtaking),
        cmocka_unit_test(test_big_head_not_overtaken),
        cmocka_unit_test(test_cancel_head_passes_turn),
        cmocka_unit_test(test_timed_head_timeout_passes_turn),
        cmocka_unit_test(test_handed_to_first_in_line),
    };
    return ZPT_RUN(tests);
}
