/* Object geometry: sizes 1 B .. 70,000 B at alignments 1 .. 4096 are aligned, intact, never overlapping, packed at the stride; the packing bound. */
#include "zp_test.h"

#include <stdalign.h>

static const size_t sizes[] = {1, 24, 200, 3000, 70000};
static const size_t aligns[] = {0, 1, 8, 64, 4096};

typedef struct placed {
    unsigned char *p;
    unsigned char *base; /* the provider region holding it */
    size_t region;
} placed;

static int by_address(const void *a, const void *b)
{
    const placed *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}

/* Enough objects to span about three slabs, at most 2048. */
static size_t how_many(size_t stride)
{
    size_t n = 3 * 256 * ZPT_KiB / stride + 2;
    return n > 2048 ? 2048 : n;
}

/* stateful: the type has init, reset and fini (the counting type, which
 * checks alignment in each); the test then writes only past its stamp. */
static void check_geometry(size_t size, size_t align, int stateful)
{
    zpt_provider *pv = zpt_provider_new();
    zpt_objtype *ot = zpt_objtype_new(size, align, stateful ? ZPT_OBJ_ALL : 0);
    zp_obj_type *t = &ot->type;
    zp_pool *pool = ZPT_POOL(.type = t, .pv = pv);
    size_t stride = zpt_obj_stride(t), n = how_many(stride), i;
    size_t eff_align = align ? align : alignof(max_align_t);
    size_t skip = stateful ? zpt_min_sz(size, ZPT_OBJ_STAMP) : 0;
    placed *obj = calloc(n, sizeof *obj);
    zp_stats s;
    assert_non_null(obj);
    if (stride < size || stride % eff_align || stride - size >= eff_align)
        fail_msg("size %zu align %zu: stride %zu is not the size rounded up to the "
                 "alignment", size, align, stride);

    for (i = 0; i < n; i++) {
        unsigned char *p = zp_get(pool, size);
        if (p == NULL)
            fail_msg("size %zu align %zu: get %zu of %zu failed, errno %d", size, align, i,
                     n, errno);
        if ((uintptr_t)p % eff_align)
            fail_msg("size %zu align %zu: object %p is not aligned", size, align, (void *)p);
        if (zp_capacity(pool, p) != size)
            fail_msg("size %zu align %zu: capacity %zu", size, align, zp_capacity(pool, p));
        if (!zpt_provider_region(pv, p, &obj[i].base, &obj[i].region))
            fail_msg("size %zu align %zu: object %p is in no region the provider mapped",
                     size, align, (void *)p);
        if ((size_t)(p - obj[i].base) % stride)
            fail_msg("size %zu align %zu: object %p is %zu bytes into its slab %p, not a "
                     "whole number of strides (%zu)", size, align, (void *)p,
                     (size_t)(p - obj[i].base), (void *)obj[i].base, stride);
        if (p + size > obj[i].base + obj[i].region)
            fail_msg("size %zu align %zu: object %p runs past the end of its region %p+%zu",
                     size, align, (void *)p, (void *)obj[i].base, obj[i].region);
        if (stateful && !zpt_obj_constructed(ot, p))
            fail_msg("size %zu align %zu: object %p handed out unconstructed", size, align,
                     (void *)p);
        obj[i].p = p;
        zpt_fill(p + skip, size - skip, i * 7919 + size);
    }
    /* contents intact with every object live */
    for (i = 0; i < n; i++) {
        size_t bad = zpt_check(obj[i].p + skip, size - skip, i * 7919 + size);
        if (bad != SIZE_MAX)
            fail_msg("size %zu align %zu: object %zu (%p) changed at byte %zu", size, align, i,
                     (void *)obj[i].p, skip + bad);
        if (stateful && !zpt_obj_constructed(ot, obj[i].p))
            fail_msg("size %zu align %zu: object %p lost its constructed state", size, align,
                     (void *)obj[i].p);
    }
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, t, atomic_load(&pv->bytes_live));
    assert_int_equal(s.bytes_outstanding, n * stride);
    assert_int_equal(s.gets, n);

    /* no overlap, and within a region every object sits a whole number
     * of strides from every other (and from the slab's base: metadata is
     * out of line) */
    qsort(obj, n, sizeof *obj, by_address);
    for (i = 1; i < n; i++) {
        size_t gap = (size_t)(obj[i].p - obj[i - 1].p);
        if (gap < size)
            fail_msg("size %zu align %zu: objects %p and %p overlap", size, align,
                     (void *)obj[i - 1].p, (void *)obj[i].p);
        if (obj[i].base == obj[i - 1].base && gap % stride)
            fail_msg("size %zu align %zu: objects %p and %p of one slab are %zu bytes "
                     "apart, not a multiple of the stride %zu",
                     size, align, (void *)obj[i - 1].p, (void *)obj[i].p, gap, stride);
    }

    /* back, half one by one, half in a batch */
    for (i = 0; i < n / 2; i++)
        zp_put(pool, obj[i].p);
    {
        void **rest = malloc((n - n / 2) * sizeof *rest);
        assert_non_null(rest);
        for (i = n / 2; i < n; i++)
            rest[i - n / 2] = obj[i].p;
        zp_put_batch(pool, rest, n - n / 2);
        free(rest);
    }
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, t, atomic_load(&pv->bytes_live));
    assert_int_equal(s.bytes_outstanding, 0);
    assert_int_equal(s.puts, n);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    assert_int_equal(atomic_load(&pv->bad_unmaps), 0);
    if (stateful) {
        zpt_assert_objtype_clean(ot);
        assert_int_equal(atomic_load(&ot->resets), n);
        assert_int_equal(atomic_load(&ot->finis), atomic_load(&ot->inits));
    }
    free(obj);
    zpt_objtype_free(ot);
    zpt_provider_free(pv);
}

static void test_sizes_and_alignments(void **state)
{
    size_t a, z;
    (void)state;
    for (z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
        for (a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
            check_geometry(sizes[z], aligns[a], 0);
}

static void test_sizes_and_alignments_constructed(void **state)
{
    size_t a, z;
    (void)state;
    for (z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
        for (a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
            check_geometry(sizes[z], aligns[a], 1);
}

static int largest_region(void *ptr, size_t size, void *arg)
{
    (void)ptr;
    if (size > *(size_t *)arg)
        *(size_t *)arg = size;
    return 0;
}

/* n live objects of size (align) reserve at most 1.10 x n x stride plus
 * one slab (the largest region the pool mapped). */
static void check_packing(size_t size, size_t align, size_t n)
{
    zpt_provider *pv = zpt_provider_new();
    zp_obj_type t;
    zp_pool *pool;
    void **objs = malloc(n * sizeof *objs);
    size_t i, stride, slab = 0;
    double bound, ratio;
    zp_stats s;
    assert_non_null(objs);
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    t.size = size;
    t.align = align;
    stride = zpt_obj_stride(&t);
    pool = ZPT_POOL(.type = &t, .pv = pv);
    for (i = 0; i < n; i++)
        if ((objs[i] = zp_get(pool, size)) == NULL)
            fail_msg("object %zu of %zu: errno %d", i, n, errno);
    s = zpt_read(pool);
    zpt_assert_obj_stats(&s, &t, atomic_load(&pv->bytes_live));
    zpt_provider_each(pv, largest_region, &slab);
    bound = 1.10 * (double)n * (double)stride + (double)slab;
    ratio = (double)s.bytes_reserved / ((double)n * (double)size);
    print_message("# %zu live objects of %zu bytes (align %zu, stride %zu): %llu bytes "
                  "reserved, %.4f x the objects' bytes (slab %zu)\n",
                  n, size, align, stride, (unsigned long long)s.bytes_reserved, ratio, slab);
    if ((double)s.bytes_reserved > bound)
        fail_msg("%zu objects of %zu bytes reserve %llu bytes, above 1.10 x %zu x %zu + "
                 "one slab (%zu) = %.0f",
                 n, size, (unsigned long long)s.bytes_reserved, n, stride, slab, bound);
    assert_int_equal(s.bytes_outstanding, n * stride);
    for (i = 0; i < n; i++)
        zp_put(pool, objs[i]);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    free(objs);
    zpt_provider_free(pv);
}

/* The figure of the issue: 100,000 live 200-byte objects (align 8). */
static void test_packing_200(void **state)
{
    (void)state;
    check_packing(200, 8, 100000);
}

/* Other strides: small, odd, large, and rounded up by the alignment. */
static void test_packing_others(void **state)
{
    (void)state;
    check_packing(24, 8, 100000);
    check_packing(1, 1, 100000);
    check_packing(3000, 8, 7000);
    check_packing(70000, 8, 300);
    check_packing(100, 64, 100000); /* stride 128 */
    check_packing(3000, 4096, 2000); /* stride 4096 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_and_alignments),
        cmocka_unit_test(test_sizes_and_alignments_constructed),
        cmocka_unit_test(test_packing_200),
        cmocka_unit_test(test_packing_others),
    };
    return ZPT_RUN(tests);
}
