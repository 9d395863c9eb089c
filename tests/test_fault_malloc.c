/* Metadata allocation failure: the Nth allocation fails, for every N; each call fails cleanly or absorbs it. */
/*
 * The Nth allocation zeropool makes fails, for every N, while a workload
 * runs. Each call fails cleanly (NULL/ENOMEM, -ENOMEM) or absorbs the
 * failure, nothing breaks, and once memory is back the pool works and
 * gives every byte back. The failures are injected by the harness's
 * allocator wrappers (zp_test.h: the library's malloc, calloc, realloc,
 * aligned_alloc ... calls are wrapped at link time), so this runs in every
 * build, sanitizers and valgrind included: their allocators stay in place
 * underneath. Only the allocations of the workload's thread are numbered,
 * so cmocka and other threads are never refused memory.
 */
#include "zp_test.h"

/* ---------------------------------------------------------- workload */

typedef struct result {
    long fail_at;
    long calls;        /* allocations the armed workload made */
    int injected;
    int failed_ops;    /* calls that reported a failure */
    int bad_errno;     /* failures with anything but ENOMEM */
    int broken;        /* a check after recovery failed (line number) */
    uint64_t reserved_after;
} result;

#define BROKEN(r)                                                            \
    do {                                                                     \
        (r)->broken = __LINE__;                                              \
        goto out;                                                            \
    } while (0)

static void failed(result *r, int err)
{
    r->failed_ops++;
    if (err != ENOMEM)
        r->bad_errno++;
}

/* Runs on a fresh thread (so its first-use allocations are in play too). */
static void *workload(void *arg)
{
    result *r = arg;
    zpt_provider *pv = zpt_provider_new(); /* before arming */
    zp_config cfg;
    zp_pool *pool = NULL;
    void *held[256];
    size_t nheld = 0, i;
    void *b;
    int rc;
    zp_stats s;

    ZPT_CONFIG(&cfg, .max_class = 1 << 20, .debug = 1,
               .max_bytes = 256 << 20, /* a private budget: one more allocation */
               .pv = pv);

    zpt_alloc_arm(r->fail_at);
    rc = zp_pool_create(&cfg, &pool);
    if (rc != 0) {
        long calls;
        int injected;
        failed(r, -rc);
        calls = zpt_alloc_disarm(&injected);
        if (pool != NULL)
            BROKEN(r);
        /* memory is back: creation works */
        if (zp_pool_create(&cfg, &pool) != 0)
            BROKEN(r);
        /* count on, refusing nothing more: the one failure was injected */
        zpt_alloc_arm(0);
        r->calls = calls;
        r->injected = injected;
    }
    for (i = 0; i < 3; i++) {
        if ((b = zp_get(pool, 4096)) != NULL)
            held[nheld++] = b;
        else
            failed(r, errno);
    }
    if ((rc = zp_get_batch(pool, 16384, held + nheld, 20)) == 0)
        nheld += 20;
    else
        failed(r, -rc);
    if ((rc = zp_get_batch(pool, 8192, held + nheld, 100)) == 0) /* direct */
        nheld += 100;
    else
        failed(r, -rc);
    if ((b = zp_get(pool, 3 << 20)) != NULL) /* oversize: its metadata */
        held[nheld++] = b;
    else
        failed(r, errno);
    if ((rc = zp_get_batch(pool, 2 << 20, held + nheld, 2)) == 0)
        nheld += 2;
    else
        failed(r, -rc);
    for (i = 0; i < nheld / 2; i++)
        zp_put(pool, held[nheld - 1 - i]);
    nheld -= nheld / 2;
    zp_trim(pool, 0); /* gathers idle buffers in a temporary array */
    for (i = 0; i < 40; i++) {
        if ((b = zp_get(pool, (size_t)4096 << (i % 9))) != NULL)
            held[nheld++] = b;
        else
            failed(r, errno);
    }
    zp_put_batch(pool, held, nheld);
    nheld = 0;
    {
        int injected;
        r->calls += zpt_alloc_disarm(&injected);
        r->injected += injected;
    }

    /* memory is back: everything works, and every byte goes back */
    if (!zpt_stats_consistent(pool, pv, &s))
        BROKEN(r);
    if (s.bytes_outstanding != 0 || s.misuse != 0)
        BROKEN(r);
    for (i = 0; i < 12; i++) {
        if ((held[i] = zp_get(pool, (size_t)64 << i)) == NULL)
            BROKEN(r);
        zpt_fill(held[i], 64, i);
    }
    for (i = 0; i < 12; i++)
        if (zpt_check(held[i], 64, i) != SIZE_MAX)
            BROKEN(r);
    zp_put_batch(pool, held, 12);
    zp_trim(pool, 0);
    if (!zpt_stats_consistent(pool, pv, &s))
        BROKEN(r);
    r->reserved_after = s.bytes_reserved;
out:
    zpt_alloc_disarm(NULL);
    if (pool)
        zp_pool_destroy(pool);
    if (atomic_load(&pv->bytes_live) != 0 || atomic_load(&pv->bad_unmaps) != 0)
        r->broken = r->broken ? r->broken : __LINE__;
    zpt_provider_free(pv);
    return NULL;
}

static void run(result *r, long fail_at)
{
    pthread_t t;
    memset(r, 0, sizeof(*r));
    r->fail_at = fail_at;
    assert_int_equal(pthread_create(&t, NULL, workload, r), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

static void test_every_allocation(void **state)
{
    result r;
    long n, k, absorbed = 0;
    (void)state;
    run(&r, 0);
    if (r.broken || r.failed_ops)
        fail_msg("without injection: broken at line %d, %d calls failed", r.broken,
                 r.failed_ops);
    k = r.calls;
    print_message("# the workload makes %ld allocations\n", k);
    assert_true(k >= 5);
    for (n = 1; n <= k + 1; n++) {
        run(&r, n);
        if (r.broken)
            fail_msg("allocation %ld failing: broken at test_fault_malloc.c:%d", n,
                     r.broken);
        if (r.bad_errno)
            fail_msg("allocation %ld failing: a call failed with another errno than "
                     "ENOMEM", n);
        if (r.failed_ops > 1)
            fail_msg("allocation %ld failing: %d calls failed, want at most 1", n,
                     r.failed_ops);
        if (r.reserved_after != 0)
            fail_msg("allocation %ld failing: %llu bytes still mapped after "
                     "putting everything and trimming", n,
                     (unsigned long long)r.reserved_after);
        if (n <= k && r.injected == 1 && r.failed_ops == 0)
            absorbed++;
    }
    print_message("# %ld of %ld failures were absorbed (the call still succeeded)\n",
                  absorbed, k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation),
    };
    unsetenv("ZEROPOOL_DEBUG");
    return ZPT_RUN(tests);
}
