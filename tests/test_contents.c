/* Tests buffer contents, capacity and alignment at every size-class edge. */
#include "zp_test.h"

typedef struct geometry {
    size_t min_class;
    size_t max_class;
} geometry;

static const geometry geo_default = {4096, 64 * ZPT_MiB};
static const geometry geo_small = {64, 1 * ZPT_MiB};

/* Checks capacity and alignment of b, got for size from a pool of geometry
 * g; returns the capacity. */
static size_t check_shape(zp_pool *pool, const geometry *g, void *b,
                          size_t size)
{
    size_t cap = zp_capacity(pool, b);
    size_t want_align;
    assert_true(cap >= size);
    if (size <= g->max_class) {
        assert_int_equal(cap, zpt_class_for(size, g->min_class));
    } else {
        /* oversize: mapped size, whole pages */
        assert_int_equal(cap % zpt_page_size(), 0);
    }
    want_align = zpt_min_sz(cap, zpt_page_size());
    if (zpt_alignment_of(b) < want_align)
        fail_msg("buffer %p of capacity %zu aligned to %zu, want >= %zu", b,
                 cap, zpt_alignment_of(b), want_align);
    return cap;
}

/* The request sizes at the class edges of geometry g. */
static size_t edge_sizes(const geometry *g, size_t out[8])
{
    size_t n = 0;
    out[n++] = 0;
    out[n++] = 1;
    out[n++] = g->min_class - 1;
    out[n++] = g->min_class;
    out[n++] = g->min_class + 1;
    out[n++] = g->max_class - 1;
    out[n++] = g->max_class;
    out[n++] = g->max_class + 1;
    return n;
}

/* Every edge size: right capacity and alignment; a filled buffer stays
 * intact while the pool serves other buffers of the same classes; buffers
 * never overlap. */
static void run_edges(const geometry *g)
{
    zp_pool *pool = ZPT_POOL(.min_class = g->min_class, .max_class = g->max_class);
    size_t sizes[8], caps[8];
    void *held[8];
    size_t n = edge_sizes(g, sizes), i, j, round;

    for (i = 0; i < n; i++) {
        held[i] = zp_get(pool, sizes[i]);
        assert_non_null(held[i]);
        caps[i] = check_shape(pool, g, held[i], sizes[i]);
        zpt_fill_big(held[i], caps[i], 1000 + i);
    }
    /* no two held buffers overlap */
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++) {
            uintptr_t a = (uintptr_t)held[i], b = (uintptr_t)held[j];
            assert_true(a + caps[i] <= b || b + caps[j] <= a);
        }

    /* churn the same classes (and write every buffer in full) */
    for (round = 0; round < 3; round++) {
        for (i = 0; i < n; i++) {
            void *t = zp_get(pool, sizes[i]);
            size_t cap;
            assert_non_null(t);
            cap = check_shape(pool, g, t, sizes[i]);
            for (j = 0; j < n; j++)
                assert_ptr_not_equal(t, held[j]);
            zpt_fill_big(t, cap, 0xdead0000u + round);
            zp_put(pool, t);
        }
    }
    for (i = 0; i < n; i++) {
        size_t bad = zpt_check_big(held[i], caps[i], 1000 + i);
        if (bad != SIZE_MAX)
            fail_msg("size %zu: byte %zu of %zu changed while held", sizes[i],
                     bad, caps[i]);
    }

    /* put back, get again: full capacity writable and readable again */
    for (i = 0; i < n; i++)
        zp_put(pool, held[i]);
    for (i = 0; i < n; i++) {
        held[i] = zp_get(pool, sizes[i]);
        assert_non_null(held[i]);
        caps[i] = check_shape(pool, g, held[i], sizes[i]);
        zpt_fill_big(held[i], caps[i], 2000 + i);
    }
    for (i = 0; i < n; i++) {
        assert_int_equal(zpt_check_big(held[i], caps[i], 2000 + i), SIZE_MAX);
        zp_put(pool, held[i]);
    }
    zp_pool_destroy(pool);
}

static void test_edges_default(void **state)
{
    (void)state;
    run_edges(&geo_default);
}

static void test_edges_small(void **state)
{
    (void)state;
    run_edges(&geo_small);
}

/* Every class from min to max: the smallest and largest request of the
 * class get exactly that class, aligned, first and last byte writable. */
static void run_all_classes(const geometry *g)
{
    zp_pool *pool = ZPT_POOL(.min_class = g->min_class, .max_class = g->max_class);
    size_t c;
    for (c = g->min_class; c <= g->max_class; c <<= 1) {
        size_t lo = c == g->min_class ? 1 : c / 2 + 1;
        void *a = zp_get(pool, lo), *b = zp_get(pool, c);
        unsigned char *pa = a, *pb = b;
        assert_non_null(a);
        assert_non_null(b);
        assert_ptr_not_equal(a, b);
        assert_int_equal(check_shape(pool, g, a, lo), c);
        assert_int_equal(check_shape(pool, g, b, c), c);
        pa[0] = 1;
        pa[c - 1] = 2;
        pb[0] = 3;
        pb[c - 1] = 4;
        assert_int_equal(pa[0] + pa[c - 1] + pb[0] + pb[c - 1], 10);
        zp_put(pool, a);
        zp_put(pool, b);
    }
    zp_pool_destroy(pool);
}

static void test_all_classes_default(void **state)
{
    (void)state;
    run_all_classes(&geo_default);
}

static void test_all_classes_small(void **state)
{
    (void)state;
    run_all_classes(&geo_small);
}

/* Sizes that can never be served fail cleanly and never wrap around to a
 * small buffer. */
static void run_impossible(const geometry *g)
{
    zp_pool *pool = ZPT_POOL(.min_class = g->min_class, .max_class = g->max_class);
    zp_stats before, after;
    size_t near_max[3] = {SIZE_MAX - 1, SIZE_MAX - 4095, SIZE_MAX - 65535};
    size_t i;
    void *p;

    assert_int_equal(zpt_stats(pool, &before), 0);
    errno = 0;
    p = zp_get(pool, SIZE_MAX);
    assert_null(p);
    assert_int_equal(errno, EOVERFLOW);

    for (i = 0; i < 3; i++) {
        errno = 0;
        p = zp_get(pool, near_max[i]);
        if (p)
            fail_msg("zp_get(%zu) returned %p with capacity %zu", near_max[i],
                     p, zp_capacity(pool, p));
        assert_true(errno == EOVERFLOW || errno == ENOMEM);
    }
    /* a size the OS will refuse (2^62 bytes) */
    errno = 0;
    p = zp_get(pool, (size_t)1 << 62);
    assert_null(p);
    assert_true(errno == EOVERFLOW || errno == ENOMEM);

    /* nothing handed out, nothing held */
    assert_int_equal(zpt_stats(pool, &after), 0);
    assert_int_equal(after.bytes_outstanding, before.bytes_outstanding);
    assert_int_equal(after.puts, before.puts);
    assert_true(zpt_stats_sum_ok(&after));

    /* the pool still works */
    p = zp_get(pool, 1);
    assert_non_null(p);
    zp_put(pool, p);
    zp_pool_destroy(pool);
}

static void test_impossible_default(void **state)
{
    (void)state;
    run_impossible(&geo_default);
}

static void test_impossible_small(void **state)
{
    (void)state;
    run_impossible(&geo_small);
}

/* Oversize buffers of assorted sizes: capacity >= size, page aligned, whole
 * capacity usable, contents intact until put. */
static void test_oversize_sizes(void **state)
{
    zp_pool *pool = ZPT_POOL(.min_class = geo_small.min_class, .max_class = geo_small.max_class);
    size_t sizes[] = {geo_small.max_class + 1, geo_small.max_class + 4095,
                      geo_small.max_class + 65536, 3 * ZPT_MiB + 17,
                      5 * ZPT_MiB};
    void *held[5];
    size_t caps[5], i;
    (void)state;
    for (i = 0; i < 5; i++) {
        held[i] = zp_get(pool, sizes[i]);
        assert_non_null(held[i]);
        caps[i] = check_shape(pool, &geo_small, held[i], sizes[i]);
        zpt_fill_big(held[i], caps[i], 77 + i);
    }
    for (i = 0; i < 5; i++) {
        assert_int_equal(zpt_check_big(held[i], caps[i], 77 + i), SIZE_MAX);
        zp_put(pool, held[i]);
    }
    zp_pool_destroy(pool);
}

/* ZP_ZERO_ON_GET: every buffer's full capacity reads zero on get, even
 * after it was dirtied. */
static void run_zero_on_get(const geometry *g)
{
    zp_pool *pool = ZPT_POOL(.min_class = g->min_class, .max_class = g->max_class,
                             .flags = ZP_ZERO_ON_GET);
    size_t sizes[8], n = edge_sizes(g, sizes), i, round;
    for (round = 0; round < 3; round++) {
        for (i = 0; i < n; i++) {
            void *b = zp_get(pool, sizes[i]);
            size_t cap;
            assert_non_null(b);
            cap = zp_capacity(pool, b);
            assert_true(cap >= sizes[i]);
            if (!zpt_all_zero(b, cap))
                fail_msg("ZERO_ON_GET: size %zu round %zu not zeroed",
                         sizes[i], round);
            memset(b, 0xA5, cap);
            zp_put(pool, b);
        }
    }
    zp_pool_destroy(pool);
}

static void test_zero_on_get(void **state)
{
    (void)state;
    run_zero_on_get(&geo_small);
}

/* ZP_WIPE_ON_PUT (default provider, whose fresh memory is zero): every
 * buffer got afterwards reads zero, since every put wiped it (at debug 2,
 * imposed through ZEROPOOL_DEBUG, idle buffers hold the poison byte
 * instead: wiped all the same). */
static void test_wipe_on_put(void **state)
{
    zp_pool *pool = ZPT_POOL(.min_class = geo_small.min_class,
                             .max_class = geo_small.max_class, .flags = ZP_WIPE_ON_PUT);
    size_t sizes[8], n = edge_sizes(&geo_small, sizes), i, round;
    void *held[8];
    (void)state;
    for (round = 0; round < 3; round++) {
        for (i = 0; i < n; i++) {
            held[i] = zp_get(pool, sizes[i]);
            assert_non_null(held[i]);
            if (!zpt_all_bytes(held[i], zp_capacity(pool, held[i]),
                           zpt_env_debug() >= 2 && sizes[i] <= geo_small.max_class
                               ? ZP_POISON_BYTE
                               : 0))
                fail_msg("WIPE_ON_PUT: size %zu round %zu not wiped",
                         sizes[i], round);
            memset(held[i], 0x5A, zp_capacity(pool, held[i]));
        }
        for (i = 0; i < n; i++)
            zp_put(pool, held[i]);
    }
    zp_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges_default),
        cmocka_unit_test(test_edges_small),
        cmocka_unit_test(test_all_classes_default),
        cmocka_unit_test(test_all_classes_small),
        cmocka_unit_test(test_impossible_default),
        cmocka_unit_test(test_impossible_small),
        cmocka_unit_test(test_oversize_sizes),
        cmocka_unit_test(test_zero_on_get),
        cmocka_unit_test(test_wipe_on_put),
    };
    return ZPT_RUN(tests);
}
