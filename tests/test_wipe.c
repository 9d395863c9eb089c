/* ZP_WIPE_ON_PUT: once a buffer is put, no byte of its secret is left anywhere in the pool's memory. */
/*
 * The secret is looked for through the provider's mapping (the pool's own
 * view), through the next get at debug 0, and in every region as the pool
 * hands it back to the provider (oversize, trim, destroy). Single and
 * batch puts, puts from another thread, debug 2. That the wipe cannot be
 * optimised away is checked on the library's code by the test_wipe_symbol
 * test (tests/CMakeLists.txt).
 */
#include "zp_test.h"

static const unsigned char secret[16] = {'S', '3', 'C', 'R', '3', 'T', '-', 'K',
                                         '3', 'Y', '!', '#', '@', '$', '%', '^'};

static void fill_secret(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = secret[i % 16];
}

/* Offset of the first byte in [p, p + n) still holding the secret's byte
 * for its position, or SIZE_MAX. Reads through volatile: what memory
 * holds, not what the compiler remembers. */
static size_t secret_left(const void *p, size_t n)
{
    const volatile unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] == secret[i % 16])
            return i;
    return SIZE_MAX;
}

/* The test provider, looking for the secret in every region before it is
 * unmapped. */
typedef struct snoop {
    zpt_provider *pv;
    atomic_size_t regions_checked;
    atomic_size_t regions_with_secret;
} snoop;

static void snoop_before_unmap(void *ptr, size_t size, void *arg)
{
    snoop *s = arg;
    zpt_asan_unpoison(ptr, size); /* debug 2 idle buffers are poisoned */
    atomic_fetch_add(&s->regions_checked, 1);
    if (secret_left(ptr, size) != SIZE_MAX)
        atomic_fetch_add(&s->regions_with_secret, 1);
}

static zp_pool *make(snoop *s, int debug, unsigned cache_depth)
{
    memset(s, 0, sizeof(*s));
    s->pv = zpt_provider_new();
    s->pv->before_unmap = snoop_before_unmap;
    s->pv->before_unmap_arg = s;
    return ZPT_POOL(.flags = ZP_WIPE_ON_PUT, .debug = debug,
                    .cache_depth = ZPT_EXACT(cache_depth), .max_class = 4 << 20, .pv = s->pv);
}

static void finish(snoop *s, zp_pool *pool)
{
    zp_pool_destroy(pool);
    assert_true(atomic_load(&s->regions_checked) > 0);
    assert_int_equal(atomic_load(&s->regions_with_secret), 0);
    assert_int_equal(atomic_load(&s->pv->bytes_live), 0);
    zpt_provider_free(s->pv);
}

/* Every byte of every mapped region, read raw: no secret anywhere. */
typedef struct secret_seen {
    void *at, *region;
    size_t off;
} secret_seen;

static int find_secret(void *ptr, size_t size, void *arg)
{
    secret_seen *seen = arg;
    zpt_asan_unpoison(ptr, size);
    seen->off = secret_left(ptr, size);
    if (seen->off == SIZE_MAX)
        return 0;
    seen->at = (char *)ptr + seen->off;
    seen->region = ptr;
    return 1;
}

static void expect_no_secret_mapped(snoop *s, const char *what)
{
    secret_seen seen;
    if (zpt_provider_each(s->pv, find_secret, &seen))
        fail_msg("%s: secret byte left at %p (region %p + %zu)", what, seen.at, seen.region,
                 seen.off);
}

static const size_t sizes[] = {4096, 8192, 65536, 1 << 20, 4 << 20};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void run_single(int debug, unsigned cache_depth)
{
    snoop s;
    zp_pool *pool = make(&s, debug, cache_depth);
    void *b[NSIZES], *big;
    size_t i;
    for (i = 0; i < NSIZES; i++) {
        assert_non_null(b[i] = zp_get(pool, sizes[i]));
        fill_secret(b[i], sizes[i]);
    }
    assert_non_null(big = zp_get(pool, 6 << 20)); /* oversize */
    fill_secret(big, 6 << 20);
    for (i = 0; i < NSIZES; i++)
        zp_put(pool, b[i]);
    zp_put(pool, big); /* unmapped at once: snooped */
    expect_no_secret_mapped(&s, "after single puts");
    if (debug == 0) {
        /* the next get hands the same buffer back: nothing of the secret */
        for (i = 0; i < NSIZES; i++) {
            void *again = zp_get(pool, sizes[i]);
            size_t off;
            assert_non_null(again);
            if (cache_depth)
                assert_ptr_equal(again, b[i]);
            off = secret_left(again, sizes[i]);
            if (off != SIZE_MAX)
                fail_msg("size %zu: the next get sees the secret at offset %zu",
                         sizes[i], off);
            zp_put(pool, again);
        }
    }
    zp_trim(pool, 0); /* unmaps the idle slabs: snooped */
    finish(&s, pool);
}

static void test_single_put(void **state)
{
    (void)state;
    run_single(0, 32);
}

static void test_single_put_no_cache(void **state)
{
    (void)state;
    run_single(0, 0);
}

static void test_single_put_debug2(void **state)
{
    (void)state;
    run_single(2, 32);
}

static void test_batch_put(void **state)
{
    snoop s;
    zp_pool *pool = make(&s, 0, 32);
    void *b[64];
    size_t i;
    (void)state;
    /* larger than the cache: part goes straight to the depot */
    assert_int_equal(zp_get_batch(pool, 16384, b, 64), 0);
    for (i = 0; i < 64; i++)
        fill_secret(b[i], 16384);
    zp_put_batch(pool, b, 64);
    expect_no_secret_mapped(&s, "after a batch put");
    assert_int_equal(zp_get_batch(pool, 16384, b, 64), 0);
    for (i = 0; i < 64; i++)
        assert_int_equal(secret_left(b[i], 16384), SIZE_MAX);
    zp_put_batch(pool, b, 64);
    finish(&s, pool);
}

typedef struct xput {
    zp_pool *pool;
    void **bufs;
    size_t n;
} xput;

static void *put_elsewhere(void *arg)
{
    xput *x = arg;
    for (size_t i = 0; i < x->n; i++)
        zp_put(x->pool, x->bufs[i]);
    return NULL;
}

static void test_put_from_other_thread(void **state)
{
    snoop s;
    zp_pool *pool = make(&s, 0, 32);
    void *b[40];
    pthread_t t;
    xput x;
    size_t i;
    (void)state;
    for (i = 0; i < 40; i++) {
        assert_non_null(b[i] = zp_get(pool, 65536));
        fill_secret(b[i], 65536);
    }
    x.pool = pool;
    x.bufs = b;
    x.n = 40;
    assert_int_equal(pthread_create(&t, NULL, put_elsewhere, &x), 0);
    assert_int_equal(pthread_join(t, NULL), 0); /* its cache went back */
    expect_no_secret_mapped(&s, "after puts on another thread");
    finish(&s, pool);
}

/* Without the flag the secret stays (so the checks above can fail). */
static void test_control_without_flag(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.pv = pv);
    void *b;
    (void)state;
    assert_non_null(b = zp_get(pool, 8192));
    fill_secret(b, 8192);
    zp_put(pool, b);
    assert_int_equal(secret_left(b, 8192), 0);
    zp_pool_destroy(pool);
    zpt_provider_free(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_put),
        cmocka_unit_test(test_single_put_no_cache),
        cmocka_unit_test(test_single_put_debug2),
        cmocka_unit_test(test_batch_put),
        cmocka_unit_test(test_put_from_other_thread),
        cmocka_unit_test(test_control_without_flag),
    };
    unsetenv("ZEROPOOL_DEBUG");
    return ZPT_RUN(tests);
}
