/* Tests zp_get_batch / zp_put_batch: all or nothing, mixed classes, misuse, cross-thread, exact stats. */
#include "zp_test.h"

/*
 * Facts of the engine these tests rely on (pools here: min_class 4 KiB,
 * max_class 1 MiB, default cache_depth 32 and cache_bytes 64 MiB):
 *   - every class's thread cache holds CAP = 32 buffers, its depot moves
 *     magazines of BATCH = 16;
 *   - a slab is max(class, 256 KiB), so 4 KiB buffers come 64 per slab and
 *     256 KiB ones one per slab; a refill maps at most one new slab;
 *   - a batch of n <= CAP is served from the thread cache (refilled from the
 *     depot), a larger one moves straight between the array and the depot;
 *   - a single zp_get that misses its (thread, class) cache takes r buffers
 *     from the depot or a slab, r starting at 1 and doubling per miss up to
 *     BATCH (1, 2, 4, 8, 16, 16 ...); batches do not change r;
 *   - cache_hits counts buffers taken from the cache, depot_hits and
 *     allocations count the buffers of a batch that came from the depot or
 *     from fresh slabs.
 */
#define MAXC (1 * ZPT_MiB)
#define CAP 32
#define BATCH 16
#define SLAB (256 * ZPT_KiB)

/* The pools here: max_class MAXC, and whatever a test adds. */
#define POOL(...) ZPT_POOL(.max_class = MAXC, __VA_ARGS__)

/* Checks a snapshot's figures for one class against expectations. */
static void expect_class(const zp_stats *s, size_t size, uint64_t gets, uint64_t puts,
                         uint64_t hits, uint64_t depot, uint64_t alloc)
{
    int c = zpt_class(s, size);
    assert_true(c >= 0);
    const zp_class_stats *k = &s->classes[c];
    if (k->gets != gets || k->puts != puts || k->cache_hits != hits ||
        k->depot_hits != depot || k->allocations != alloc) {
        zpt_stats_print_classes("stats", s);
        fail_msg("class %zu: expected gets %llu puts %llu cache_hits %llu depot_hits %llu "
                 "allocations %llu",
                 size, (unsigned long long)gets, (unsigned long long)puts,
                 (unsigned long long)hits, (unsigned long long)depot,
                 (unsigned long long)alloc);
    }
    zpt_assert_stats(s);
}

/* bufs[0..n) are distinct, of class `size`, aligned, non-overlapping, and
 * writable: each is filled with its own pattern and all are checked after
 * every one was written. */
static void check_bufs(zp_pool *pool, void **bufs, size_t n, size_t size, uint64_t seed)
{
    size_t i, j, fill = size / 2 < 4096 ? size / 2 : 4096;
    for (i = 0; i < n; i++) {
        assert_non_null(bufs[i]);
        assert_int_equal(zp_capacity(pool, bufs[i]), size);
        assert_true(zpt_alignment_of(bufs[i]) >= zpt_min_sz(size, zpt_page_size()));
        /* the head and the last bytes of every buffer */
        zpt_fill(bufs[i], fill, seed + i);
        zpt_fill((char *)bufs[i] + size - 64, 64, ~(seed + i));
    }
    for (i = 0; i < n; i++) {
        if (zpt_check(bufs[i], fill, seed + i) != SIZE_MAX ||
            zpt_check((char *)bufs[i] + size - 64, 64, ~(seed + i)) != SIZE_MAX)
            fail_msg("buffer %zu of the batch (%p) was overwritten", i, bufs[i]);
        for (j = i + 1; j < n && n <= 512; j++) {
            uintptr_t a = (uintptr_t)bufs[i], b = (uintptr_t)bufs[j];
            if (a < b + size && b < a + size)
                fail_msg("buffers %zu (%p) and %zu (%p) overlap", i, bufs[i], j, bufs[j]);
        }
    }
}

/* ------------------------------------------------------------ arguments */

static void test_arguments(void **state)
{
    zp_pool *pool = POOL();
    void *bufs[4] = {NULL, NULL, NULL, NULL};
    zp_stats s;
    (void)state;
    assert_int_equal(zp_get_batch(pool, 4096, NULL, 0), 0);
    assert_int_equal(zp_get_batch(pool, 4096, bufs, 0), 0);
    assert_int_equal(zp_get_batch(pool, 4096, NULL, 3), -EINVAL);
    assert_int_equal(zp_get_batch(NULL, 4096, bufs, 3), -EINVAL);
    /* a size no provider can serve: refused, nothing taken */
    assert_int_equal(zp_get_batch(pool, SIZE_MAX, bufs, 3), -EOVERFLOW);
    zp_put_batch(pool, NULL, 3);
    zp_put_batch(pool, bufs, 0);
    zp_put_batch(pool, bufs, 4); /* all NULL: skipped */
    zp_put_batch(NULL, bufs, 4);
    s = zpt_read(pool);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.puts, 0);
    assert_int_equal(s.oversize, 0);
    assert_int_equal(s.misuse, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_reserved, 0);
    zpt_assert_stats(&s);

    /* size 0 means the smallest class */
    assert_int_equal(zp_get_batch(pool, 0, bufs, 4), 0);
    check_bufs(pool, bufs, 4, 4096, 1);
    zp_put_batch(pool, bufs, 4);
    s = zpt_read(pool);
    expect_class(&s, 4096, 4, 4, 0, 0, 4);
    zp_pool_destroy(pool);
}

/* ------------------------------------------ served from the thread cache */

static void test_cached_exact(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = POOL(.pv = pv);
    void *a[CAP], *b[CAP];
    zp_stats s;
    (void)state;

    /* empty cache: one refill of BATCH fresh buffers serves all 10 */
    assert_int_equal(zp_get_batch(pool, 3000, a, 10), 0);
    check_bufs(pool, a, 10, 4096, 100);
    s = zpt_read(pool);
    expect_class(&s, 4096, 10, 0, 0, 0, 10);
    assert_int_equal(s.gets, 10);
    assert_int_equal(s.allocations, 10);
    assert_int_equal(s.bytes_outstanding, 10 * 4096);
    assert_int_equal(s.bytes_cached, (BATCH - 10) * 4096);
    assert_int_equal(s.bytes_reserved, SLAB);
    assert_int_equal(atomic_load(&pv->maps), 1);

    /* 6 left in the cache: 6 hits, and one more refill for the other 4 */
    assert_int_equal(zp_get_batch(pool, 4096, b, 10), 0);
    check_bufs(pool, b, 10, 4096, 200);
    s = zpt_read(pool);
    expect_class(&s, 4096, 20, 0, 6, 0, 14);
    assert_int_equal(s.bytes_outstanding, 20 * 4096);
    assert_int_equal(s.bytes_cached, 12 * 4096);
    assert_int_equal(atomic_load(&pv->maps), 1);

    /* back into the cache (12 + 20 = CAP: no depot exchange needed) */
    zp_put_batch(pool, a, 10);
    zp_put_batch(pool, b, 10);
    s = zpt_read(pool);
    expect_class(&s, 4096, 20, 20, 6, 0, 14);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_cached, 32 * 4096);

    /* the whole cache in one batch: CAP hits, no new memory */
    assert_int_equal(zp_get_batch(pool, 4096, a, CAP), 0);
    check_bufs(pool, a, CAP, 4096, 300);
    s = zpt_read(pool);
    expect_class(&s, 4096, 52, 20, 38, 0, 14);
    assert_int_equal(s.bytes_outstanding, CAP * 4096);
    assert_int_equal(atomic_load(&pv->maps), 1);
    zp_put_batch(pool, a, CAP);
    s = zpt_read(pool);
    expect_class(&s, 4096, 52, 52, 38, 0, 14);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.contention, 0);
    assert_int_equal(s.misuse, 0);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    zpt_provider_free(pv);
}

/* A batch bigger than the cache goes to the depot and leaves the cache
 * alone; buffers put back in a batch that big go to the depot, and the next
 * big batch is served from there (depot_hits per buffer). */
static void test_larger_than_cache(void **state)
{
    enum { N = 100 };
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = POOL(.pv = pv);
    void *big[N], *warm[5], *again[5];
    zp_stats s;
    int i;
    (void)state;

    /* five buffers warm in the cache (the rest of the refills too). Refills
     * of 1, 2 and 4: gets 1, 2 and 4 carve (3 allocations), gets 3 and 5
     * are hits, and 7 buffers are carved, all idle in the cache after */
    for (i = 0; i < 5; i++)
        warm[i] = zp_get(pool, 4096);
    for (i = 0; i < 5; i++)
        zp_put(pool, warm[i]);
    s = zpt_read(pool);
    expect_class(&s, 4096, 5, 5, 2, 0, 3);
    assert_int_equal(s.bytes_cached, 7 * 4096);
    assert_int_equal(atomic_load(&pv->maps), 1);

    assert_int_equal(zp_get_batch(pool, 4096, big, N), 0);
    check_bufs(pool, big, N, 4096, 400);
    for (i = 0; i < N; i++) {
        int j;
        for (j = 0; j < 5; j++)
            if (big[i] == warm[j])
                fail_msg("the big batch took buffer %p from the thread cache", big[i]);
    }
    s = zpt_read(pool);
    /* fresh: 57 left in the first slab, then new slabs */
    expect_class(&s, 4096, 5 + N, 5, 2, 0, 3 + N);
    assert_int_equal(s.bytes_outstanding, N * 4096);

    /* the cache still holds the warm buffers, most recent on top */
    for (i = 0; i < 5; i++)
        again[i] = zp_get(pool, 4096);
    for (i = 0; i < 5; i++)
        assert_ptr_equal(again[i], warm[4 - i]);
    s = zpt_read(pool);
    expect_class(&s, 4096, 10 + N, 5, 7, 0, 3 + N);
    for (i = 0; i < 5; i++)
        zp_put(pool, again[i]);

    /* a big put_batch goes to the depot; the next big batch comes back
     * from it, one depot hit per buffer, nothing fresh */
    zp_put_batch(pool, big, N);
    s = zpt_read(pool);
    expect_class(&s, 4096, 10 + N, 10 + N, 7, 0, 3 + N);
    assert_int_equal(s.bytes_outstanding, 0);
    size_t maps = atomic_load(&pv->maps);
    assert_int_equal(zp_get_batch(pool, 4096, big, N), 0);
    check_bufs(pool, big, N, 4096, 500);
    s = zpt_read(pool);
    expect_class(&s, 4096, 10 + 2 * N, 10 + N, 7, N, 3 + N);
    assert_int_equal(atomic_load(&pv->maps), maps);
    zp_put_batch(pool, big, N);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.puts, s.gets);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    zpt_provider_free(pv);
}

/* put_batch into a nearly full cache makes room by moving whole magazines
 * (the oldest buffers) to the depot; nothing is lost or counted twice. */
static void test_put_into_full_cache(void **state)
{
    zp_pool *pool = POOL(.cache_depth = 32); /* a bin that does not grow */
    void *a[30], *b[10];
    zp_stats s;
    int i;
    (void)state;
    assert_int_equal(zp_get_batch(pool, 4096, a, 30), 0); /* refill of 30 */
    assert_int_equal(zp_get_batch(pool, 4096, b, 10), 0); /* refill of 16 */
    /* cache 6: 6 + 30 > CAP, so the 6 go to the depot first */
    zp_put_batch(pool, a, 30);
    /* cache 30: 30 + 10 > CAP, so one magazine (16 oldest) goes */
    zp_put_batch(pool, b, 10);
    s = zpt_read(pool);
    expect_class(&s, 4096, 40, 40, 0, 0, 40);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_cached, 46 * 4096); /* every buffer carved */
    /* 24 in the cache, the 10 put last among them */
    assert_int_equal(zp_get_batch(pool, 4096, a, 24), 0);
    s = zpt_read(pool);
    expect_class(&s, 4096, 64, 40, 24, 0, 40);
    for (i = 0; i < 10; i++) {
        int j, found = 0;
        for (j = 0; j < 24; j++)
            found |= a[j] == b[i];
        if (!found)
            fail_msg("buffer %p put last is not among the cached ones", b[i]);
    }
    /* the next ones come from the depot, not from fresh memory */
    assert_int_equal(zp_get_batch(pool, 4096, b, 10), 0);
    s = zpt_read(pool);
    expect_class(&s, 4096, 74, 40, 24, 10, 40);
    zp_put_batch(pool, a, 24);
    zp_put_batch(pool, b, 10);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_cached, 46 * 4096);
    zp_pool_destroy(pool);
}

/* --------------------------------------------------------- all or nothing */

/* The provider fails while a big batch is being served: -ENOMEM, no buffer
 * taken, no counter moved, and the buffers already carved stay usable. */
static void test_provider_fails_direct(void **state)
{
    enum { N = 100 };
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = POOL(.pv = pv);
    void *bufs[N];
    zp_stats s;
    (void)state;
    atomic_store(&pv->fail_nth, 2); /* the first slab maps, the second not */
    assert_int_equal(zp_get_batch(pool, 4096, bufs, N), -ENOMEM);
    assert_int_equal(atomic_load(&pv->injected), 1);
    s = zpt_read(pool);
    expect_class(&s, 4096, 0, 0, 0, 0, 0);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_reserved, SLAB);
    assert_int_equal(s.bytes_cached, SLAB); /* all 64 carved, all idle */

    /* served now: the 64 idle ones from the depot, 36 fresh */
    assert_int_equal(zp_get_batch(pool, 4096, bufs, N), 0);
    check_bufs(pool, bufs, N, 4096, 600);
    s = zpt_read(pool);
    expect_class(&s, 4096, N, 0, 0, 64, N - 64);
    zp_put_batch(pool, bufs, N);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

/* The provider fails while the thread cache is being refilled for a batch
 * (256 KiB buffers: one per slab, one slab per refill step). */
static void test_provider_fails_cached(void **state)
{
    const size_t sz = 256 * ZPT_KiB;
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = POOL(.pv = pv);
    void *bufs[5];
    zp_stats s;
    (void)state;
    atomic_store(&pv->fail_nth, 3);
    assert_int_equal(zp_get_batch(pool, sz, bufs, 4), -ENOMEM);
    s = zpt_read(pool);
    expect_class(&s, sz, 0, 0, 0, 0, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_reserved, 2 * sz);
    assert_int_equal(s.bytes_cached, 2 * sz);

    /* the two refilled ones are still there: 2 hits, 2 fresh */
    assert_int_equal(zp_get_batch(pool, sz, bufs, 4), 0);
    check_bufs(pool, bufs, 4, sz, 700);
    s = zpt_read(pool);
    expect_class(&s, sz, 4, 0, 2, 0, 2);
    assert_int_equal(s.bytes_outstanding, 4 * sz);

    /* everything failing: nothing taken, nothing counted */
    atomic_store(&pv->fail_all, 1);
    assert_int_equal(zp_get_batch(pool, sz, bufs + 4, 1), -ENOMEM);
    assert_int_equal(zp_get_batch(pool, 4096, bufs + 4, 1), -ENOMEM);
    s = zpt_read(pool);
    assert_int_equal(s.gets, 4);
    assert_int_equal(s.bytes_outstanding, 4 * sz);
    atomic_store(&pv->fail_all, 0);
    zp_put_batch(pool, bufs, 4);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    zpt_provider_free(pv);
}

/* A batch the budget cannot hold: -ENOBUFS, no buffer taken, and no byte
 * lost: afterwards singles still get exactly up to the budget. */
static void test_budget_all_or_nothing(void **state)
{
    enum { FIT = 256 }; /* 1 MiB of 4 KiB buffers */
    zp_pool *pool = POOL(.max_bytes = ZPT_MiB);
    void **bufs = calloc(FIT + 64, sizeof(void *));
    zp_stats s;
    int i;
    (void)state;
    assert_non_null(bufs);

    /* bigger than the cache: the depot path */
    assert_int_equal(zp_get_batch(pool, 4096, bufs, FIT + 1), -ENOBUFS);
    s = zpt_read(pool);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(s.bytes_reserved <= ZPT_MiB);
    zpt_assert_stats(&s);

    /* fits the cache, but the budget is short for one of them */
    assert_int_equal(zp_get_batch(pool, 256 * ZPT_KiB, bufs, 5), -ENOBUFS);
    s = zpt_read(pool);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(s.bytes_reserved <= ZPT_MiB);
    zpt_assert_stats(&s);

    /* nothing leaked: the whole budget is still there for singles */
    for (i = 0; i < FIT; i++) {
        bufs[i] = zp_get(pool, 4096);
        if (bufs[i] == NULL)
            fail_msg("single get %d of %d failed after the failed batches (errno %d)", i,
                     FIT, errno);
    }
    assert_null(zp_get(pool, 4096));
    assert_int_equal(errno, ENOBUFS);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, (uint64_t)FIT * 4096);
    assert_int_equal(s.bytes_reserved, ZPT_MiB);

    /* and a batch that exactly fits, after they are back */
    zp_put_batch(pool, bufs, FIT);
    assert_int_equal(zp_get_batch(pool, 4096, bufs, FIT), 0);
    check_bufs(pool, bufs, FIT, 4096, 800);
    zp_put_batch(pool, bufs, FIT);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.gets, s.puts);
    free(bufs);
    zp_pool_destroy(pool);
}

/* A batch that needs new memory while the budget is held by this pool's
 * own idle buffers gets it, as a single zp_get does: the pool gives its
 * idle memory back first (the budget contract in zeropool.h). */
static void test_budget_reclaims_idle(void **state)
{
    enum { FIT = 256 };
    zp_pool *pool = POOL(.max_bytes = ZPT_MiB);
    void *bufs[FIT];
    zp_stats s;
    int i, rc;
    (void)state;
    for (i = 0; i < FIT; i++) {
        bufs[i] = zp_get(pool, 4096);
        assert_non_null(bufs[i]);
    }
    zp_put_batch(pool, bufs, FIT); /* the whole budget is idle 4 KiB slabs */

    /* served from the cache: 10 of 8 KiB */
    rc = zp_get_batch(pool, 8192, bufs, 10);
    if (rc != 0)
        fail_msg("zp_get_batch(8 KiB x 10) = %d (%s) with the whole budget idle in "
                 "this pool; zp_get(8 KiB) succeeds there",
                 rc, zp_strerror(rc));
    zp_put_batch(pool, bufs, 10);
    zp_trim(pool, 0);

    /* idle again, in 4 KiB slabs; now a depot-sized batch of 16 KiB */
    for (i = 0; i < FIT; i++) {
        bufs[i] = zp_get(pool, 4096);
        assert_non_null(bufs[i]);
    }
    zp_put_batch(pool, bufs, FIT);
    rc = zp_get_batch(pool, 16384, bufs, 40);
    if (rc != 0)
        fail_msg("zp_get_batch(16 KiB x 40) = %d (%s) with the whole budget idle in "
                 "this pool",
                 rc, zp_strerror(rc));
    zp_put_batch(pool, bufs, 40);
    s = zpt_read(pool);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_true(s.bytes_reserved <= ZPT_MiB);
    zp_pool_destroy(pool);
}

/* A budget waiter is woken by zp_put_batch as by zp_put. The waiter puts
 * what it got back from its own thread. */
static void put_back(zpt_waiter *w)
{
    if (w->buf)
        zp_put(w->pool, w->buf);
}

static void test_put_batch_wakes_waiter(void **state)
{
    enum { FIT = 256 };
    zp_budget *budget = zpt_budget_new(ZPT_MiB);
    zp_pool *pool = POOL(.budget = budget);
    void *bufs[FIT];
    zpt_waiter w;
    zp_stats s;
    int i;
    (void)state;
    for (i = 0; i < FIT; i++) {
        bufs[i] = zp_get(pool, 4096);
        assert_non_null(bufs[i]);
    }
    zpt_waiter_start_then(&w, pool, 4096, 10000, put_back, 0);
    /* wait until it waits (bounded: 20 s) */
    assert_true(zpt_wait_waiters(budget, 1, 20000));
    assert_int_equal(zpt_waiters(budget), 1);
    zp_put_batch(pool, bufs, FIT);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    if (w.buf == NULL)
        fail_msg("the waiter was not served after zp_put_batch returned the whole "
                 "budget (errno %d after its 10 s timeout); zp_put wakes it",
                 w.err);
    /* every put counted once, whichever way it went back */
    s = zpt_read(pool);
    assert_int_equal(s.gets, FIT + 1);
    assert_int_equal(s.puts, FIT + 1);
    assert_int_equal(s.bytes_outstanding, 0);
    zpt_assert_stats(&s);
    zp_pool_destroy(pool);
    zp_budget_destroy(budget);
}

/* Oversize batches: mapped one by one, released on put, rolled back when
 * the provider fails (no counter moves, nothing stays mapped). */
static void test_oversize(void **state)
{
    const size_t sz = 2 * MAXC;
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = POOL(.pv = pv);
    void *bufs[3];
    zp_stats s0, s;
    size_t maps, i;
    (void)state;
    zp_put(pool, zp_get(pool, 4096)); /* some unrelated state */
    s0 = zpt_read(pool);
    assert_int_equal(zp_get_batch(pool, sz, bufs, 3), 0);
    for (i = 0; i < 3; i++) {
        assert_true(zp_capacity(pool, bufs[i]) >= sz);
        zpt_fill(bufs[i], 4096, i);
        zpt_fill((char *)bufs[i] + sz - 4096, 4096, i);
    }
    s = zpt_read(pool);
    assert_int_equal(s.gets, s0.gets + 3);
    assert_int_equal(s.oversize, 3);
    assert_int_equal(s.bytes_outstanding, 3 * sz);
    assert_int_equal(s.bytes_reserved, s0.bytes_reserved + 3 * sz);
    zpt_assert_stats(&s);
    zp_put_batch(pool, bufs, 3);
    s = zpt_read(pool);
    assert_int_equal(s.puts, s0.puts + 3);
    assert_int_equal(s.discards, 3);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_reserved, s0.bytes_reserved);
    s0 = s;

    /* the third mapping fails: the two others are unmapped again */
    maps = atomic_load(&pv->map_calls);
    atomic_store(&pv->fail_nth, maps + 3);
    assert_int_equal(zp_get_batch(pool, sz, bufs, 3), -ENOMEM);
    s = zpt_read(pool);
    if (s.gets != s0.gets || s.puts != s0.puts || s.oversize != s0.oversize ||
        s.discards != s0.discards) {
        zpt_stats_print_classes("before", &s0);
        zpt_stats_print_classes("after", &s);
        fail_msg("a failed oversize batch moved the counters");
    }
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_reserved, s0.bytes_reserved);
    assert_int_equal(atomic_load(&pv->bytes_live), s0.bytes_reserved);
    zpt_assert_stats(&s);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    zpt_provider_free(pv);
}

/* Oversize batch over budget: -ENOBUFS and the budget is whole again. */
static void test_oversize_budget(void **state)
{
    zp_budget *budget = zpt_budget_new(5 * ZPT_MiB);
    zp_budget_stats bs;
    zp_pool *pool = POOL(.budget = budget);
    void *bufs[3];
    zp_stats s;
    (void)state;
    assert_int_equal(zp_get_batch(pool, 2 * ZPT_MiB, bufs, 3), -ENOBUFS);
    s = zpt_read(pool);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.oversize, 0);
    assert_int_equal(s.bytes_reserved, 0);
    assert_int_equal(zpt_budget_stats(budget, &bs), 0);
    assert_int_equal(bs.bytes_reserved, 0);
    assert_int_equal(zp_get_batch(pool, 2 * ZPT_MiB, bufs, 2), 0);
    zp_put_batch(pool, bufs, 2);
    zp_pool_destroy(pool);
    zp_budget_destroy(budget);
}

/* ------------------------------------------------------- put_batch input */

/* Mixed classes (and oversize) with NULL entries in one put_batch. */
static void test_mixed_classes(void **state)
{
    zp_pool *pool = POOL();
    void *bufs[12];
    size_t sizes[12] = {4096, 100, 65536, 4096, 0, 2 * MAXC, 65536, 8192, 0, 4096, MAXC, 0};
    zp_stats s;
    int i, n = 12;
    (void)state;
    for (i = 0; i < n; i++) {
        if (sizes[i] == 0) {
            bufs[i] = NULL;
            continue;
        }
        bufs[i] = zp_get(pool, sizes[i]);
        assert_non_null(bufs[i]);
    }
    s = zpt_read(pool);
    assert_int_equal(s.gets, 9);
    zp_put_batch(pool, bufs, (size_t)n);
    s = zpt_read(pool);
    assert_int_equal(s.puts, 9);
    assert_int_equal(s.discards, 1);
    assert_int_equal(s.misuse, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    /* refills of 1, 2, 4 (4 KiB: the 1st, 2nd and 4th get miss, the 3rd
     * hits; 7 carved) and 2 (64 KiB: a first refill spans 128 KiB; the
     * 1st get misses, the 2nd hits; 2 carved) */
    expect_class(&s, 4096, 4, 4, 1, 0, 3);
    expect_class(&s, 65536, 2, 2, 1, 0, 1);
    expect_class(&s, 8192, 1, 1, 0, 0, 1);
    expect_class(&s, MAXC, 1, 1, 0, 0, 1);
    assert_int_equal(s.classes[zpt_class(&s, 4096)].bytes_cached, 7 * 4096);
    assert_int_equal(s.classes[zpt_class(&s, 65536)].bytes_cached, 2 * 65536);

    /* and each class's buffers are reusable: the cache hands them back */
    for (i = 0; i < n; i++)
        if (sizes[i] && sizes[i] <= MAXC)
            bufs[i] = zp_get(pool, sizes[i]);
    s = zpt_read(pool);
    assert_int_equal(s.cache_hits, 1 + 1 + 8); /* the first round's two, then all */
    for (i = 0; i < n; i++)
        if (sizes[i] && sizes[i] <= MAXC)
            zp_put(pool, bufs[i]);
    zp_pool_destroy(pool);
}

/* Foreign pointers in a batch go to the misuse handler, each one; the
 * valid buffers around them are still returned. */
static void test_foreign_pointers(void **state)
{
    static zpt_misuse_log log = ZPT_MISUSE_LOG_INIT;
    zp_pool *pool = POOL(), *other = POOL();
    char stack_buf[64];
    void *heap = malloc(100), *held, *theirs;
    void *bufs[8];
    zpt_misuse_report got;
    zp_stats s;
    (void)state;
    zpt_misuse_reset(&log);
    zp_set_misuse_handler(zpt_misuse_record, &log);
    assert_int_equal(zp_get_batch(pool, 4096, bufs, 3), 0);
    held = zp_get(pool, 4096);
    theirs = zp_get(other, 4096);
    void *batch[7] = {bufs[0], heap, bufs[1], (char *)held + 64, stack_buf, theirs, bufs[2]};
    zp_put_batch(pool, batch, 7);
    assert_int_equal(zpt_misuse_last(&log, &got), 4);
    assert_int_equal(got.kind, ZP_MISUSE_FOREIGN); /* debug 0: another pool's is foreign too */
    assert_ptr_equal(got.ptr, theirs);
    assert_ptr_equal(got.pool, pool);
    assert_true(zpt_mentions_ptr(got.msg, theirs));
    s = zpt_read(pool);
    assert_int_equal(s.misuse, 4);
    assert_int_equal(s.puts, 3);
    assert_int_equal(s.bytes_outstanding, 4096); /* only `held` is out */
    zpt_assert_stats(&s);
    zp_put(pool, held);
    zp_put(other, theirs);
    s = zpt_read(other);
    assert_int_equal(s.misuse, 0);
    assert_int_equal(s.bytes_outstanding, 0);
    zp_set_misuse_handler(NULL, NULL);
    free(heap);
    zp_pool_destroy(other);
    zp_pool_destroy(pool);
}

/* Put batches recognise a run of buffers of one slab without the radix
 * map: a bad pointer inside that same slab right after a good one (an
 * interior pointer, off the class's stride) is still caught, each one, and
 * the good ones around it are returned. */
static void test_foreign_in_same_slab(void **state)
{
    static zpt_misuse_log log = ZPT_MISUSE_LOG_INIT;
    zp_pool *pool = POOL(.cache_depth = 8);
    void *bufs[4];
    zpt_misuse_report got;
    zp_stats s;
    (void)state;
    zpt_misuse_reset(&log);
    zp_set_misuse_handler(zpt_misuse_record, &log);
    assert_int_equal(zp_get_batch(pool, 4096, bufs, 4), 0);
    void *batch[7] = {bufs[0], (char *)bufs[1] + 8,    bufs[1], (char *)bufs[2] + 4095,
                      bufs[2], (char *)bufs[0] + 2048, bufs[3]};
    zp_put_batch(pool, batch, 7);
    assert_int_equal(zpt_misuse_last(&log, &got), 3);
    assert_int_equal(got.kind, ZP_MISUSE_FOREIGN);
    assert_ptr_equal(got.ptr, (char *)bufs[0] + 2048);
    s = zpt_read(pool);
    assert_int_equal(s.misuse, 3);
    assert_int_equal(s.puts, 4);
    assert_int_equal(s.bytes_outstanding, 0);
    zpt_assert_stats(&s);
    zp_set_misuse_handler(NULL, NULL);
    zp_pool_destroy(pool);
}

/* At debug level 1 a buffer twice in one batch is put once and reported
 * once; the rest of the batch is returned. */
static void test_double_put_in_batch(void **state)
{
    static zpt_misuse_log log = ZPT_MISUSE_LOG_INIT;
    zp_pool *pool = POOL(.debug = 1);
    void *bufs[3], *batch[4];
    zpt_misuse_report got;
    zp_stats s;
    (void)state;
    zpt_misuse_reset(&log);
    zp_set_misuse_handler(zpt_misuse_record, &log);
    assert_int_equal(zp_get_batch(pool, 4096, bufs, 3), 0);
    batch[0] = bufs[0];
    batch[1] = bufs[1];
    batch[2] = bufs[0];
    batch[3] = bufs[2];
    zp_put_batch(pool, batch, 4);
    assert_int_equal(zpt_misuse_last(&log, &got), 1);
    assert_int_equal(got.kind, ZP_MISUSE_DOUBLE_PUT);
    assert_ptr_equal(got.ptr, bufs[0]);
    s = zpt_read(pool);
    assert_int_equal(s.puts, 3);
    assert_int_equal(s.misuse, 1);
    assert_int_equal(s.bytes_outstanding, 0);
    /* the buffer is handed out once, not twice */
    assert_int_equal(zp_get_batch(pool, 4096, bufs, 3), 0);
    assert_true(bufs[0] != bufs[1] && bufs[1] != bufs[2] && bufs[0] != bufs[2]);
    zp_put_batch(pool, bufs, 3);
    assert_int_equal(zpt_misuse_last(&log, &got), 1);
    zp_set_misuse_handler(NULL, NULL);
    zp_pool_destroy(pool);
}

/* ZP_ZERO_ON_GET applies to every buffer of a batch. */
static void test_zero_on_get(void **state)
{
    zp_pool *pool = POOL(.flags = ZP_ZERO_ON_GET);
    void *bufs[40];
    int i, round;
    (void)state;
    for (round = 0; round < 2; round++) {
        size_t n = round ? 40 : 10; /* cache path, then depot path */
        assert_int_equal(zp_get_batch(pool, 8192, bufs, n), 0);
        for (i = 0; i < (int)n; i++) {
            if (!zpt_all_zero(bufs[i], 8192))
                fail_msg("round %d: buffer %d of the batch is not zeroed", round, i);
            memset(bufs[i], 0x5A, 8192);
        }
        zp_put_batch(pool, bufs, n);
    }
    for (i = 0; i < 2; i++) {
        assert_int_equal(zp_get_batch(pool, 8192, bufs, 40), 0);
        for (int j = 0; j < 40; j++)
            if (!zpt_all_zero(bufs[j], 8192))
                fail_msg("reused buffer %d of the batch is not zeroed", j);
        zp_put_batch(pool, bufs, 40);
    }
    zp_pool_destroy(pool);
}

/* ---------------------------------------------------------- cross-thread */

typedef struct xarg {
    zp_pool *pool;
    void **bufs;
    size_t n;
    uint64_t seed;
    atomic_int bad; /* buffers whose contents changed on the way */
} xarg;

static void *put_batch_thread(void *p)
{
    xarg *x = p;
    size_t i;
    for (i = 0; i < x->n; i++)
        if (zpt_check(x->bufs[i], 4096, x->seed + i) != SIZE_MAX)
            atomic_fetch_add(&x->bad, 1);
    zp_put_batch(x->pool, x->bufs, x->n);
    return NULL; /* the thread exits: its cache goes back to the depot */
}

/* Buffers got here and put in a batch on another thread (which then
 * exits) come back through the depot: every count exact. */
static void test_cross_thread(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = POOL(.pv = pv);
    void *bufs[50];
    xarg x;
    pthread_t t;
    zp_stats s;
    size_t i, maps, round;
    (void)state;
    for (round = 0; round < 2; round++) {
        /* 50: bigger than the cache both ways; 20: into the other thread's
         * cache, handed to the depot when it exits */
        size_t n = round ? 20 : 50;
        s = zpt_read(pool);
        uint64_t gets0 = s.gets, puts0 = s.puts, depot0;
        assert_int_equal(zp_get_batch(pool, 4096, bufs, n), 0);
        for (i = 0; i < n; i++)
            zpt_fill(bufs[i], 4096, 1000 * round + i);
        x.pool = pool;
        x.bufs = bufs;
        x.n = n;
        x.seed = 1000 * round;
        atomic_init(&x.bad, 0);
        assert_int_equal(pthread_create(&t, NULL, put_batch_thread, &x), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(atomic_load(&x.bad), 0);
        s = zpt_read(pool);
        assert_int_equal(s.gets, gets0 + n);
        assert_int_equal(s.puts, puts0 + n);
        assert_int_equal(s.bytes_outstanding, 0);
        zpt_assert_stats(&s);

        /* this thread's cache is empty (the 50 bypassed it; the 20 were
         * the whole refill): the same buffers come back from the depot */
        depot0 = s.depot_hits;
        maps = atomic_load(&pv->maps);
        assert_int_equal(zp_get_batch(pool, 4096, bufs, n), 0);
        s = zpt_read(pool);
        assert_int_equal(s.depot_hits, depot0 + n);
        assert_int_equal(atomic_load(&pv->maps), maps);
        zp_put_batch(pool, bufs, n);
    }
    s = zpt_read(pool);
    assert_int_equal(s.gets, s.puts);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.misuse, 0);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    zpt_provider_free(pv);
}

/* No thread caches (cache_depth 0): batches go to the depot, counted the
 * same way. */
static void test_no_cache(void **state)
{
    zp_pool *pool = POOL(.cache_depth = ZPT_ZERO);
    void *bufs[40];
    zp_stats s;
    (void)state;
    assert_int_equal(zp_get_batch(pool, 4096, bufs, 10), 0);
    check_bufs(pool, bufs, 10, 4096, 900);
    zp_put_batch(pool, bufs, 10);
    assert_int_equal(zp_get_batch(pool, 4096, bufs, 40), 0);
    check_bufs(pool, bufs, 40, 4096, 1000);
    s = zpt_read(pool);
    expect_class(&s, 4096, 50, 10, 0, 10, 40);
    zp_put_batch(pool, bufs, 40);
    s = zpt_read(pool);
    expect_class(&s, 4096, 50, 50, 0, 10, 40);
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.bytes_cached, 40 * 4096); /* all carved, all idle */
    zp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_cached_exact),
        cmocka_unit_test(test_larger_than_cache),
        cmocka_unit_test(test_put_into_full_cache),
        cmocka_unit_test(test_provider_fails_direct),
        cmocka_unit_test(test_provider_fails_cached),
        cmocka_unit_test(test_budget_all_or_nothing),
        cmocka_unit_test(test_budget_reclaims_idle),
        cmocka_unit_test(test_put_batch_wakes_waiter),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_oversize_budget),
        cmocka_unit_test(test_mixed_classes),
        cmocka_unit_test(test_foreign_pointers),
        cmocka_unit_test(test_foreign_in_same_slab),
        cmocka_unit_test(test_double_put_in_batch),
        cmocka_unit_test(test_zero_on_get),
        cmocka_unit_test(test_cross_thread),
        cmocka_unit_test(test_no_cache),
    };
    return ZPT_RUN(tests);
}
