/* Tests that a million get/put pairs on a warm cache handle make no malloc, no provider map and no mmap-family system call. */
#include "handles_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/syscall.h>

#include <cmocka.h>

/*
 * Counting: only while `armed` is set, so cmocka and the warm-up allocate
 * freely. Relaxed atomics are enough: the thread that arms and disarms
 * also does the counted work and reads the totals.
 */
static atomic_int armed;
static atomic_ulong n_mallocs;
static atomic_ulong n_frees;
static atomic_ulong n_sys; /* mmap, munmap, madvise, mprotect */

static inline void bump(atomic_ulong *c)
{
    if (atomic_load_explicit(&armed, memory_order_relaxed))
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

#if defined(ZPT_SANITIZED)
/* The sanitizer's allocator is in charge: count through its hooks. */
int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t),
    void (*free_hook)(const volatile void *));

static void hook_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    bump(&n_mallocs);
}

static void hook_free(const volatile void *p)
{
    (void)p;
    bump(&n_frees);
}

static void start_counting(void)
{
    __sanitizer_install_malloc_and_free_hooks(hook_malloc, hook_free);
}
#define SYS_COUNTED 0
#else
/* Plain build: this executable defines the allocator entry points, so the
 * statically linked library's calls land here; glibc does the work. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n)
{
    bump(&n_mallocs);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    bump(&n_mallocs);
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    bump(&n_mallocs);
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    bump(&n_mallocs);
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    bump(&n_mallocs);
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p;
    bump(&n_mallocs);
    if (align < sizeof(void *) || !zpt_is_pow2(align))
        return EINVAL;
    if ((p = __libc_memalign(align, n)) == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p)
{
    if (p != NULL)
        bump(&n_frees);
    __libc_free(p);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    bump(&n_sys);
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
    bump(&n_sys);
    return (int)syscall(SYS_munmap, addr, len);
}

int madvise(void *addr, size_t len, int advice)
{
    bump(&n_sys);
    return (int)syscall(SYS_madvise, addr, len, advice);
}

int mprotect(void *addr, size_t len, int prot)
{
    bump(&n_sys);
    return (int)syscall(SYS_mprotect, addr, len, prot);
}

static void start_counting(void) {}
#define SYS_COUNTED 1
#endif

#if defined(ZPT_SANITIZED)
#define PAIRS 200000ul
#else
#define PAIRS 1000000ul
#endif

enum { MODE_SINGLE, MODE_BATCH };

/* `pairs` get/put pairs through handle c: `hold` buffers of `size` at a
 * time, one by one or as one batch. Returns the failed gets. */
static unsigned long traffic(zp_cache *c, size_t size, unsigned hold,
                             unsigned long pairs, int mode)
{
    void *held[64];
    unsigned long done, failed = 0;
    unsigned i;
    for (done = 0; done < pairs; done += hold) {
        if (mode == MODE_BATCH) {
            failed += zp_cache_get_batch(c, size, held, hold) != 0 ? hold : 0;
            zp_cache_put_batch(c, held, hold);
            continue;
        }
        for (i = 0; i < hold; i++) {
            held[i] = zp_cache_get(c, size);
            failed += held[i] == NULL;
        }
        for (i = 0; i < hold; i++)
            zp_cache_put(c, held[i]);
    }
    return failed;
}

static void run(size_t size, unsigned hold, int debug, int mode)
{
    zpt_provider *pv = zpt_provider_new();
    zp_config cfg;
    zp_pool *pool = NULL;
    zp_cache *c = NULL;
    zp_stats s0, s1;
    unsigned long pairs = zpt_scaled(PAIRS), failed, mallocs, frees, sys;
    size_t maps0, unmaps0;
    assert_true(hold <= 64);
    /* debug 2 from the environment scans whole buffers: bound the bytes */
    if (zpt_env_debug() >= 2 && pairs * size > ((size_t)512 << 20))
        pairs = ((size_t)512 << 20) / size;
    if (pairs < 8ul * hold)
        pairs = 8ul * hold;
    zp_config_init(&cfg);
    cfg.debug = debug;
    zpt_provider_attach(&cfg, pv);
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    assert_int_equal(zp_cache_create(pool, &c), 0);

    /* the counters work: a malloc while armed is seen */
    atomic_store(&armed, 1);
    {
        void *volatile probe = malloc(24);
        free(probe);
    }
    atomic_store(&armed, 0);
    assert_true(atomic_load(&n_mallocs) >= 1);
    assert_true(atomic_load(&n_frees) >= 1);

    /* warm-up: the same traffic, a few times the handle's depth */
    assert_int_equal(traffic(c, size, hold, 8ul * hold + 128, mode), 0);
    assert_int_equal(zpt_stats(pool, &s0), 0);
    maps0 = atomic_load(&pv->map_calls);
    unmaps0 = atomic_load(&pv->unmaps);
    atomic_store(&n_mallocs, 0);
    atomic_store(&n_frees, 0);
    atomic_store(&n_sys, 0);

    atomic_store(&armed, 1);
    failed = traffic(c, size, hold, pairs, mode);
    atomic_store(&armed, 0);

    mallocs = atomic_load(&n_mallocs);
    frees = atomic_load(&n_frees);
    sys = atomic_load(&n_sys);
    assert_int_equal(zpt_stats(pool, &s1), 0);
    print_message("# %zu B x %u %s debug %d: %lu pairs: %lu mallocs, %lu "
                  "frees, %lu mmap-family calls, %zu maps, %zu unmaps\n",
                  size, hold, mode == MODE_BATCH ? "batch" : "single", debug,
                  pairs, mallocs, frees, sys,
                  atomic_load(&pv->map_calls) - maps0,
                  atomic_load(&pv->unmaps) - unmaps0);
    assert_int_equal(failed, 0);
    assert_int_equal(mallocs, 0);
    assert_int_equal(frees, 0);
    assert_int_equal(atomic_load(&pv->map_calls) - maps0, 0);
    assert_int_equal(atomic_load(&pv->unmaps) - unmaps0, 0);
    if (SYS_COUNTED)
        assert_int_equal(sys, 0);
    /* the pairs went through the pool's accounting, and add up */
    assert_true(s1.gets - s0.gets >= pairs);
    assert_int_equal(s1.gets - s0.gets, s1.puts - s0.puts);
    assert_int_equal(s1.allocations, s0.allocations);
    assert_true(zpt_stats_sum_ok(&s1) && zpt_stats_classes_ok(&s1));
    assert_int_equal(s1.bytes_outstanding, 0);

    zp_cache_destroy(c);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->maps), atomic_load(&pv->unmaps));
    zpt_provider_free(pv);
}

static void test_one_4k(void **state)
{
    (void)state;
    run(4096, 1, 0, MODE_SINGLE);
}

static void test_one_4m(void **state)
{
    (void)state;
    run(4 * ZPT_MiB, 1, 0, MODE_SINGLE);
}

static void test_held_16(void **state)
{
    (void)state;
    run(64 * ZPT_KiB, 16, 0, MODE_SINGLE);
}

/* more in flight than the handle holds (depth 32): it overflows into the
 * depot and refills from it, still without allocating */
static void test_held_48_through_depot(void **state)
{
    (void)state;
    run(16 * ZPT_KiB, 48, 0, MODE_SINGLE);
}

static void test_batches_of_32(void **state)
{
    (void)state;
    run(8 * ZPT_KiB, 32, 0, MODE_BATCH);
}

static void test_batches_beyond_depth(void **state)
{
    (void)state;
    run(8 * ZPT_KiB, 64, 0, MODE_BATCH);
}

static void test_debug1_path(void **state)
{
    (void)state;
    run(4096, 48, 1, MODE_SINGLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_4k),
        cmocka_unit_test(test_one_4m),
        cmocka_unit_test(test_held_16),
        cmocka_unit_test(test_held_48_through_depot),
        cmocka_unit_test(test_batches_of_32),
        cmocka_unit_test(test_batches_beyond_depth),
        cmocka_unit_test(test_debug1_path),
    };
    start_counting();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
