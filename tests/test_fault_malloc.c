/* Tests metadata allocation failure: malloc, calloc, realloc and
 * aligned_alloc are interposed, and a workload is replayed with the Nth
 * allocation zeropool makes failing, for every N. Each call fails cleanly
 * (NULL/ENOMEM, -ENOMEM) or absorbs the failure, nothing breaks, and once
 * memory is back the pool works and gives every byte back. Skipped in
 * sanitizer builds and under valgrind, whose runtimes own malloc. */
#include "robust_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#if !defined(ZPT_SANITIZED)

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);

/* Only allocations of a thread that armed itself count, so cmocka and
 * other threads are never refused memory. */
static __thread int t_armed;
static __thread long t_calls;
static __thread long t_fail_at;
static __thread int t_injected;

static int refuse(void)
{
    if (!t_armed)
        return 0;
    if (++t_calls == t_fail_at) {
        t_injected++;
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

void *malloc(size_t size)
{
    return refuse() ? NULL : __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    return refuse() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    return refuse() ? NULL : __libc_realloc(p, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    return refuse() ? NULL : __libc_memalign(align, size);
}

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

    zp_config_init(&cfg);
    cfg.max_class = 1 << 20;
    cfg.debug = 1;
    cfg.max_bytes = 256 << 20; /* a private budget: one more allocation */
    zpt_provider_attach(&cfg, pv);

    t_calls = 0;
    t_fail_at = r->fail_at;
    t_injected = 0;
    t_armed = 1;
    rc = zp_pool_create(&cfg, &pool);
    if (rc != 0) {
        failed(r, -rc);
        t_armed = 0;
        if (pool != NULL)
            BROKEN(r);
        /* memory is back: creation works */
        if (zp_pool_create(&cfg, &pool) != 0)
            BROKEN(r);
        t_armed = 1;
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
    t_armed = 0;
    r->calls = t_calls;
    r->injected = t_injected;

    /* memory is back: everything works, and every byte goes back */
    if (!zpr_stats_consistent(pool, pv, &s))
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
    if (!zpr_stats_consistent(pool, pv, &s))
        BROKEN(r);
    r->reserved_after = s.bytes_reserved;
out:
    t_armed = 0;
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
    if (k == 0) {
        /* valgrind puts its own allocator in place of ours */
        print_message("# malloc is not interposed here (valgrind?): skipped\n");
        skip();
    }
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
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* sanitizer runtimes own malloc: nothing to interpose */

int main(void)
{
    printf("test_fault_malloc: skipped in sanitizer builds\n");
    return 77;
}

#endif
