/* ZP_HUGE_PAGES: slabs in whole aligned 2 MiB pages, backed by huge pages (smaps AnonHugePages), never split by trim or retention. */
#include "zp_test.h"

#define H (2 * ZPT_MiB) /* the huge page size this test expects (x86-64) */
#define NBIG 8          /* x 4 MiB */
#define NTWO 4          /* x 2 MiB */
#define NSMALL 16       /* x 256 KiB: two slabs of one huge page each */

/* Coverage this test demands of memory the pool has touched */
#define MIN_SHARE 0.95

static size_t huge_size(void)
{
    unsigned long long v = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
    if (f != NULL) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return (size_t)v;
}

/* smaps of the mappings holding the n buffers of size bytes at bufs */
static zpt_smaps smaps_of(void *const *bufs, size_t n, size_t size)
{
    size_t lens[64];
    zpt_smaps s;
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++)
        lens[i] = size;
    if (zpt_smaps_sum(bufs, lens, n, &s) != 0)
        zpt_fail("/proc/self/smaps cannot be read");
    return s;
}

static double share(const zpt_smaps *s)
{
    return s->bytes ? (double)s->huge / (double)s->bytes : 0.0;
}

static void print_cov(const char *what, const zpt_smaps *s)
{
    print_message("%-58s %zu mapping(s), %.1f MiB, resident %.1f MiB, in huge pages "
                  "%.1f MiB (%.1f%%)\n",
                  what, s->vmas, zpt_mib(s->bytes), zpt_mib(s->rss), zpt_mib(s->huge),
                  100.0 * share(s));
}

/* The mappings holding the large buffers hold only huge slabs of this pool
 * (a mapping advised MADV_HUGEPAGE merges only with others so advised, and
 * every slab of the pool is wholly touched here), so their coverage is the
 * large slabs' coverage. */
static void assert_covered(const char *what, const zpt_smaps *s)
{
    print_cov(what, s);
    if (share(s) < MIN_SHARE)
        zpt_fail("%s: %.1f%% of %.1f MiB in huge pages, want >= %.0f%% (THP mode %s; "
                 "if the machine is short of free 2 MiB blocks, the fault path falls back "
                 "to small pages: see AnonHugePages and the thp_fault_fallback counter in "
                 "/proc/vmstat)",
                 what, 100.0 * share(s), zpt_mib(s->bytes), 100.0 * MIN_SHARE,
                 zpt_thp_mode());
}

static void test_huge_slabs(void **state)
{
    zp_pool *pool = ZPT_POOL(.flags = ZP_HUGE_PAGES, .name = "huge");
    void *big[NBIG], *two[NTWO], *small[NSMALL], *large[NBIG + NTWO];
    size_t reserved, released;
    zpt_smaps s;
    int i;
    (void)state;

    for (i = 0; i < NBIG; i++) {
        big[i] = zp_get(pool, 4 * ZPT_MiB);
        assert_non_null(big[i]);
        assert_int_equal((uintptr_t)big[i] % H, 0);
        zpt_touch(big[i], 4 * ZPT_MiB, (unsigned char)(i + 1));
        large[i] = big[i];
    }
    for (i = 0; i < NTWO; i++) {
        two[i] = zp_get(pool, 2 * ZPT_MiB);
        assert_non_null(two[i]);
        assert_int_equal((uintptr_t)two[i] % H, 0);
        zpt_touch(two[i], 2 * ZPT_MiB, (unsigned char)(i + 1));
        large[NBIG + i] = two[i];
    }
    /* 256 KiB buffers: grouped eight to a slab of one whole huge page */
    for (i = 0; i < NSMALL; i++) {
        small[i] = zp_get(pool, 256 * ZPT_KiB);
        assert_non_null(small[i]);
        zpt_touch(small[i], 256 * ZPT_KiB, (unsigned char)(i + 1));
    }
    for (i = 0; i < NSMALL; i++) /* the first 8 in one huge page, the next 8 in another */
        assert_int_equal((uintptr_t)small[i] & ~(H - 1), (uintptr_t)small[i / 8 * 8] & ~(H - 1));
    assert_true(((uintptr_t)small[0] & ~(H - 1)) != ((uintptr_t)small[8] & ~(H - 1)));
    reserved = zpt_reserved(pool);
    assert_int_equal(reserved, NBIG * 4 * ZPT_MiB + NTWO * 2 * ZPT_MiB + 2 * H);

    s = smaps_of(large, NBIG + NTWO, 2 * ZPT_MiB);
    assert_true(s.bytes >= NBIG * 4 * ZPT_MiB + NTWO * 2 * ZPT_MiB);
    assert_covered("4 MiB and 2 MiB slabs, after touch:", &s);
    s = smaps_of(small, NSMALL, 256 * ZPT_KiB);
    assert_covered("256 KiB slabs (one huge page each), after touch:", &s);

    /* one whole small slab idle (its huge page goes), half of the other
     * (its huge page stays whole: nothing of it is released) */
    for (i = 0; i < 12; i++)
        zp_put(pool, small[i]);
    released = zp_trim(pool, 0);
    print_message("zp_trim with 8 + 4 idle 256 KiB buffers released %zu bytes\n", released);
    assert_int_equal(released, H);
    assert_int_equal(zpt_reserved(pool), reserved - H);
    for (i = 8; i < 12; i++) /* idle but in a huge page still used: not purged */
        assert_int_equal(zpt_resident_in(small[i], 256 * ZPT_KiB), 256 * ZPT_KiB);
    s = smaps_of(small + 12, 4, 256 * ZPT_KiB);
    assert_covered("256 KiB slab half idle, after zp_trim:", &s);
    s = smaps_of(large, NBIG + NTWO, 2 * ZPT_MiB);
    assert_covered("4 MiB and 2 MiB slabs, after zp_trim of 256 KiB:", &s);

    /* large buffers given back go whole (one-buffer slabs, unmapped) */
    for (i = 0; i < 2; i++)
        zp_put(pool, big[i]);
    released = zp_trim(pool, 0);
    assert_int_equal(released, 2 * 4 * ZPT_MiB); /* the idle 256 KiB ones stay */
    s = smaps_of(big + 2, NBIG - 2, 4 * ZPT_MiB);
    assert_covered("the 4 MiB slabs still held, after trimming two:", &s);

    for (i = 2; i < NBIG; i++) { /* contents intact */
        assert_int_equal(((unsigned char *)big[i])[0], (unsigned char)(i + 1));
        assert_int_equal(((unsigned char *)big[i])[4 * ZPT_MiB - 1], (unsigned char)(i + 1));
    }
    for (i = 2; i < NBIG; i++)
        zp_put(pool, big[i]);
    for (i = 0; i < NTWO; i++)
        zp_put(pool, two[i]);
    for (i = 12; i < NSMALL; i++)
        zp_put(pool, small[i]);
    zp_pool_destroy(pool);
}

/* The retention cap (max_cached_bytes 0: idle memory goes back on every
 * slow path): 64 KiB buffers idle in a huge page that other buffers still
 * use keep their pages and the page stays huge; a wholly idle one goes. */
static void test_huge_retention(void **state)
{
    const size_t size = 64 * ZPT_KiB, per = H / (64 * ZPT_KiB);
    zp_pool *pool = ZPT_POOL(.flags = ZP_HUGE_PAGES, .cache_depth = ZPT_ZERO,
                             .max_cached_bytes = ZPT_ZERO, .name = "huge_ret");
    void **bufs = calloc(2 * per, sizeof(void *));
    zpt_smaps s;
    size_t i;
    (void)state;
    assert_non_null(bufs);
    for (i = 0; i < 2 * per; i++) {
        bufs[i] = zp_get(pool, size);
        assert_non_null(bufs[i]);
        zpt_touch(bufs[i], size, (unsigned char)(i + 1));
    }
    assert_int_equal(zpt_reserved(pool), 2 * H);
    s = smaps_of(bufs, 2, size);
    assert_covered("64 KiB slabs (one huge page each), after touch:", &s);
    /* half of the first huge page idle: retention may not release it */
    for (i = 0; i < per / 2; i++)
        zp_put(pool, bufs[i]);
    for (i = 0; i < per / 2; i++)
        assert_int_equal(zpt_resident_in(bufs[i], size), size);
    assert_int_equal(zpt_reserved(pool), 2 * H);
    s = smaps_of(bufs + per / 2, 1, size);
    assert_covered("64 KiB slab half idle under max_cached_bytes 0:", &s);
    /* the whole second page idle: the retention cap unmaps its slab */
    for (i = per; i < 2 * per; i++)
        zp_put(pool, bufs[i]);
    assert_int_equal(zpt_reserved(pool), H);
    s = smaps_of(bufs + per / 2, 1, size);
    assert_covered("the first 64 KiB slab, after the second went:", &s);
    for (i = per / 2; i < per; i++)
        zp_put(pool, bufs[i]);
    zp_pool_destroy(pool);
    free(bufs);
}

/* Without the flag nothing changes: 256 KiB slabs, grain-aligned. */
static void test_without_flag(void **state)
{
    zp_pool *pool = ZPT_POOL(.name = "plain");
    void *b;
    (void)state;
    b = zp_get(pool, 64 * ZPT_KiB);
    assert_non_null(b);
    assert_int_equal(zpt_reserved(pool), 256 * ZPT_KiB);
    zp_put(pool, b);
    zp_pool_destroy(pool);
}

/* A custom provider is asked for huge-page alignment, for slabs and for
 * oversize regions of a huge page or more. */
static size_t last_align, last_size;
static void *align_map(size_t size, size_t align, void *ctx)
{
    last_align = align;
    last_size = size;
    return zpt_provider_map(size, align, ctx);
}

static void test_provider_alignment(void **state)
{
    zpt_provider *pv = zpt_provider_new();
    zp_config cfg;
    zp_pool *pool;
    void *b;
    (void)state;
    ZPT_CONFIG(&cfg, .flags = ZP_HUGE_PAGES, .max_class = 4 * ZPT_MiB);
    cfg.provider.map = align_map;
    cfg.provider.unmap = zpt_provider_unmap;
    cfg.provider.ctx = pv;
    assert_int_equal(zp_pool_create(&cfg, &pool), 0);
    b = zp_get(pool, 4096);
    assert_non_null(b);
    assert_int_equal(last_align, H);
    assert_int_equal(last_size, H);
    zp_put(pool, b);
    b = zp_get(pool, 5 * ZPT_MiB); /* oversize, >= H: aligned too */
    assert_non_null(b);
    assert_int_equal(last_align, H);
    assert_int_equal(last_size, 5 * ZPT_MiB);
    assert_int_equal((uintptr_t)b % H, 0);
    zp_put(pool, b);
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_slabs),
        cmocka_unit_test(test_huge_retention),
        cmocka_unit_test(test_without_flag),
        cmocka_unit_test(test_provider_alignment),
    };
    const char *mode = zpt_thp_mode();
    long reserved = zpt_hugetlb_free();
    if (huge_size() != H)
        return zpt_skip_all("no 2 MiB transparent huge pages on this kernel "
                            "(hpage_pmd_size %zu)", huge_size());
    if (strcmp(mode, "never") == 0 && reserved <= 0)
        return zpt_skip_all("transparent huge pages are \"never\" and no hugetlb pages are "
                            "reserved: ZP_HUGE_PAGES can only align, not back, slabs here");
    print_message("THP mode %s; reserved huge pages free: %ld\n", mode, reserved);
    return ZPT_RUN(tests);
}
