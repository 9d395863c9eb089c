/* The process's RSS really drops by what zp_trim says it released (unmapped slabs and purged pages). */
#include "zp_test.h"

#define NBUF 64         /* x 1 MiB */
#define NSMALL 1024     /* x 64 KiB, 4 per slab */

static void report(const char *what, size_t before, size_t peak, size_t after,
                   size_t released)
{
    print_message("RSS %s: before %.1f MiB, peak %.1f MiB, after %.1f MiB; "
                  "released %.1f MiB, RSS dropped %.1f MiB (%.0f%% of released)\n",
                  what, zpt_mib(before), zpt_mib(peak), zpt_mib(after), zpt_mib(released),
                  zpt_mib(peak > after ? peak - after : 0),
                  released ? 100.0 * (double)(peak > after ? peak - after : 0) /
                                 (double)released
                           : 0.0);
}

/* 64 x 1 MiB touched, put, trimmed: every slab is unmapped. */
static void test_rss_unmapped(void **state)
{
    zp_pool *pool = ZPT_POOL();
    static void *bufs[NBUF];
    size_t before, peak, after, released;
    (void)state;
    zpt_rss_burst(pool, bufs, NBUF, &before, &peak);
    assert_true(before > 0);
    released = zp_trim(pool, 0);
    after = zpt_rss_bytes();
    report("zp_trim, 64 x 1 MiB slabs unmapped", before, peak, after, released);
    assert_int_equal(released, NBUF * ZPT_MiB);
    assert_true((double)(peak - before) >= ZPT_RSS_SHARE * NBUF * ZPT_MiB);
    assert_true(peak > after);
    assert_true((double)(peak - after) >= ZPT_RSS_SHARE * (double)released);
    zp_pool_destroy(pool);
}

/* 1024 x 64 KiB touched; one buffer per slab stays in use, the other 768
 * are put and trimmed: their pages are purged, the slabs stay. */
static void test_rss_purged(void **state)
{
    const size_t size = 64 * ZPT_KiB;
    zpt_provider *pv = zpt_provider_new();
    zp_pool *pool = ZPT_POOL(.pv = pv);
    void **bufs = calloc(NSMALL, sizeof(void *));
    unsigned char **slab_of = calloc(NSMALL, sizeof(unsigned char *));
    unsigned char *kept_slabs[NSMALL / 4];
    size_t before, peak, after, released, reserved;
    int i, j, nkept = 0, nput = 0;
    (void)state;
    assert_non_null(bufs);
    assert_non_null(slab_of);

    before = zpt_rss_bytes();
    for (i = 0; i < NSMALL; i++) {
        size_t rsize = 0;
        bufs[i] = zp_get(pool, size);
        assert_non_null(bufs[i]);
        zpt_touch(bufs[i], size, (unsigned char)(i + 1));
        assert_true(zpt_provider_region(pv, bufs[i], &slab_of[i], &rsize));
        assert_int_equal(rsize, 256 * ZPT_KiB);
    }
    peak = zpt_rss_bytes();
    reserved = zpt_reserved(pool);
    assert_int_equal(reserved, NSMALL / 4 * 256 * ZPT_KiB);
    for (i = 0; i < NSMALL; i++) {
        int seen = 0;
        for (j = 0; j < nkept && !seen; j++)
            seen = kept_slabs[j] == slab_of[i];
        if (!seen) {
            kept_slabs[nkept++] = slab_of[i]; /* stays in use */
            continue;
        }
        zp_put(pool, bufs[i]);
        bufs[i] = NULL;
        nput++;
    }
    assert_int_equal(nkept, NSMALL / 4);
    released = zp_trim(pool, 0);
    after = zpt_rss_bytes();
    report("zp_trim, 768 x 64 KiB purged in partially used slabs", before, peak, after,
           released);
    assert_int_equal(released, (size_t)nput * size);
    assert_int_equal(zpt_reserved(pool), reserved); /* slabs kept */
    assert_true(peak > after);
    assert_true((double)(peak - after) >= ZPT_RSS_SHARE * (double)released);

    for (i = 0; i < NSMALL; i++)
        if (bufs[i]) {
            unsigned char *b = bufs[i];
            assert_int_equal(b[0], (unsigned char)(i + 1)); /* in use: intact */
            assert_int_equal(b[size - 1], (unsigned char)(i + 1));
            zp_put(pool, bufs[i]);
        }
    zp_pool_destroy(pool);
    assert_int_equal(atomic_load(&pv->bytes_live), 0);
    zpt_provider_free(pv);
    free(bufs);
    free(slab_of);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rss_unmapped),
        cmocka_unit_test(test_rss_purged),
    };
    if (zpt_rss_bytes() == 0)
        return zpt_skip_all("/proc/self/statm not readable");
    return ZPT_RUN(tests);
}
