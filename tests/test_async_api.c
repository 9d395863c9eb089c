/* zp_get_async, zp_cancel and the loop: every return value and errno, the descriptor's readiness, dispatch counts, coalesced wake-ups, callbacks only on the loop thread. */
#include "zp_test.h"

#define WAIT_MS 5000

/* A budget of n MiB, a pool on it, and all n MiB held in held[]. */
typedef struct full {
    zp_budget *budget;
    zp_pool *pool;
    zpt_provider *pv;
    void *held[8];
    int n;
} full;

static void full_init(full *f, int n)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->budget = zpt_budget_new((size_t)n * ZPT_MiB);
    f->pv = zpt_provider_new();
    f->pool = ZPT_POOL(.budget = f->budget, .pv = f->pv);
    zpt_get_mib(f->pool, f->held, n);
}

/* Puts what is still held, checks nothing is out or lost, frees it all. */
static void full_fini(full *f)
{
    zp_budget_stats bs;
    zp_stats s;
    int i;
    for (i = 0; i < f->n; i++)
        zp_put(f->pool, f->held[i]);
    s = zpt_read(f->pool);
    assert_int_equal(s.bytes_outstanding, 0);
    zpt_assert_stats_mapped(&s, atomic_load(&f->pv->bytes_live));
    assert_int_equal(zpt_budget_stats(f->budget, &bs), 0);
    assert_int_equal(bs.waiters, 0);
    assert_true(bs.peak_reserved <= bs.max_bytes);
    zp_pool_destroy(f->pool);
    assert_int_equal(atomic_load(&f->pv->bytes_live), 0);
    assert_int_equal(atomic_load(&f->pv->bad_unmaps), 0);
    zpt_provider_free(f->pv);
    zp_budget_destroy(f->budget);
}

/* A buffer available now is returned at once; the callback never runs and
 * nothing is queued, so the descriptor stays quiet and the request is not
 * pending. */
static void test_immediate(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = b);
    zp_pool *unbounded = ZPT_POOL(.name = "unbounded");
    zp_loop *loop = zpt_loop_new();
    zpt_async a = {.id = 1}, c = {.id = 2};
    void *buf, *again;
    (void)state;
    buf = zpt_get_async(pool, 64 * ZPT_KiB, loop, &a);
    assert_non_null(buf);
    assert_true(zp_capacity(pool, buf) >= 64 * ZPT_KiB);
    memset(buf, 0x5a, 64 * ZPT_KiB);
    assert_int_equal(zp_cancel(&a.req), -ENOENT);
    zp_put(pool, buf);
    again = zpt_get_async(pool, 64 * ZPT_KiB, loop, &a); /* a cache hit now */
    assert_ptr_equal(again, buf);
    zp_put(pool, again);
    buf = zpt_get_async(unbounded, 3 * ZPT_MiB, loop, &c); /* oversize, no budget */
    assert_non_null(buf);
    assert_int_equal(zp_cancel(&c.req), -ENOENT);
    zp_put(unbounded, buf);

    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), 20), 0);
    assert_int_equal(zpt_dispatch(loop), 0);
    assert_int_equal(a.calls, 0);
    assert_int_equal(c.calls, 0);
    assert_int_equal(zpt_waiters(b), 0);
    zp_loop_destroy(loop);
    zp_pool_destroy(unbounded);
    zp_pool_destroy(pool);
    zp_budget_destroy(b);
}

/* The budget is full: EINPROGRESS, queued (one waiter, one waited get),
 * the descriptor quiet and dispatch a no-op until memory comes back; then
 * readable, one dispatch runs the callback once with the buffer, and
 * readiness is cleared. */
static void test_queued_then_served(void **state)
{
    full f;
    zp_loop *loop = zpt_loop_new();
    int fd = zp_loop_fd(loop);
    zpt_async a = {.id = 1};
    zp_budget_stats bs;
    (void)state;
    full_init(&f, 2);
    assert_true(fd >= 0);
    errno = 0;
    assert_null(zpt_get_async(f.pool, ZPT_MiB, loop, &a));
    assert_int_equal(errno, EINPROGRESS);
    assert_int_equal(zpt_budget_stats(f.budget, &bs), 0);
    assert_int_equal(bs.waiters, 1);
    assert_int_equal(bs.waited_gets, 1);

    assert_int_equal(zpt_fd_readable(fd, 0), 0);
    assert_int_equal(zpt_fd_readable(fd, 50), 0);
    assert_int_equal(zpt_dispatch(loop), 0);
    assert_int_equal(a.calls, 0);

    zp_put(f.pool, f.held[0]);
    f.held[0] = NULL;
    assert_int_equal(a.calls, 0); /* never inside the put */
    assert_int_equal(zpt_fd_readable(fd, WAIT_MS), 1);
    assert_int_equal(zpt_dispatch(loop), 1);
    assert_int_equal(a.calls, 1);
    assert_non_null(a.buf);
    assert_int_equal(a.err, 0);
    assert_true(zp_capacity(f.pool, a.buf) >= ZPT_MiB);
    assert_true(a.in_dispatch);
    assert_true(pthread_equal(a.thread, pthread_self()));
    memset(a.buf, 0xa5, ZPT_MiB); /* it is ours: the whole of it */

    assert_int_equal(zpt_fd_readable(fd, 0), 0); /* readiness cleared */
    assert_int_equal(zpt_dispatch(loop), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(zp_cancel(&a.req), -ENOENT); /* its callback ran */
    assert_int_equal(zpt_waiters(f.budget), 0);
    f.held[0] = a.buf;
    zp_loop_destroy(loop);
    full_fini(&f);
}

/* Larger than the whole budget: ENOBUFS at once, nothing queued, whether
 * the budget is full or empty. */
static void test_never_fits(void **state)
{
    full f;
    zp_budget *empty = zpt_budget_new(2 * ZPT_MiB);
    zp_pool *pool = ZPT_POOL(.budget = empty);
    zp_loop *loop = zpt_loop_new();
    zpt_async a = {.id = 1};
    (void)state;
    full_init(&f, 2);
    errno = 0;
    assert_null(zpt_get_async(f.pool, 4 * ZPT_MiB, loop, &a));
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(zp_cancel(&a.req), -ENOENT);
    assert_int_equal(zpt_waiters(f.budget), 0);
    errno = 0;
    assert_null(zpt_get_async(pool, 2 * ZPT_MiB + 1, loop, &a));
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(zp_cancel(&a.req), -ENOENT);
    assert_int_equal(zpt_waiters(empty), 0);
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), 0), 0);
    assert_int_equal(a.calls, 0);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    zp_budget_destroy(empty);
    full_fini(&f);
}

/* A size that can never be served: EOVERFLOW, as zp_get says it, nothing
 * queued, even while the budget is full. */
static void test_overflow(void **state)
{
    full f;
    zp_loop *loop = zpt_loop_new();
    zpt_async a = {.id = 1};
    (void)state;
    full_init(&f, 1);
    errno = 0;
    assert_null(zp_get(f.pool, SIZE_MAX));
    assert_int_equal(errno, EOVERFLOW);
    errno = 0;
    assert_null(zpt_get_async(f.pool, SIZE_MAX, loop, &a));
    assert_int_equal(errno, EOVERFLOW);
    assert_int_equal(zp_cancel(&a.req), -ENOENT);
    assert_int_equal(zpt_waiters(f.budget), 0);
    assert_int_equal(a.calls, 0);
    zp_loop_destroy(loop);
    full_fini(&f);
}

/* The provider refuses memory while the budget has room: ENOMEM at once,
 * as zp_get says it, and nothing queued. */
static void test_enomem_at_once(void **state)
{
    zp_budget *b = zpt_budget_new(4 * ZPT_MiB);
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.budget = b, .pv = pv);
    zp_loop *loop = zpt_loop_new();
    zpt_async a = {.id = 1};
    (void)state;
    atomic_store(&pv->fail_all, 1);
    errno = 0;
    assert_null(zp_get(pool, ZPT_MiB));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(zpt_get_async(pool, ZPT_MiB, loop, &a));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(zp_cancel(&a.req), -ENOENT);
    assert_int_equal(zpt_waiters(b), 0);
    atomic_store(&pv->fail_all, 0);
    assert_int_equal(zpt_dispatch(loop), 0);
    assert_int_equal(a.calls, 0);
    zp_loop_destroy(loop);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
    zp_budget_destroy(b);
}

static void never_cb(void *buf, int err, void *arg)
{
    (void)buf;
    (void)err;
    (void)arg;
    fail_msg("a callback ran for a request that was never queued");
}

/* One NULL argument (with the budget full, so a valid call would queue):
 * EINVAL, nothing queued, and *req initialised all the same (garbage
 * before: zp_cancel must still say -ENOENT). NULL everywhere else. */
static void test_null_arguments(void **state)
{
    full f;
    zp_loop *loop = zpt_loop_new();
    zp_request req;
    int which;
    (void)state;
    full_init(&f, 1);
    for (which = 0; which < 4; which++) {
        memset(&req, 0xa5, sizeof req);
        errno = 0;
        assert_null(zp_get_async(which == 0 ? NULL : f.pool, ZPT_MiB,
                                 which == 1 ? NULL : loop, which == 2 ? NULL : &req,
                                 which == 3 ? NULL : never_cb, NULL));
        assert_int_equal(errno, EINVAL);
        if (which != 2)
            assert_int_equal(zp_cancel(&req), -ENOENT);
        assert_int_equal(zpt_waiters(f.budget), 0);
    }
    assert_int_equal(zp_cancel(NULL), -EINVAL);
    assert_int_equal(zp_loop_fd(NULL), -EINVAL);
    assert_int_equal(zp_loop_dispatch(NULL), -EINVAL);
    assert_int_equal(zp_loop_create(NULL), -EINVAL);
    zp_loop_destroy(NULL);
    memset(&req, 0, sizeof req);
    assert_int_equal(zp_cancel(&req), -ENOENT); /* zeroed, never used */
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), 0), 0);
    zp_loop_destroy(loop);
    full_fini(&f);
}

/* Dispatch never blocks: with requests pending and nothing ready it
 * returns 0 at once, every time. */
static void test_dispatch_never_blocks(void **state)
{
    full f;
    zp_loop *loop = zpt_loop_new();
    zpt_async a[3] = {{.id = 0}, {.id = 1}, {.id = 2}};
    uint64_t t0;
    int i;
    (void)state;
    full_init(&f, 2);
    for (i = 0; i < 3; i++) {
        assert_null(zpt_get_async(f.pool, ZPT_MiB, loop, &a[i]));
        assert_int_equal(errno, EINPROGRESS);
    }
    t0 = zpt_now_ns();
    for (i = 0; i < 1000; i++)
        assert_int_equal(zpt_dispatch(loop), 0);
    print_message("1000 empty dispatches with 3 pending: %.3f ms\n", zpt_ms_since(t0));
    assert_true(zpt_ms_since(t0) < 2000);
    for (i = 0; i < 3; i++) {
        assert_int_equal(a[i].calls, 0);
        assert_int_equal(zp_cancel(&a[i].req), 0);
        assert_int_equal(zp_cancel(&a[i].req), -ENOENT);
    }
    assert_int_equal(zpt_waiters(f.budget), 0);
    zp_loop_destroy(loop);
    full_fini(&f);
}

/* Readable exactly while a callback is ready: a request marked ready and
 * then cancelled leaves nothing to run, so the descriptor must be quiet
 * again (and a dispatch runs nothing). */
static void test_cancel_ready_quiets_fd(void **state)
{
    full f;
    zp_loop *loop = zpt_loop_new();
    int fd = zp_loop_fd(loop);
    zpt_async a = {.id = 1};
    (void)state;
    full_init(&f, 1);
    assert_null(zpt_get_async(f.pool, ZPT_MiB, loop, &a));
    assert_int_equal(errno, EINPROGRESS);
    zp_put(f.pool, f.held[0]);
    f.held[0] = NULL;
    assert_int_equal(zpt_fd_readable(fd, WAIT_MS), 1);
    assert_int_equal(zp_cancel(&a.req), 0);
    assert_int_equal(zpt_waiters(f.budget), 0);
    if (zpt_fd_readable(fd, 0) != 0)
        print_message("the descriptor is still readable after the only ready "
                      "request was cancelled (eventfd count %lld)\n",
                      zpt_eventfd_count(fd));
    assert_int_equal(zpt_fd_readable(fd, 0), 0);
    assert_int_equal(zpt_dispatch(loop), 0);
    assert_int_equal(a.calls, 0);
    zp_loop_destroy(loop);
    full_fini(&f);
}

/* The provider refuses the map a pending request's get needs (it waits on
 * another pool of the budget, so the buffer put is not handed to it: its
 * bytes come back and the request must map): its callback runs once with
 * NULL and ENOMEM, and the request is over. */
static void test_callback_enomem(void **state)
{
    full f;
    zp_loop *loop = zpt_loop_new();
    zpt_async a = {.id = 1};
    zpt_provider *pv = zpt_provider_new();
    zp_pool *other;
    (void)state;
    full_init(&f, 1);
    other = ZPT_POOL(.budget = f.budget, .pv = pv);
    assert_null(zpt_get_async(other, ZPT_MiB, loop, &a));
    assert_int_equal(errno, EINPROGRESS);
    atomic_store(&pv->fail_all, 1);
    zp_put(f.pool, f.held[0]); /* unmapped while someone waits */
    f.held[0] = NULL;
    assert_int_equal(zpt_dispatch_until(loop, 1, WAIT_MS), 1);
    atomic_store(&pv->fail_all, 0);
    zp_pool_destroy(other);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
    assert_int_equal(a.calls, 1);
    assert_null(a.buf);
    assert_int_equal(a.err, ENOMEM);
    assert_int_equal(zp_cancel(&a.req), -ENOENT);
    assert_int_equal(zpt_waiters(f.budget), 0);
    assert_int_equal(zpt_dispatch(loop), 0);
    assert_int_equal(a.calls, 1);
    zp_loop_destroy(loop);
    full_fini(&f);
}

/* ------------------------------------------------------------ threads */

typedef struct putter {
    zp_pool *pool;
    void **bufs;
    int n;
    int batch;
} putter;

static void *put_all(void *arg)
{
    putter *p = (putter *)arg;
    int i;
    if (p->batch)
        zp_put_batch(p->pool, p->bufs, (size_t)p->n);
    else
        for (i = 0; i < p->n; i++)
            zp_put(p->pool, p->bufs[i]);
    return NULL;
}

/* Puts on another thread, which has finished (joined) before the loop
 * looks: no callback ran inside those puts; they run in the loop's
 * dispatch, on the loop's thread. */
static void test_callbacks_on_loop_thread(void **state)
{
    full f;
    zp_loop *loop = zpt_loop_new();
    zpt_async a = {.id = 1};
    putter p;
    pthread_t t;
    (void)state;
    full_init(&f, 1);
    assert_null(zpt_get_async(f.pool, ZPT_MiB, loop, &a));
    assert_int_equal(errno, EINPROGRESS);
    p = (putter){.pool = f.pool, .bufs = f.held, .n = 1};
    assert_int_equal(pthread_create(&t, NULL, put_all, &p), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    f.held[0] = NULL;
    assert_int_equal(a.calls, 0);
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), WAIT_MS), 1);
    assert_int_equal(zpt_dispatch(loop), 1);
    assert_int_equal(a.calls, 1);
    assert_true(pthread_equal(a.thread, pthread_self()));
    assert_true(a.in_dispatch);
    f.held[0] = a.buf;
    zp_loop_destroy(loop);
    full_fini(&f);
}

/* Wake-ups coalesce: requests waiting on eight budgets are all granted by
 * another thread's puts; the descriptor was signalled once (the eventfd
 * counter is 1), and one dispatch runs all eight. */
#define NB 8
static void test_coalesced_wakeups(void **state)
{
    zp_budget *b[NB];
    zp_pool *pool[NB];
    void *held[NB];
    zpt_async a[NB];
    zp_loop *loop = zpt_loop_new();
    int fd = zp_loop_fd(loop), i;
    long long count;
    (void)state;
    for (i = 0; i < NB; i++) {
        b[i] = zpt_budget_new(ZPT_MiB);
        pool[i] = ZPT_POOL(.budget = b[i]);
        zpt_get_mib(pool[i], &held[i], 1);
        a[i] = (zpt_async){.id = i};
        assert_null(zpt_get_async(pool[i], ZPT_MiB, loop, &a[i]));
        assert_int_equal(errno, EINPROGRESS);
    }
    for (i = 0; i < NB; i++) {
        putter p = {.pool = pool[i], .bufs = &held[i], .n = 1};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, put_all, &p), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
    }
    assert_int_equal(zpt_fd_readable(fd, WAIT_MS), 1);
    count = zpt_eventfd_count(fd);
    print_message("%d grants: eventfd counter %lld\n", NB, count);
    if (count >= 0)
        assert_int_equal(count, 1);
    assert_int_equal(zpt_dispatch(loop), NB);
    assert_int_equal(zpt_fd_readable(fd, 0), 0);
    for (i = 0; i < NB; i++) {
        assert_int_equal(a[i].calls, 1);
        assert_non_null(a[i].buf);
        zp_put(pool[i], a[i].buf);
        assert_int_equal(zpt_read(pool[i]).bytes_outstanding, 0);
        zp_pool_destroy(pool[i]);
        zp_budget_destroy(b[i]);
    }
    zp_loop_destroy(loop);
}

/* Four requests wait on one budget; a batch put brings back room for all
 * four at once: one readable descriptor, and one dispatch runs them all. */
static void test_coalesced_one_budget(void **state)
{
    full f;
    zp_loop *loop = zpt_loop_new();
    zpt_async a[4];
    int i, first, total, rounds = 1;
    putter p;
    pthread_t t;
    (void)state;
    full_init(&f, 4);
    for (i = 0; i < 4; i++) {
        a[i] = (zpt_async){.id = i};
        assert_null(zpt_get_async(f.pool, ZPT_MiB, loop, &a[i]));
        assert_int_equal(errno, EINPROGRESS);
    }
    p = (putter){.pool = f.pool, .bufs = f.held, .n = 4, .batch = 1};
    assert_int_equal(pthread_create(&t, NULL, put_all, &p), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(zpt_fd_readable(zp_loop_fd(loop), WAIT_MS), 1);
    first = total = zpt_dispatch(loop);
    while (total < 4 && rounds < 100 && zpt_fd_readable(zp_loop_fd(loop), 1000) == 1) {
        total += zpt_dispatch(loop);
        rounds++;
    }
    print_message("4 requests on one budget, room for all: the first dispatch ran %d, "
                  "all 4 took %d dispatches\n", first, rounds);
    assert_int_equal(total, 4);
    for (i = 0; i < 4; i++) {
        assert_int_equal(a[i].calls, 1);
        f.held[i] = a[i].buf;
    }
    assert_int_equal(first, 4);
    zp_loop_destroy(loop);
    full_fini(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_immediate),
        cmocka_unit_test(test_queued_then_served),
        cmocka_unit_test(test_never_fits),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_enomem_at_once),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_dispatch_never_blocks),
        cmocka_unit_test(test_cancel_ready_quiets_fd),
        cmocka_unit_test(test_callback_enomem),
        cmocka_unit_test(test_callbacks_on_loop_thread),
        cmocka_unit_test(test_coalesced_wakeups),
        cmocka_unit_test(test_coalesced_one_budget),
    };
    return ZPT_RUN(tests);
}
